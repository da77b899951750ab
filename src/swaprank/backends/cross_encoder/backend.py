"""``CrossEncoderBackend``: the options a local cross-encoder takes, and scoring with the model it loaded.

Loading is done by plain functions (:mod:`.resolve`, then :mod:`.torch_loader` or :mod:`.exported`)
that each return one :class:`~.loaded.LoadedModel`; the backend keeps that value and nothing else
about the model, so what it scores with and what it tells the Reranker always come from one load.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from swaprank.backends.contract import Backend, Scores
from swaprank.backends.cross_encoder.exported import load_artifact, load_exported
from swaprank.backends.cross_encoder.loaded import LoadedModel
from swaprank.backends.cross_encoder.resolve import Target, check, resolve
from swaprank.backends.cross_encoder.torch_loader import load_torch
from swaprank.backends.devices import check_device
from swaprank.backends.fastpath.choice import RUNTIMES, Plan
from swaprank.specs import BackendSpec, Option
from swaprank.types import BackendUnavailableError
from swaprank.windows import Windowing, window_options

if TYPE_CHECKING:
    from swaprank.backends.fastpath.tokenize import PairTokenizer


class CrossEncoderBackend(Backend):
    """A local cross-encoder: torch by default, an exported ONNX/OpenVINO artifact for bf16/int8 or a
    directory made by ``swaprank export``; the same windows and [0, 1] mapping on every runtime."""

    vendor: ClassVar[str] = "cross-encoder"
    uses_api_key: ClassVar[bool] = False  # a key given to a chain never goes to a local model
    local: ClassVar[bool] = True  # scores in this process: serve coalesces its requests
    default_model: ClassVar[str | None] = "cross-encoder/ms-marco-MiniLM-L-6-v2"
    options: ClassVar[dict[str, Option]] = {
        "runtime": Option(str, "auto", "inference runtime: auto (torch for fp32; the fastest installed one for "
                          "bf16/int8) | torch | onnx | openvino", choices=RUNTIMES),
        "precision": Option(str, None, "fp32 (exact, default) | bf16 (reduced-precision math)",
                            choices=("fp32", "bf16")),
        "quantize": Option(str, "none", "int8: a quantized artifact (onnx or openvino)", choices=("none", "int8")),
        "calibration": Option(str, None, "JSON lines of {\"query\", \"text\"} pairs to calibrate int8 on "
                              "(default: a built-in generic sample)", risk="reads-files",
                              risk_reason="reads a local file"),
        "threads": Option(int, None, "CPU threads; default: physical cores (on torch: process-wide, "
                          "torch.set_num_threads)", minimum=1),
        "parity_max_diff": Option(float, None, "largest |score difference| vs fp32 an export may show on the "
                                  "parity probe; default: 0.001 fp32, 0.05 bf16, 0.25 int8", minimum=0),
        "parity_min_agreement": Option(float, None, "smallest mean top-3 agreement with fp32 on the parity probe; "
                                       "default: 1.0 fp32, 0.9 bf16, 0.8 int8", minimum=0),
        "device": Option(str, None, "cpu, cuda, cuda:1, mps... (torch only); default: the best available",
                         check=check_device),
        "max_length": Option(int, None, "tokens per (query, document) pair; default: the model's", minimum=8),
        "batch_size": Option(int, None, "pairs per forward pass; default: 32 on torch, 4 on onnx/openvino",
                             minimum=1),
        "dtype": Option(str, None, "torch weights dtype", choices=("float32", "float16", "bfloat16")),
        **window_options(),
        "activation": Option(str, "auto", "how raw outputs map to [0, 1]: auto | sigmoid | identity",
                             choices=("auto", "sigmoid", "identity")),
        "trust_remote_code": Option(bool, False, "allow custom model code from the hub",
                                     risk="runs-code",
                                     risk_reason="runs Python shipped with the model (its repository or directory)"),
        "instruction": Option(str, None, "task instruction for models that take one (LLM rerankers such as "
                              "Qwen3-Reranker: their chat template's system/Instruct slot); other models "
                              "warn once and score without it"),
    }

    @classmethod
    def check_spec(cls, spec: BackendSpec) -> None:
        """At parse time: a missing model directory, an empty instruction, options the runtime asked for
        cannot honour (device= with runtime=onnx...). Nothing is loaded or imported."""
        values = spec.option_dict
        check(Target(spec, lambda name: values.get(name, cls.options[name].default), cls.vendor))

    def __init__(self, spec: BackendSpec, *, api_key: Any = None) -> None:
        super().__init__(spec)
        self._lock = threading.Lock()  # one forward pass at a time: tokenizers and infer requests are not shared
        target = Target(spec, self.option, self.vendor)  # not kept: it holds self.option, a cycle to self
        what = resolve(target)
        if isinstance(what, Path):
            self.loaded: LoadedModel = load_artifact(target, what)
        elif what.runtime == "torch":
            self.loaded = load_torch(target, what)
        else:
            self.loaded = load_exported(target, what)

    # What the engine, the CLI and tests read about the loaded model, all from the one load.

    @property
    def plan(self) -> Plan:
        return self.loaded.plan

    @property
    def artifact(self) -> Path | None:
        return self.loaded.artifact

    @property
    def causal_lm(self) -> bool:
        return self.loaded.causal_lm

    @property
    def max_length(self) -> int:
        return self.loaded.max_length

    @property
    def tokenizer(self) -> PairTokenizer | None:
        return self.loaded.tokenizer

    # ----------------------------------------------------------------- scoring

    def windowing(self) -> Windowing | None:
        return self.loaded.windowing(self.option)

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        return self.score_many([(query, texts)])[0]

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        """Score every query's pairs in one length-sorted pass, so small requests share batches."""
        with self._lock:
            all_pairs = [(query, text) for query, texts in requests for text in texts]
            raw_all = self._predict(all_pairs)
        results: list[Scores] = []
        offset = 0
        for _, texts in requests:
            raw = raw_all[offset: offset + len(texts)]
            offset += len(texts)
            results.append(Scores(raw=raw, normalized=[self.loaded.to_unit(x) for x in raw]))
        return results

    def _predict(self, pairs: list[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        try:
            return self.loaded.predict(pairs)
        except Exception as exc:  # e.g. CUDA OOM: surface as a typed, fall-back-able failure
            raise BackendUnavailableError(
                f"cross-encoder {self.spec.model!r} failed to score: {type(exc).__name__}: {exc}",
                vendor=self.vendor,
            ) from exc
