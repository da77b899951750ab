"""What a cross-encoder spec asks to load, settled before anything heavy is imported.

Every refusal that needs no model (an empty instruction, a missing directory, a runtime a causal
LM cannot use, torch-only options on an exported runtime) happens here, so a bad spec fails in
milliseconds instead of after a model download or an export.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swaprank.backends.fastpath.choice import Plan, choose
from swaprank.backends.local_model import PATH_PREFIXES, check_model_directory
from swaprank.specs import BackendSpec
from swaprank.types import BackendUnavailableError, ConfigError, MissingDependencyError


@dataclass(frozen=True, slots=True)
class Target:
    """The spec a loader works from, with the backend's option lookup (the spec's value, else the
    declared default) and vendor, so loaders are plain functions that never touch the backend."""

    spec: BackendSpec
    option: Callable[[str], Any]
    vendor: str

    @property
    def model(self) -> str:
        return self.spec.model

    @property
    def expanded(self) -> str:
        return os.path.expanduser(self.spec.model)

    @property
    def source(self) -> str:
        """What sentence-transformers loads: the local directory when there is one, else the hub id."""
        return self.expanded if os.path.isdir(self.expanded) else self.model

    def hub_hint(self) -> str:
        """Why a hub id may have failed to load: offline, only the local cache can serve it."""
        if os.path.isdir(self.expanded):
            return ""
        return " (a hub id needs the Hugging Face hub or its local cache; offline, point the spec at a local directory)"

    def unavailable(self, message: str) -> BackendUnavailableError:
        """A load or scoring failure typed so the Reranker can fall back to the next backend."""
        return BackendUnavailableError(message, vendor=self.vendor)


def check(target: Target) -> None:
    """The refusals that need no model, no network and no heavy import: run when the config string
    is parsed (``CrossEncoderBackend.check_spec``) and again before loading."""
    instruction = target.option("instruction")
    if instruction is not None and not instruction.strip():
        raise ConfigError("instruction= is empty; leave it out to use the model's default instruction")
    check_model_directory(target.vendor, target.model)
    if os.path.isdir(target.expanded):
        return  # maybe an exported artifact: its manifest, read at load, says what it can serve
    runtime, quantize = target.option("runtime"), target.option("quantize")
    if runtime not in ("onnx", "openvino") and quantize != "int8":
        return  # torch, or bf16 on a runtime chosen at load (an LLM reranker stays on torch)
    try:
        plan = choose(runtime, target.option("precision"), quantize)
    except MissingDependencyError:
        return  # names its extra at load, where a chain may fall back to its next backend
    refuse_torch_options(target, plan)


def resolve(target: Target) -> Path | Plan:
    """An exported artifact directory to serve as it is, or the plan for the model to load (torch)
    or export (onnx/openvino)."""
    check(target)
    expanded = target.expanded
    from swaprank.backends.fastpath.artifact import is_artifact

    if os.path.isdir(expanded) and is_artifact(Path(expanded)):
        return Path(expanded)
    return _plan(target)


def _plan(target: Target) -> Plan:
    runtime = target.option("runtime")
    if is_causal_lm(target.model):
        return _causal_plan(target, runtime)
    plan = choose(runtime, target.option("precision"), target.option("quantize"))
    if plan.runtime != "torch":
        refuse_torch_options(target, plan)
    return plan


def _causal_plan(target: Target, runtime: str) -> Plan:
    """LLM rerankers run on torch only: the exporter writes sequence-classification graphs, and a
    causal LM exported that way would score with a head it does not have. Asking for another
    runtime or int8 is refused; ``precision=bf16`` falls back to torch with bfloat16 weights (the
    yes/no logits are upcast to fp32 before the difference is taken)."""
    if runtime not in ("auto", "torch"):
        raise ConfigError(f"{target.model!r} is an LLM (causal-LM) reranker; runtime={runtime} serves "
                          "exported sequence-classification models only: use runtime=torch (the default)")
    if target.option("quantize") == "int8":
        raise ConfigError(f"{target.model!r} is an LLM (causal-LM) reranker; quantize=int8 needs an "
                          "ONNX/OpenVINO export, which LLM rerankers do not have: drop quantize=int8")
    if target.option("calibration"):
        raise ConfigError("calibration= applies to quantize=int8 only")
    return Plan("torch", target.option("precision") or "fp32", "none")


def refuse_torch_options(target: Target, plan: Plan) -> None:
    """Exported runtimes run on the CPU at the artifact's precision: a torch dtype or device would be
    silently ignored, so it is refused."""
    for name in ("dtype", "device"):
        if target.option(name) not in (None, "cpu"):
            raise ConfigError(f"{name}={target.option(name)} applies to runtime=torch; "
                              f"runtime={plan.runtime} runs on the CPU at precision={plan.precision}")


def is_causal_lm(model: str) -> bool:
    """Whether ``model``'s config.json names a ``*ForCausalLM`` architecture, read without the network
    (a local directory, or a hub id already in the local cache); False when it cannot be told, in
    which case the exporter refuses a causal LM itself (:func:`swaprank.backends.fastpath.export`)."""
    expanded = os.path.expanduser(model)
    path: str | None = os.path.join(expanded, "config.json")
    if not os.path.isdir(expanded):
        path = None
        if model.count("/") == 1 and not model.startswith(PATH_PREFIXES):
            try:
                from huggingface_hub import try_to_load_from_cache

                found = try_to_load_from_cache(repo_id=model, filename="config.json")
                path = found if isinstance(found, str) else None
            except Exception:  # no huggingface_hub, an invalid repo id, an unreadable cache
                path = None
    if path is None or not os.path.isfile(path):
        return False
    try:
        with open(path, encoding="utf-8") as handle:
            architectures = json.load(handle).get("architectures") or []
    except (OSError, ValueError):
        return False
    return any(str(name).endswith("ForCausalLM") for name in architectures)
