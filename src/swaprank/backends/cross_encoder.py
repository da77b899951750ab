"""Local cross-encoders through sentence-transformers ``CrossEncoder`` (hub id or local path).

Long documents are the classic silent failure of local rerankers: the tokenizer cuts everything
past ``max_length`` (512 tokens for MiniLM) and the answer in paragraph six never gets scored. By
default we split such documents into overlapping token windows, score every window and keep the
best one; ``long_docs=truncate`` restores the plain behaviour (and we still count what was cut).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from swaprank.backends.base import BaseBackend, Scores, require, sigmoid
from swaprank.config import BackendSpec, Option
from swaprank.types import BackendUnavailableError, ConfigError

logger = logging.getLogger(__name__)

_PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


class CrossEncoderBackend(BaseBackend):
    vendor: ClassVar[str] = "cross-encoder"
    uses_api_key: ClassVar[bool] = False  # a key given to a chain never goes to a local model
    default_model: ClassVar[str | None] = "cross-encoder/ms-marco-MiniLM-L-6-v2"
    options: ClassVar[dict[str, Option]] = {
        "device": Option(str, None, "cpu, cuda, cuda:1, mps...; default: the best available"),
        "max_length": Option(int, None, "tokens per (query, document) pair; default: the model's", minimum=8),
        "batch_size": Option(int, 32, "pairs per forward pass", minimum=1),
        "dtype": Option(str, None, "weights dtype", choices=("float32", "float16", "bfloat16")),
        "long_docs": Option(str, "window", "over-long documents: score windows, keep max | truncate",
                            choices=("window", "truncate")),
        "window_overlap": Option(int, 32, "tokens shared by consecutive windows", minimum=0),
        "max_windows": Option(int, 16, "windows per document at most (the rest is cut, counted)", minimum=1),
        "activation": Option(str, "auto", "how raw outputs map to [0, 1]: auto | sigmoid | identity",
                             choices=("auto", "sigmoid", "identity")),
        "backend": Option(str, "torch", "inference runtime", choices=("torch", "onnx", "openvino")),
        "trust_remote_code": Option(bool, False, "allow custom model code from the hub"),
    }

    def __init__(self, spec: BackendSpec, *, api_key: Any = None) -> None:
        super().__init__(spec)
        self._lock = threading.Lock()  # HF fast tokenizers are not safe under concurrent calls
        self._model = self._load()
        self._tokenizer = getattr(self._model, "tokenizer", None)
        self.max_length: int = int(getattr(self._model, "max_seq_length", None) or 512)
        self._to_unit = self._score_mapping()

    # ----------------------------------------------------------------- loading

    def _load(self) -> Any:
        st = require("sentence_transformers", "cross-encoder")
        model = self.spec.model
        expanded = os.path.expanduser(model)
        if model.startswith(_PATH_PREFIXES) and not os.path.isdir(expanded):
            raise ConfigError(f"cross-encoder model directory does not exist: {model!r}")
        kwargs: dict[str, Any] = {
            "device": self.option("device"),
            "max_length": self.option("max_length"),
            "backend": self.option("backend"),
            "trust_remote_code": self.option("trust_remote_code"),
        }
        if self.option("dtype"):
            torch = require("torch", "cross-encoder")
            kwargs["model_kwargs"] = {"dtype": getattr(torch, self.option("dtype"))}
        try:
            ce = st.CrossEncoder(expanded if os.path.isdir(expanded) else model, **kwargs)
        except Exception as exc:  # hub unreachable, bad files, missing onnx runtime...
            hint = "" if os.path.isdir(expanded) else (
                " (a hub id needs the Hugging Face hub or its local cache; "
                "offline, point the spec at a local directory)"
            )
            raise BackendUnavailableError(
                f"could not load cross-encoder {model!r}: {type(exc).__name__}: {exc}{hint}",
                vendor=self.vendor,
            ) from exc
        if ce.num_labels != 1:
            raise ConfigError(
                f"cross-encoder {model!r} has {ce.num_labels} output labels; a reranker needs 1"
            )
        return ce

    def _score_mapping(self) -> Any:
        """Decide once how this model's native output becomes a [0, 1] score."""
        choice = self.option("activation")
        if choice == "sigmoid":
            return sigmoid
        if choice == "identity":
            return lambda x: min(1.0, max(0.0, x))
        activation = type(self._model.activation_fn).__name__
        if activation == "Sigmoid":  # the model already outputs probabilities
            return lambda x: x
        if activation != "Identity":
            logger.warning("cross-encoder %s uses activation %s; applying sigmoid to its output",
                           self.spec.model, activation)
        return sigmoid

    # ----------------------------------------------------------------- windows

    def _windows(self, query: str, texts: Sequence[str]) -> tuple[list[tuple[str, str]], list[int], int]:
        """Expand texts into (query, passage) pairs; ``owners[i]`` is the text pair i came from."""
        tokenizer = self._tokenizer
        if tokenizer is None or not getattr(tokenizer, "is_fast", False):
            return [(query, t) for t in texts], list(range(len(texts))), 0
        special = tokenizer.num_special_tokens_to_add(pair=True)
        query_len = len(tokenizer(query, add_special_tokens=False)["input_ids"])
        budget = self.max_length - special - query_len
        encoded = tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        window_mode = self.option("long_docs") == "window" and budget >= 16
        overlap = min(self.option("window_overlap"), max(0, budget // 2))
        max_windows = self.option("max_windows")
        pairs: list[tuple[str, str]] = []
        owners: list[int] = []
        truncated = 0
        for i, (text, offsets) in enumerate(zip(texts, encoded["offset_mapping"], strict=True)):
            n = len(offsets)
            if n <= max(budget, 0) or not window_mode:
                pairs.append((query, text))
                owners.append(i)
                truncated += n > max(budget, 0)
                continue
            start, count = 0, 0
            while count < max_windows:
                end = min(start + budget, n)
                pairs.append((query, text[offsets[start][0]: offsets[end - 1][1]]))
                owners.append(i)
                count += 1
                if end == n:
                    break
                start = end - overlap
            else:
                truncated += 1
        return pairs, owners, truncated

    # ----------------------------------------------------------------- scoring

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        return self.score_many([(query, texts)])[0]

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        """Score every query's pairs in one length-sorted pass, so small requests share batches."""
        with self._lock:
            expanded = [self._windows(query, texts) for query, texts in requests]
            all_pairs = [pair for pairs, _, _ in expanded for pair in pairs]
            raw_all = self._predict(all_pairs)
        results: list[Scores] = []
        offset = 0
        for (pairs, owners, truncated), (_, texts) in zip(expanded, requests, strict=True):
            best = [float("-inf")] * len(texts)
            for owner, value in zip(owners, raw_all[offset: offset + len(pairs)], strict=True):
                best[owner] = max(best[owner], value)
            offset += len(pairs)
            if truncated:
                logger.info("cross-encoder %s: %d of %d documents exceeded %d tokens and were cut",
                            self.spec.model, truncated, len(texts), self.max_length)
            results.append(Scores(raw=best, normalized=[self._to_unit(x) for x in best],
                                  truncated=truncated))
        return results

    def _predict(self, pairs: list[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        try:
            values = self._model.predict(
                pairs, batch_size=self.option("batch_size"), show_progress_bar=False,
                convert_to_numpy=True,
            )
        except Exception as exc:  # e.g. CUDA OOM: surface as a typed, fall-back-able failure
            raise BackendUnavailableError(
                f"cross-encoder {self.spec.model!r} failed to score: {type(exc).__name__}: {exc}",
                vendor=self.vendor,
            ) from exc
        return [float(v) for v in values.reshape(-1).tolist()]
