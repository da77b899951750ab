"""Export a cross-encoder once: torch -> ONNX -> (int8 | OpenVINO), then prove it against fp32.

This is the only module of the fast path that imports torch (through sentence-transformers); it
runs when an artifact is built, never when one is served. Each artifact is checked on first
export by a parity probe: the built-in probe pairs (:mod:`calibration`, never the user's
evaluation data) are scored by the fp32 torch model and by the new artifact, and the largest
score difference (on the [0, 1] scale) and the top-3 agreement per query are recorded in the
manifest, logged, and compared with a documented limit (:data:`PARITY_LIMITS`). An artifact worse
than its limit is refused with :class:`ParityError` and never cached.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from swaprank.backends.fastpath.artifact import Manifest, describe_source, digest_files, package_version
from swaprank.backends.fastpath.calibration import Pair, digest_pairs, sample_pairs
from swaprank.backends.fastpath.sessions import ArtifactScorer
from swaprank.backends.fastpath.telemetry import disable_runtime_telemetry
from swaprank.backends.fastpath.tokenize import PairTokenizer
from swaprank.backends.optional import require
from swaprank.types import BackendUnavailableError, ConfigError

logger = logging.getLogger(__name__)

OPSET = 17
PROBE_TOP_K = 3

# SmoothQuant's migration strength for the int8 MatMuls (NNCF's default for transformers is 0.95).
# 0.95 moves nearly all of the LayerNorm outputs' outlier channels into the weights, whose int8
# grid then loses precision instead; 0.75 balances the two. Measured against the fp32 scores of 100
# SciFact *train* queries x BM25 top-30 (benchmarks/RESULTS.md): mean |logit diff| 0.109 -> 0.067,
# mean bias -0.093 -> -0.002 (0.065 with the longer built-in calibration passages); 0.5-0.85 all
# beat 0.95, and switching SmoothQuant off is worst. The quantized graph, hence the speed, is the same.
SMOOTH_QUANT_ALPHA = 0.75

# (largest |score difference| on [0, 1], smallest mean top-3 agreement) an artifact must meet.
# fp32 runtimes must agree to float noise; bf16 keeps 8 mantissa bits; int8 is allowed visible
# score noise as long as the head of each probe ranking is kept. Measured values: benchmarks/RESULTS.md.
PARITY_LIMITS: dict[str, tuple[float, float]] = {
    "fp32": (1e-3, 1.0),
    "bf16": (0.05, 0.9),
    "int8": (0.25, 0.8),
}


class ParityError(BackendUnavailableError):
    """An exported artifact scores too differently from the fp32 model; it was not cached.

    A subclass of BackendUnavailableError so a fallback chain (``...?quantize=int8 | ...``) moves on
    to its next spec, exactly as for a model that fails to load.
    """


def _to_unit(values: np.ndarray, activation: str) -> np.ndarray:
    return values if activation == "sigmoid" else 1.0 / (1.0 + np.exp(-values))


def _logits_module(model: Any, inputs: Sequence[str]) -> Any:
    """The HF sequence-classification model as a module whose exported graph returns the logits."""
    torch = require("torch", "cross-encoder")

    class Logits(torch.nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: Any) -> Any:
            return self.model(**dict(zip(inputs, args, strict=True))).logits

    return Logits().eval()


def _export_onnx(ce: Any, tokenizer: PairTokenizer, inputs: list[str], path: Path) -> None:
    torch = require("torch", "cross-encoder")
    require("onnx", "onnx")
    example = tokenizer.batch(tokenizer.encode([("what is exported", "a model with dynamic shapes"),
                                                ("second pair", "of another length, to batch")]))
    args = tuple(torch.from_numpy(example[name]) for name in inputs)
    dynamic = {name: {0: "batch", 1: "sequence"} for name in inputs} | {"logits": {0: "batch"}}
    import warnings

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(_logits_module(ce.model, inputs), args, str(path), input_names=inputs,
                          output_names=["logits"], dynamic_axes=dynamic, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)


def _model_inputs(ce: Any) -> list[str]:
    import inspect

    accepted = inspect.signature(ce.model.forward).parameters
    return [name for name in ("input_ids", "attention_mask", "token_type_ids") if name in accepted]


def _reference_logits(ce: Any, tokenizer: PairTokenizer, inputs: list[str], pairs: Sequence[Pair]) -> np.ndarray:
    torch = require("torch", "cross-encoder")
    out = []
    with torch.no_grad():
        for start in range(0, len(pairs), 16):
            arrays = tokenizer.batch(tokenizer.encode(pairs[start: start + 16]))
            logits = ce.model(**{n: torch.from_numpy(arrays[n]) for n in inputs}).logits
            out.append(logits.float().numpy()[:, 0])
    return np.concatenate(out)


def _quantize_onnx(fp32: Path, out: Path) -> None:
    """ONNX Runtime dynamic int8 (weights per channel, activations per batch) of the same MatMuls."""
    onnx = require("onnx", "onnx")
    quantization = require("onnxruntime.quantization", "onnx")
    graph = onnx.load(str(fp32)).graph
    weights = {init.name for init in graph.initializer}
    producer = {output: node.op_type for node in graph.node for output in node.output}
    keep_float = [node.name for node in graph.node if node.op_type in ("MatMul", "Gemm") and not (
        len(node.input) > 1 and node.input[1] in weights
        and producer.get(node.input[0]) in ("LayerNormalization", "Add"))]
    quantization.quantize_dynamic(str(fp32), str(out), per_channel=True, nodes_to_exclude=keep_float,
                                  op_types_to_quantize=["MatMul"], weight_type=quantization.QuantType.QInt8)


def sensitive_matmuls(model: Any) -> list[str]:
    """OpenVINO MatMuls that int8 should leave in floating point: all but the LayerNorm-fed projections.

    Measured on the stand-in (benchmarks/RESULTS.md): quantizing every MatMul kept only 83% of the
    fp32 top-10 at 100 candidates. The damage comes from three kinds of input: attention
    probabilities and values (activation x activation MatMuls: softmax rows over 512 tokens are
    mostly below int8's resolution), the attention context before the output projection, and the
    GELU output before the FFN down-projection (heavy-tailed). The projections fed by a LayerNorm
    (query, key, value, FFN up: 7/12 of the encoder's matmul FLOPs) have well-behaved inputs,
    which SmoothQuant evens out further; quantizing only those keeps most of the int8 speed-up. The
    rule is structural (the producer of the MatMul's inputs), not by layer names, so it carries over
    to other BERT-like encoders. ONNX Runtime's dynamic int8 uses the same rule (``_quantize_onnx``).
    """
    keep_float = []
    for op in model.get_ordered_ops():
        if op.get_type_name() != "MatMul":
            continue
        weights = op.input_value(1).get_node().get_type_name() == "Constant"
        after_layernorm = op.input_value(0).get_node().get_type_name() == "Add"
        if not (weights and after_layernorm):
            keep_float.append(op.get_friendly_name())
    return keep_float


def _to_openvino(onnx_path: Path, out: Path, quantize: str, calibration: Sequence[Pair],
                 tokenizer: PairTokenizer, inputs: list[str]) -> None:
    disable_runtime_telemetry()
    ov = require("openvino", "openvino")
    model = ov.convert_model(str(onnx_path))
    if quantize == "int8":
        nncf = require("nncf", "openvino")
        samples = [tokenizer.batch(tokenizer.encode([pair])) for pair in calibration]
        dataset = nncf.Dataset(samples, lambda arrays: {name: arrays[name] for name in inputs})
        model = nncf.quantize(
            model, dataset, model_type=nncf.ModelType.TRANSFORMER, preset=nncf.QuantizationPreset.MIXED,
            subset_size=len(samples),
            ignored_scope=nncf.IgnoredScope(names=sensitive_matmuls(model), validate=False),
            advanced_parameters=nncf.AdvancedQuantizationParameters(
                smooth_quant_alphas=nncf.AdvancedSmoothQuantParameters(matmul=SMOOTH_QUANT_ALPHA)),
        )
    ov.save_model(model, str(out / "model.xml"), compress_to_fp16=False)


def parity(reference: np.ndarray, candidate: np.ndarray, pairs: Sequence[Pair], activation: str) -> dict[str, Any]:
    """Largest score difference on [0, 1] and mean top-k agreement per query between two scorings."""
    ref_unit, cand_unit = _to_unit(reference, activation), _to_unit(candidate, activation)
    by_query: dict[str, list[int]] = {}
    for i, (query, _) in enumerate(pairs):
        by_query.setdefault(query, []).append(i)
    agreements = []
    for rows in by_query.values():
        k = min(PROBE_TOP_K, len(rows))
        top_ref = set(sorted(rows, key=lambda i: -reference[i])[:k])
        top_cand = set(sorted(rows, key=lambda i: -candidate[i])[:k])
        agreements.append(len(top_ref & top_cand) / k)
    return {
        "pairs": len(pairs),
        "max_abs_diff": float(np.max(np.abs(ref_unit - cand_unit))),
        "mean_abs_diff": float(np.mean(np.abs(ref_unit - cand_unit))),
        "max_abs_logit_diff": float(np.max(np.abs(reference - candidate))),
        "top_k": PROBE_TOP_K,
        "top_k_agreement": float(np.mean(agreements)),
    }


def check_parity(result: dict[str, Any], kind: str, label: str, max_diff: float | None = None,
                 min_agreement: float | None = None) -> None:
    limit_diff, limit_agreement = PARITY_LIMITS[kind]
    limit_diff = limit_diff if max_diff is None else max_diff
    limit_agreement = limit_agreement if min_agreement is None else min_agreement
    result["limit_max_abs_diff"], result["limit_top_k_agreement"] = limit_diff, limit_agreement
    ok = result["max_abs_diff"] <= limit_diff and result["top_k_agreement"] >= limit_agreement
    logger.info("%s parity vs fp32 on %d probe pairs: max |score diff| %.4g (limit %.3g), top-%d agreement "
                "%.3f (limit %.2f)%s", label, result["pairs"], result["max_abs_diff"], limit_diff, PROBE_TOP_K,
                result["top_k_agreement"], limit_agreement, "" if ok else ": REFUSED")
    if not ok:  # a NaN difference fails the comparison above, so it is refused too
        raise ParityError(
            f"{label} scores too differently from the fp32 model on the parity probe: max |score diff| "
            f"{result['max_abs_diff']:.4g} (limit {limit_diff:.3g}), top-{PROBE_TOP_K} agreement "
            f"{result['top_k_agreement']:.3f} (limit {limit_agreement:.2f}); not cached. Use another runtime "
            f"or precision, or loosen the limits with ?parity_max_diff= / ?parity_min_agreement=",
            vendor="cross-encoder",
        )


def _is_causal(ce: Any) -> bool:
    """Whether sentence-transformers loaded ``ce`` as a causal LM scored by a ``LogitScore`` module."""
    try:
        from sentence_transformers.cross_encoder.modules.logit_score import LogitScore
    except ImportError:
        return False
    return any(isinstance(module, LogitScore) for module in ce)


def build_artifact(model: str, out: Path, *, runtime: str, precision: str, quantize: str,
                   source_digest: str, calibration: Sequence[Pair] | None = None,
                   trust_remote_code: bool = False, parity_max_diff: float | None = None,
                   parity_min_agreement: float | None = None, threads: int | None = None,
                   source_name: str | None = None) -> Manifest:
    """Write a complete artifact for ``model`` into the empty directory ``out``; return its manifest."""
    st = require("sentence_transformers", "cross-encoder")
    started = time.perf_counter()
    ce = st.CrossEncoder(model, device="cpu", trust_remote_code=trust_remote_code)
    if _is_causal(ce):
        raise ConfigError(f"cannot export {describe_source(model)!r}: it is an LLM (causal-LM) reranker, scored "
                          "from its next-token logits; the fast path exports sequence-classification models "
                          "only, so serve it with runtime=torch")
    hf_tokenizer = ce.tokenizer
    if not getattr(hf_tokenizer, "is_fast", False):
        raise BackendUnavailableError(
            f"cannot export {describe_source(model)!r}: the fast path needs a fast (tokenizers) tokenizer",
            vendor="cross-encoder")
    max_length = int(getattr(ce, "max_seq_length", None) or 512)
    pad_id = int(hf_tokenizer.pad_token_id or 0)
    hf_tokenizer.backend_tokenizer.save(str(out / "tokenizer.json"))
    tokenizer = PairTokenizer.from_file(str(out / "tokenizer.json"), max_length, pad_id)
    inputs = _model_inputs(ce)
    # The exported graph returns the logits whatever activation the model was saved with (a Sigmoid, as
    # sentence-transformers 6 saves 1-label models, is applied by the Reranker's score mapping instead).
    # Recording the saved activation here once told the loader "already probabilities" about logits.
    activation = "identity"
    calibration_pairs = list(calibration) if calibration else sample_pairs("calibration")

    onnx_fp32 = out / ("model.onnx" if (runtime, quantize) == ("onnx", "none") else "fp32.onnx")
    _export_onnx(ce, tokenizer, inputs, onnx_fp32)
    if runtime == "onnx":
        model_file = "model.onnx"
        if quantize == "int8":
            _quantize_onnx(onnx_fp32, out / model_file)
    else:
        model_file = "model.xml"
        _to_openvino(onnx_fp32, out, quantize, calibration_pairs, tokenizer, inputs)
    if onnx_fp32.name != model_file:
        onnx_fp32.unlink()

    manifest = Manifest(
        runtime=runtime, precision=precision, quantize=quantize, model_file=model_file, inputs=inputs,
        max_length=max_length, pad_id=pad_id, activation=activation, source=describe_source(source_name or model),
        source_digest=source_digest,
        calibration={} if quantize == "none" else {
            "pairs": len(calibration_pairs),
            "source": "user" if calibration else "builtin",
            "digest": digest_pairs(calibration_pairs)},
        versions={name: package_version(name) for name in (
            "swaprank", "torch", "transformers", "sentence-transformers", "onnx", "onnxruntime",
            "openvino", "nncf", "tokenizers")},
    )
    probe = sample_pairs("probe")
    reference = _reference_logits(ce, tokenizer, inputs, probe)
    scorer = ArtifactScorer(out, manifest, precision=precision, threads=threads)
    candidate = np.asarray(scorer.predict(probe))
    label = f"{describe_source(source_name or model)} ({runtime}, {quantize if quantize != 'none' else precision})"
    result = parity(reference, candidate, probe, activation)
    result["export_seconds"] = round(time.perf_counter() - started, 2)
    check_parity(result, quantize if quantize != "none" else precision, label, parity_max_diff,
                 parity_min_agreement)
    # digests last, over the files as they will be served (load refuses any file that differs)
    manifest = Manifest(**{**manifest.__dict__, "parity": result, "files": digest_files(out)})
    manifest.write(out)
    return manifest
