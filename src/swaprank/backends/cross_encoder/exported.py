"""Loading an exported ONNX/OpenVINO artifact, from the cache or a directory the user exported.

This path never imports torch (:mod:`swaprank.backends.fastpath`), which is what keeps a serving
container small and its cold start short. The artifact's manifest, not the spec, says what it is:
options that would need another export are refused instead of silently ignored.
"""

from __future__ import annotations

from pathlib import Path

from swaprank.backends.cross_encoder.loaded import LoadedModel, score_mapping
from swaprank.backends.cross_encoder.resolve import Target, refuse_torch_options
from swaprank.backends.fastpath.choice import Plan
from swaprank.backends.notices import warn_instruction_ignored
from swaprank.types import ConfigError


def load_exported(target: Target, plan: Plan) -> LoadedModel:
    """Export ``target`` for ``plan`` into the artifact cache (once; later loads reuse it) and serve it."""
    from swaprank.backends.fastpath.cache import cached_artifact
    from swaprank.backends.fastpath.calibration import load_pairs

    calibration = target.option("calibration")
    if calibration and plan.quantize != "int8":
        raise ConfigError("calibration= applies to quantize=int8 only")
    return load_artifact(target, cached_artifact(
        target.model, plan, calibration=load_pairs(calibration) if calibration else None,
        trust_remote_code=target.option("trust_remote_code"),
        parity_max_diff=target.option("parity_max_diff"),
        parity_min_agreement=target.option("parity_min_agreement"), threads=target.option("threads")))


def load_artifact(target: Target, directory: Path) -> LoadedModel:
    """Serve the artifact in ``directory`` on the runtime its manifest names, once its files are
    proven to be the ones exported (:func:`~swaprank.backends.fastpath.artifact.verify_files`)."""
    from swaprank.backends.fastpath.artifact import Manifest, verify_files
    from swaprank.backends.fastpath.sessions import ArtifactScorer

    manifest = Manifest.read(directory)  # refuses names outside the directory
    precision = target.option("precision") or manifest.precision
    explicit = target.spec.option_dict
    for name, have in (("runtime", manifest.runtime), ("quantize", manifest.quantize)):
        if name in explicit and explicit[name] not in ("auto", have):
            raise ConfigError(f"{target.model!r} is an exported {name}={have} artifact; "
                              f"{name}={explicit[name]} needs another export (swaprank export)")
    if precision == "bf16" and manifest.runtime == "onnx":
        raise ConfigError("precision=bf16 needs an OpenVINO artifact; this one is ONNX Runtime")
    plan = Plan(manifest.runtime, precision, manifest.quantize)
    refuse_torch_options(target, plan)
    verify_files(directory, manifest)  # ArtifactIntegrityError: nothing of a modified artifact is loaded
    try:
        scorer = ArtifactScorer(directory, manifest, precision=precision, threads=target.option("threads"),
                                batch_size=target.option("batch_size"), max_length=target.option("max_length"))
    except Exception as exc:  # a corrupt or foreign artifact (the runtimes raise their own types)
        raise target.unavailable(f"could not load artifact {directory}: {type(exc).__name__}: {exc}") from exc
    if target.option("instruction") is not None:  # exported artifacts are sequence-classification models
        warn_instruction_ignored(target.spec, "exported artifacts score plain (query, document) pairs")
    return LoadedModel(predict=scorer.predict, to_unit=score_mapping(target, manifest.activation),
                       max_length=scorer.max_length, plan=plan, tokenizer=scorer.tokenizer, artifact=directory)
