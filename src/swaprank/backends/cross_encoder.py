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

LLM rerankers (Qwen3-Reranker, mxbai-rerank v2 and the like) load here too: sentence-transformers
6 reads a ``*ForCausalLM`` checkpoint as a chat-template prompt scored by a ``LogitScore`` module,
``logit("yes") - logit("no")`` at the last position. swaprank keeps that difference as the raw
score and maps it with one sigmoid, which is exactly P(yes) = softmax over the {yes, no} logits
(never a second sigmoid on top of the model's own). ``instruction=`` is handed to the model the way
sentence-transformers 6 does it: as the ``prompt``, which a chat-template model receives as a
system message (Qwen3-Reranker's template renders it as ``<Instruct>: ...``). The fast CPU path
exports sequence-classification graphs only, so causal-LM rerankers stay on torch.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

from swaprank.backends.contract import Backend, Scores, sigmoid
from swaprank.backends.fastpath.choice import RUNTIMES, Plan, choose
from swaprank.backends.notices import warn_instruction_ignored
from swaprank.backends.optional import require
from swaprank.specs import BackendSpec, Option
from swaprank.types import BackendUnavailableError, ConfigError
from swaprank.windows import Limit, TokenCounter, TokenizerCounter, Windowing, WindowPolicy, window_options

logger = logging.getLogger(__name__)

_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")
# Tokens an LLM reranker's windows leave free: the template overhead is measured with an empty query
# and document, and a BPE tokenizer may merge a token differently at the edges of the real ones.
_TEMPLATE_MARGIN = 4


class CrossEncoderBackend(Backend):
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
        "instruction": Option(str, None, "task instruction for models that take one (LLM rerankers such as "
                              "Qwen3-Reranker: their chat template's system/Instruct slot); other models "
                              "warn once and score without it"),
    }

    def __init__(self, spec: BackendSpec, *, api_key: Any = None) -> None:
        super().__init__(spec)
        self._lock = threading.Lock()  # one forward pass at a time: tokenizers and infer requests are not shared
        self.artifact: Path | None = None
        self.causal_lm = False  # an LLM reranker: scored by the yes/no logits after a chat-template prompt
        self._prompt: str | None = None  # what predict() gets as prompt= (the instruction, when it applies)
        self._counter: TokenCounter | None = None
        self._templated = False  # the pair reaches the model wrapped in a prompt or chat template
        instruction = self.option("instruction")
        if instruction is not None and not instruction.strip():  # refused before a model is loaded
            raise ConfigError("instruction= is empty; leave it out to use the model's default instruction")
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
        if _is_causal_lm(self.spec.model):
            return self._causal_plan(runtime)
        plan = choose(runtime, self.option("precision"), self.option("quantize"))
        if plan.runtime != "torch":
            self._refuse_torch_options(plan)
        return plan

    def _causal_plan(self, runtime: str) -> Plan:
        """LLM rerankers run on torch only: the exporter writes sequence-classification graphs, and a
        causal LM exported that way would score with a head it does not have. Asking for another
        runtime or int8 is refused; ``precision=bf16`` falls back to torch with bfloat16 weights (the
        yes/no logits are upcast to fp32 before the difference is taken)."""
        if runtime not in ("auto", "torch"):
            raise ConfigError(f"{self.spec.model!r} is an LLM (causal-LM) reranker; runtime={runtime} serves "
                              "exported sequence-classification models only: use runtime=torch (the default)")
        if self.option("quantize") == "int8":
            raise ConfigError(f"{self.spec.model!r} is an LLM (causal-LM) reranker; quantize=int8 needs an "
                              "ONNX/OpenVINO export, which LLM rerankers do not have: drop quantize=int8")
        if self.option("calibration"):
            raise ConfigError("calibration= applies to quantize=int8 only")
        return Plan("torch", self.option("precision") or "fp32", "none")

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
        self._activation_fn: Any = None  # None: the model's own activation
        logit_score = _yes_no_logit_score(ce)
        if logit_score is not None:
            # raw = logit(yes) - logit(no), untouched; _score_mapping applies the one sigmoid.
            self.causal_lm = True
            self._native = "identity"
            self._activation_fn = require("torch", "cross-encoder").nn.Identity()
            if self.option("activation") == "identity":
                raise ConfigError(f"{model!r} is an LLM reranker: its raw score is the yes/no logit difference "
                                  "(unbounded log-odds), so activation=identity would clip it; use auto or sigmoid")
        try:  # both render probe pairs through the model's input format (its chat template, for an LLM)
            self._prompt = self._resolve_instruction(ce)
            # A prompt or a chat template wraps the pair in tokens a BERT-style pair count misses.
            self._templated = self.causal_lm or self._prompt is not None or _chat_template_input(ce)
            if self._templated:
                self._counter = self._template_counter(ce)
        except ValueError as exc:  # e.g. a chat template that drops the query or document role
            raise BackendUnavailableError(f"could not load cross-encoder {model!r}: {exc}",
                                          vendor=self.vendor) from exc
        self._predict_raw: Callable[[list[tuple[str, str]]], list[float]] = self._predict_torch

    def _resolve_instruction(self, ce: Any) -> str | None:
        """The prompt to pass to ``predict`` for ``instruction=``, or None (warning once) when the model
        cannot take one.

        A model takes an instruction when sentence-transformers 6 gives the prompt to it as part of
        its input format: a chat template that renders the system message (checked by rendering a
        probe pair with and without it), or prompts saved with the model (the instruction then takes
        the saved prompt's place, prepended to the query). A plain BERT cross-encoder has neither;
        prepending text it was never trained on would change its scores in unmeasured ways.
        """
        instruction = self.option("instruction")
        if instruction is None:
            return None
        transformer = ce[0]
        if _chat_template_input(ce):
            probe = [("query", "document")]
            with_prompt = transformer.preprocess(probe, prompt=instruction)["input_ids"]
            without = transformer.preprocess(probe)["input_ids"]
            if with_prompt.shape == without.shape and bool((with_prompt == without).all()):
                warn_instruction_ignored(self.spec, "its chat template does not render a system message")
                return None
            return str(instruction)
        if getattr(ce, "prompts", None):
            return str(instruction)
        warn_instruction_ignored(self.spec, "the model takes no instruction (no chat template with a system "
                                 "message, no saved prompts)")
        return None

    def _template_counter(self, ce: Any) -> TokenCounter | None:
        """Token counts for windows when the prompt wraps the pair: the template's own tokens (an
        empty query and document rendered with the same prompt) take the place of the ``[CLS]``/``[SEP]``
        a BERT pair adds, so a window plus the query plus the template fits ``max_length``."""
        hf_tokenizer = getattr(ce, "tokenizer", None)
        if hf_tokenizer is None or not getattr(hf_tokenizer, "is_fast", False):
            return None
        prompt = self._prompt
        if prompt is None and hasattr(ce, "_resolve_prompt"):  # the model's saved default prompt, if any
            prompt = ce._resolve_prompt(None, None)
        features = ce[0].preprocess([("", "")], prompt=prompt)
        counter = TokenizerCounter(hf_tokenizer.backend_tokenizer)
        counter.special_tokens = int(features["attention_mask"].sum())
        return counter

    def _predict_torch(self, pairs: list[tuple[str, str]]) -> list[float]:
        values = self._model.predict(pairs, batch_size=self.option("batch_size") or 32, show_progress_bar=False,
                                     convert_to_numpy=True, prompt=self._prompt, activation_fn=self._activation_fn)
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
        if self.option("instruction") is not None:  # exported artifacts are sequence-classification models
            warn_instruction_ignored(self.spec, "exported artifacts score plain (query, document) pairs")

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
        if self._counter is not None:  # a prompt wraps the pair (LLM rerankers): the template counts as overhead
            return Windowing(self._counter, Limit(self.max_length, margin=_TEMPLATE_MARGIN),
                             WindowPolicy.from_options(self.option))
        if self._templated or self.tokenizer is None:  # a slow (Python) tokenizer: no offsets, so no windows
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


def _chat_template_input(ce: Any) -> bool:
    """Whether sentence-transformers renders this model's pairs through its chat template (the
    ``message`` modality), where a prompt arrives as a system message."""
    modalities = (getattr(ce[0], "modality_config", None) if len(ce) else None) or {}
    return "message" in modalities


def _yes_no_logit_score(ce: Any) -> Any:
    """The model's ``LogitScore`` module when it scores logit(yes) - logit(no), else None.

    A ``LogitScore`` with only a true token (zerank-style) outputs one logit, not log-odds: a
    sigmoid of it is not P(yes), so such models keep their own saved activation like any other.
    """
    try:
        from sentence_transformers.cross_encoder.modules.logit_score import LogitScore
    except ImportError:  # sentence-transformers < 5.4: no causal-LM cross-encoders
        return None
    last = ce[len(ce) - 1] if len(ce) else None
    if isinstance(last, LogitScore) and last.false_token_id is not None:
        return last
    return None


def _is_causal_lm(model: str) -> bool:
    """Whether ``model``'s config.json names a ``*ForCausalLM`` architecture, read without the network
    (a local directory, or a hub id already in the local cache); False when it cannot be told, in
    which case the exporter refuses a causal LM itself (:func:`swaprank.backends.fastpath.export`)."""
    import json

    expanded = os.path.expanduser(model)
    path: str | None = os.path.join(expanded, "config.json")
    if not os.path.isdir(expanded):
        path = None
        if model.count("/") == 1 and not model.startswith(_PATH_PREFIXES):
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


def _hub_hint(expanded: str) -> str:
    if os.path.isdir(expanded):
        return ""
    return " (a hub id needs the Hugging Face hub or its local cache; offline, point the spec at a local directory)"
