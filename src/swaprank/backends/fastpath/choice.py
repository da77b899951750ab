"""Which runtime serves a request for a precision and a quantization.

The default stays exact: fp32 on torch, as sentence-transformers computes it. Asking for less
precision picks the fastest runtime that is installed, in the order measured on CPUs
(benchmarks/RESULTS.md): OpenVINO first (its bf16 and int8 kernels use AVX-512 BF16/VNNI and
AMX), then ONNX Runtime (dynamic int8), then torch (bf16 weights). ``runtime=`` overrides it.
Detection looks for the packages without importing them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from swaprank.types import ConfigError, MissingDependencyError

RUNTIMES = ("auto", "torch", "onnx", "openvino")
# The packages that must be importable to *serve* from each runtime, and their pip extra.
_SERVE = {"onnx": ("onnxruntime", "onnx"), "openvino": ("openvino", "openvino"),
          "torch": ("sentence_transformers", "cross-encoder")}
_PREFERENCE = {
    ("fp32", "none"): ("torch",),
    ("bf16", "none"): ("openvino", "torch"),
    ("fp32", "int8"): ("openvino", "onnx"),
    ("bf16", "int8"): ("openvino",),
}


@dataclass(frozen=True)
class Plan:
    runtime: str  # torch | onnx | openvino
    precision: str  # fp32 | bf16
    quantize: str  # none | int8


def installed(runtime: str) -> bool:
    return importlib.util.find_spec(_SERVE[runtime][0]) is not None


def choose(runtime: str, precision: str | None, quantize: str, *, export: bool = False) -> Plan:
    """Resolve ``auto`` and check that the combination exists; raise a typed error when it doesn't.

    ``precision`` None means fp32, except for int8 on OpenVINO: the layers int8 leaves in floating
    point then run in bf16 (what OpenVINO itself picks on CPUs with bf16 support; measured on the
    stand-in: 96% instead of 97% top-10 agreement with fp32, and about 40% faster); write
    ``precision=fp32`` to keep them exact. ``export`` leaves torch out (an artifact is wanted even for fp32:
    ``swaprank export`` of a plain spec makes an exact fp32 artifact for torch-free serving).
    """
    wanted = precision or "fp32"
    if export and runtime == "torch":
        raise ConfigError("runtime=torch needs no export; ask for runtime=onnx|openvino, precision=bf16 or "
                          "quantize=int8")
    if runtime == "auto":
        candidates = _PREFERENCE[(wanted, quantize)]
        if export:
            candidates = tuple(name for name in candidates if name != "torch") or ("openvino", "onnx")
        for name in candidates:
            if installed(name):
                return Plan(name, _remainder(name, precision, quantize), quantize)
        extras = " or ".join(f'"swaprank[{_SERVE[name][1]}]"' for name in candidates)
        raise MissingDependencyError(
            f"precision={wanted} quantize={quantize} needs one of the runtimes {', '.join(candidates)}: "
            f"pip install {extras}", name=_SERVE[candidates[0]][0]
        )
    if quantize == "int8" and runtime == "torch":
        raise ConfigError("quantize=int8 runs on runtime=openvino or runtime=onnx, not torch")
    if wanted == "bf16" and runtime == "onnx":
        raise ConfigError("precision=bf16 runs on runtime=openvino or runtime=torch; ONNX Runtime's CPU "
                          "provider has no bf16 kernels")
    return Plan(runtime, _remainder(runtime, precision, quantize), quantize)


def _remainder(runtime: str, precision: str | None, quantize: str) -> str:
    if precision is None and quantize == "int8" and runtime == "openvino":
        return "bf16"
    return precision or "fp32"
