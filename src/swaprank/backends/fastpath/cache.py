"""Find or build the cached artifact for (model, runtime, precision, quantize).

The first process to need an artifact exports it (seconds to a minute for MiniLM; int8 includes
calibration); every later load, in this process or another, finds it by key and serves it
without torch. Hub ids are resolved to their local snapshot first, so the key is always the hash
of the files actually exported.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path

from swaprank.backends import hub
from swaprank.backends.fastpath.artifact import (
    cache_dir_for,
    cache_key,
    describe_source,
    digest_model,
    is_artifact,
    manifest_summary,
    publish,
)
from swaprank.backends.fastpath.calibration import Pair, digest_pairs, sample_pairs
from swaprank.backends.fastpath.choice import Plan
from swaprank.backends.fastpath.notices import announce, quiet_runtimes
from swaprank.backends.optional import require
from swaprank.types import BackendUnavailableError

logger = logging.getLogger(__name__)

# Files a hub snapshot needs for export; repos often also carry onnx/ and openvino/ folders of
# their own (hundreds of MB) that we neither need nor want to hash.
_HUB_IGNORE = ["onnx/*", "openvino/*", "*.onnx", "*.h5", "*.msgpack", "*.ot", "*.tflite", "*.gguf"]


def local_model_dir(model: str) -> Path:
    """A local directory holding the model's files: the path itself, or the hub snapshot."""
    expanded = Path(os.path.expanduser(model))
    if expanded.is_dir():
        return expanded
    hf_hub = require("huggingface_hub", "cross-encoder")
    local_only = hub.prepare(model, "cross-encoder")  # hub unreachable: the cache, or one error in seconds
    try:
        return Path(hf_hub.snapshot_download(repo_id=model, ignore_patterns=_HUB_IGNORE, local_files_only=local_only))
    except Exception as exc:  # offline, unknown repo, gated...
        raise BackendUnavailableError(
            f"could not fetch cross-encoder {model!r} to export it: {type(exc).__name__}: {exc} (offline, "
            "point the spec at a local directory or at an artifact made by `swaprank export`)",
            vendor="cross-encoder",
        ) from exc


def cached_artifact(model: str, plan: Plan, *, calibration: Sequence[Pair] | None = None,
                    trust_remote_code: bool = False, parity_max_diff: float | None = None,
                    parity_min_agreement: float | None = None,
                    threads: int | None = None) -> Path:
    """The artifact directory for this model and plan, exporting it first if the cache lacks it."""
    source = local_model_dir(model)
    digest = digest_model(source)
    # The built-in sample is keyed by its content too: a release that changes it exports anew.
    key = cache_key(digest, plan.runtime, plan.precision, plan.quantize,
                    digest_pairs(calibration or sample_pairs("calibration")))
    target = cache_dir_for(describe_source(model), key, plan.runtime, plan.precision,
                           plan.quantize)
    if is_artifact(target):
        logger.debug("cross-encoder %s: artifact cache hit %s", model, target)
        return target
    what = f"{plan.runtime} {plan.precision}" + (" int8" if plan.quantize == "int8" else "")
    announce(f"exporting {model} to {what} once (seconds to a minute); cached at {target}")
    started = time.monotonic()
    exported = export_to(model, target, plan, source_digest=digest, calibration=calibration,
                         trust_remote_code=trust_remote_code, parity_max_diff=parity_max_diff,
                         parity_min_agreement=parity_min_agreement, threads=threads, source=source)
    announce(f"exported {model} to {what} in {time.monotonic() - started:.1f} s; cached at {exported} "
             "(later loads reuse it)")
    return exported


def export_to(model: str, target: Path, plan: Plan, *, source_digest: str | None = None,
              calibration: Sequence[Pair] | None = None, trust_remote_code: bool = False,
              parity_max_diff: float | None = None, parity_min_agreement: float | None = None,
              threads: int | None = None, source: Path | None = None,
              replace: bool = False) -> Path:
    """Export ``model`` into ``target`` atomically (cache entries and ``swaprank export --out``)."""
    from swaprank.backends.fastpath.export import build_artifact

    source = source or local_model_dir(model)
    digest = source_digest or digest_model(source)

    def build(tmp: Path) -> None:
        manifest = build_artifact(str(source), tmp, runtime=plan.runtime, precision=plan.precision,
                                  quantize=plan.quantize, source_digest=digest, calibration=calibration,
                                  trust_remote_code=trust_remote_code, parity_max_diff=parity_max_diff,
                                  parity_min_agreement=parity_min_agreement, threads=threads, source_name=model)
        logger.info("cross-encoder %s: exported %s", model, dict(manifest_summary(manifest)))

    with quiet_runtimes():
        publish(target, build, replace=replace)
    return target
