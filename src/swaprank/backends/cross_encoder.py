"""Local cross-encoders: sentence-transformers on torch, or an exported ONNX/OpenVINO artifact.

Long documents are the classic silent failure of local rerankers: the tokenizer cuts everything
past ``max_length`` (512 tokens for MiniLM) and the answer in paragraph six never gets scored. This
backend tells the Reranker its limit and tokenizer (``windowing``); the Reranker then splits such
documents into overlapping token windows and keeps the best one (:mod:`swaprank.windows`);
``long_docs=truncate`` restores the plain behaviour (and what was cut is still counted).

Which engine computes the scores is the only thing ``runtime``/``precision``/``quantize`` change:
windows, batching and the [0, 1] mapping are the same code on every runtime. The default is exact
fp32 on torch; ``precision=bf16`` and ``quantize=int8`` export the model once into the artifact
cache (``swaprank.backends.fastpath``) and serve it without importing torch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from swaprank.backends.base import BaseBackend, Scores, require, sigmoid
from swaprank.backends.fastpath.choice import RUNTIMES, Plan, choose
from swaprank.specs import BackendSpec, Option
from swaprank.types import BackendUnavailableError, ConfigError
from swaprank.windows import Limit, Windowing, WindowPolicy, window_options

logger = logging.getLogger(__name__)

_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


class CrossEncoderBackend(BaseBackend):
    vendor: ClassVar[str] = "cross-encoder"
    uses_api_key: ClassVar[bool] = False  # a key given to a chain never goes to a local model
    default_model: ClassVar[str | None] = "cross-encoder/ms-marco-MiniLM-L-6-v2"
    options: ClassVar[dict[str, Option]] = {
        "runtime": Option(str, "auto", "inference runtime: auto (torch for fp32; the fastest installed one for "
                          "bf16/int8) | torch | onnx | openvino", choices=RUNTIMES),
        "precision": Option(str, None, "fp32 (exact, default) | bf16 (reduced-precision math)",
                            choices=("fp32", "bf16")),
        "quantize": Option(str, "none", "int8: a quantized artifact (onnx or openvino)", choices=("none", "int8")),
        "calibration": Option(str, None, "JSON lines of {\"query\", \"text\"} pairs to calibrate int8 on "
                              "(default: a built-in generic sample)"),
        "threads": Option(int, None, "CPU threads; default: physical cores (on torch: process-wide, "
                          "torch.set_num_threads)", minimum=1),
        "parity_max_diff": Option(float, None, "largest |score difference| vs fp32 an export may show on the "
                                  "parity probe; default: 0.001 fp32, 0.05 bf16, 0.25 int8", minimum=0),
        "parity_min_agreement": Option(float, None, "smallest mean top-3 agreement with fp32 on the parity probe; "
                                       "default: 1.0 fp32, 0.9 bf16, 0.8 int8", minimum=0),
        "device": Option(str, None, "cpu, cuda, cuda:1, mps... (torch only); default: the best available"),
        "max_length": Option(int, None, "tokens per (query, document) pair; default: the model's", minimum=8),
        "batch_size": Option(int, None, "pairs per forward pass; default: 32 on torch, 4 on onnx/openvino",
                             minimum=1),
        "dtype": Option(str, None, "torch weights dtype", choices=("float32", "float16", "bfloat16")),
        **window_options(),
        "activation": Option(str, "auto", "how raw outputs map to [0, 1]: auto | sigmoid | identity",
                             choices=("auto", "sigmoid", "identity")),
        "backend": Option(str, None, "deprecated alias of runtime", choices=("torch", "onnx", "openvino")),
        "trust_remote_code": Option(bool, False, "allow custom model code from the hub"),
    }

    def __init__(self, spec: BackendSpec, *, api_key: Any = None) -> None:
        super().__init__(spec)
        self._lock = threading.Lock()  # one forward pass at a time: tokenizers and infer requests are not shared
        self.artifact: Path | None = None
        expanded = os.path.expanduser(spec.model)
        if spec.model.startswith(_PATH_PREFIXES) and not os.path.isdir(expanded):
            raise ConfigError(f"cross-encoder model directory does not exist: {spec.model!r}")
        from swaprank.backends.fastpath.artifact import is_artifact

        if os.path.isdir(expanded) and is_artifact(Path(expanded)):
            self._load_artifact(Path(expanded))
        else:
            self.plan = self._plan()
            if self.plan.runtime == "torch":
                self._load_torch()
            else:
                self._load_exported()
        self._to_unit = self._score_mapping()

    # ----------------------------------------------------------------- planning

    def _plan(self) -> Plan:
        runtime = self.option("runtime")
        legacy = self.option("backend")
        if legacy is not None:
            if runtime not in ("auto", legacy):
                raise ConfigError(f"backend={legacy} and runtime={runtime} disagree; backend is an alias of runtime")
            runtime = legacy
        plan = choose(runtime, self.option("precision"), self.option("quantize"))
        if plan.runtime != "torch":
            self._refuse_torch_options(plan)
        return plan

    def _refuse_torch_options(self, plan: Plan) -> None:
        for name in ("dtype", "device"):
            if self.option(name) not in (None, "cpu"):
                raise ConfigError(f"{name}={self.option(name)} applies to runtime=torch; "
                                  f"runtime={plan.runtime} runs on the CPU at precision={plan.precision}")

    # ----------------------------------------------------------------- loading: torch

    def _load_torch(self) -> None:
        st = require("sentence_transformers", "cross-encoder")
        model = self.spec.model
        expanded = os.path.expanduser(model)
        kwargs: dict[str, Any] = {
            "device": self.option("device"),
            "max_length": self.option("max_length"),
            "trust_remote_code": self.option("trust_remote_code"),
        }
        dtype = self.option("dtype") or ("bfloat16" if self.plan.precision == "bf16" else None)
        if dtype:
            torch = require("torch", "cross-encoder")
            kwargs["model_kwargs"] = {"dtype": getattr(torch, dtype)}
        if self.option("threads"):
            require("torch", "cross-encoder").set_num_threads(self.option("threads"))
        try:
            ce = st.CrossEncoder(expanded if os.path.isdir(expanded) else model, **kwargs)
        except Exception as exc:  # hub unreachable, bad files...
            raise BackendUnavailableError(
                f"could not load cross-encoder {model!r}: {type(exc).__name__}: {exc}{_hub_hint(expanded)}",
                vendor=self.vendor,
            ) from exc
        if ce.num_labels != 1:
            raise ConfigError(f"cross-encoder {model!r} has {ce.num_labels} output labels; a reranker needs 1")
        self._model = ce
        self.max_length = int(getattr(ce, "max_seq_length", None) or 512)
        hf_tokenizer = getattr(ce, "tokenizer", None)
        self.tokenizer = None
        if hf_tokenizer is not None and getattr(hf_tokenizer, "is_fast", False):
            from swaprank.backends.fastpath.tokenize import PairTokenizer

            self.tokenizer = PairTokenizer(hf_tokenizer.backend_tokenizer, self.max_length,
                                           int(hf_tokenizer.pad_token_id or 0))
        self._native = "sigmoid" if type(ce.activation_fn).__name__ == "Sigmoid" else type(ce.activation_fn).__name__
        self._predict_raw: Callable[[list[tuple[str, str]]], list[float]] = self._predict_torch

    def _predict_torch(self, pairs: list[tuple[str, str]]) -> list[float]:
        values = self._model.predict(pairs, batch_size=self.option("batch_size") or 32, show_progress_bar=False,
                                     convert_to_numpy=True)
        return [float(v) for v in values.reshape(-1).tolist()]

    # ----------------------------------------------------------------- loading: exported artifacts

    def _load_exported(self) -> None:
        from swaprank.backends.fastpath.cache import cached_artifact
        from swaprank.backends.fastpath.calibration import load_pairs

        calibration = self.option("calibration")
        if calibration and self.plan.quantize != "int8":
            raise ConfigError("calibration= applies to quantize=int8 only")
        self._load_artifact(cached_artifact(
            self.spec.model, self.plan, calibration=load_pairs(calibration) if calibration else None,
            trust_remote_code=self.option("trust_remote_code"),
            parity_max_diff=self.option("parity_max_diff"),
            parity_min_agreement=self.option("parity_min_agreement"), threads=self.option("threads")))

    def _load_artifact(self, directory: Path) -> None:
        from swaprank.backends.fastpath.artifact import Manifest
        from swaprank.backends.fastpath.sessions import ArtifactScorer

        manifest = Manifest.read(directory)
        precision = self.option("precision") or manifest.precision
        explicit = self.spec.option_dict
        for name, have in (("runtime", manifest.runtime), ("quantize", manifest.quantize)):
            if name in explicit and explicit[name] not in ("auto", have):
                raise ConfigError(f"{self.spec.model!r} is an exported {name}={have} artifact; "
                                  f"{name}={explicit[name]} needs another export (swaprank export)")
        if precision == "bf16" and manifest.runtime == "onnx":
            raise ConfigError("precision=bf16 needs an OpenVINO artifact; this one is ONNX Runtime")
        self.plan = Plan(manifest.runtime, precision, manifest.quantize)
        self._refuse_torch_options(self.plan)
        self.artifact = directory
        try:
            scorer = ArtifactScorer(directory, manifest, precision=precision, threads=self.option("threads"),
                                    batch_size=self.option("batch_size"), max_length=self.option("max_length"))
        except Exception as exc:  # a corrupt or foreign artifact (the runtimes raise their own types)
            raise BackendUnavailableError(f"could not load artifact {directory}: {type(exc).__name__}: {exc}",
                                          vendor=self.vendor) from exc
        self.max_length = scorer.max_length
        self.tokenizer = scorer.tokenizer
        self._native = manifest.activation
        self._predict_raw = scorer.predict

    def _score_mapping(self) -> Callable[[float], float]:
        """Decide once how this model's native output becomes a [0, 1] score."""
        choice = self.option("activation")
        if choice == "sigmoid":
            return sigmoid
        if choice == "identity":
            return lambda x: min(1.0, max(0.0, x))
        if self._native == "sigmoid":  # the model already outputs probabilities
            return lambda x: x
        if self._native not in ("identity", "Identity"):
            logger.warning("cross-encoder %s uses activation %s; applying sigmoid to its output",
                           self.spec.model, self._native)
        return sigmoid

    # ----------------------------------------------------------------- scoring

    def windowing(self) -> Windowing | None:
        if self.tokenizer is None:  # a slow (Python) tokenizer: no offsets, so no windows
            return None
        # No margin: a window cut inside a word may re-tokenize a token longer, which the model's own
        # truncation then drops; these windows are exactly the ones measured in benchmarks/RESULTS.md.
        return Windowing(self.tokenizer.counter, Limit(self.max_length), WindowPolicy.from_options(self.option))

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
            results.append(Scores(raw=raw, normalized=[self._to_unit(x) for x in raw]))
        return results

    def _predict(self, pairs: list[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        try:
            return self._predict_raw(pairs)
        except Exception as exc:  # e.g. CUDA OOM: surface as a typed, fall-back-able failure
            raise BackendUnavailableError(
                f"cross-encoder {self.spec.model!r} failed to score: {type(exc).__name__}: {exc}",
                vendor=self.vendor,
            ) from exc


def _hub_hint(expanded: str) -> str:
    if os.path.isdir(expanded):
        return ""
    return " (a hub id needs the Hugging Face hub or its local cache; offline, point the spec at a local directory)"
