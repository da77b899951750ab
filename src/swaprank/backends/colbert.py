"""Late interaction (ColBERT): per-token embeddings, MaxSim at query time, through sentence-transformers.

A ColBERT model encodes the query and each document *separately* into one vector per token; the
relevance of a document is ``MaxSim = sum over query tokens of the max cosine similarity over the
document's tokens``. That sits between a bi-encoder and a cross-encoder in cost: documents never
see the query, so their token embeddings can be computed once and reused for every later query,
which is what this backend does (an LRU of document embeddings keyed by a hash of the text,
``doc_cache`` documents). A candidate that comes back in the next request costs one matrix
product instead of a forward pass.

The model is loaded with sentence-transformers 6's ``MultiVectorEncoder``, which reads native
multi-vector saves, PyLate checkpoints and Stanford-NLP ColBERT checkpoints alike (prefix tokens,
query expansion, punctuation skiplist and the query/document lengths come from the checkpoint),
so PyLate itself is not needed.

Scores on [0, 1]: token embeddings are L2-normalised, so each query token's best match is a
cosine in [-1, 1] and ``MaxSim / (number of query token vectors)`` (the mean best-match cosine) is
in [-1, 1] whatever the query's length. The score is ``(mean + 1) / 2``: an affine map, so the
order is exactly MaxSim's and no two different MaxSims collapse to one score (a clip at 0 would
tie every document with a negative mean). ``score_threshold=t`` therefore keeps the documents
whose query tokens find, on average, a document token with cosine at least ``2t - 1``
(``0.8`` -> ``0.6``). ``raw_score`` is the MaxSim sum itself, which grows with the query's length,
so compare raw scores only within one query. With classic ColBERT query expansion (queries padded
to a fixed length with [MASK] tokens that also match), the expansion vectors count as query
tokens, as they do in the model's own scoring.

Long documents: the model reads at most ``document_length`` tokens per document (the query is
encoded apart, so it takes nothing from that budget); the Reranker cuts longer documents into
windows measured with the model's own tokenizer (:mod:`swaprank.windows`) and keeps the best
window's score, as for cross-encoders.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, ClassVar

from swaprank.backends import hub
from swaprank.backends.contract import Backend, Scores
from swaprank.backends.devices import check_device, check_device_present
from swaprank.backends.local_model import check_model_directory
from swaprank.backends.notices import warn_instruction_ignored
from swaprank.backends.optional import require
from swaprank.specs import BackendSpec, Option
from swaprank.types import BackendUnavailableError, BadResponseError, ConfigError
from swaprank.windows import Limit, TokenizerCounter, Windowing, WindowPolicy, window_options

logger = logging.getLogger(__name__)

_DOCUMENT_PROMPTS = ("document", "passage", "corpus")  # the order MultiVectorEncoder.encode_document uses


def text_key(text: str) -> bytes:
    """The cache key of a document: SHA-256 of its UTF-8 text (32 bytes, whatever the text's length)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def to_unit(maxsim: float, query_tokens: int) -> float:
    """MaxSim -> [0, 1]: the mean best-match cosine ``maxsim / query_tokens`` (in [-1, 1]), mapped
    affinely by ``(x + 1) / 2`` (see the module docstring for what a threshold then means)."""
    mean = maxsim / query_tokens
    return min(1.0, max(0.0, (mean + 1.0) / 2.0))  # the clamp only absorbs float rounding


class DocEmbeddingCache:
    """A bounded LRU of document token embeddings, keyed by :func:`text_key`.

    Bounded in documents, not bytes: one entry is ``tokens x dim`` float32 values, e.g. 300 tokens
    x 128 dims = 150 KB, so the default 2,000 documents hold about 300 MB. Entries stay where the
    model computed them (on a GPU, in its memory: lower ``doc_cache`` there). ``capacity=0`` turns
    caching off. Not thread-safe on its own: the backend holds its lock around every use.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[bytes, Any] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return entry

    def put(self, key: bytes, embedding: Any) -> None:
        if self.capacity <= 0:
            return
        self._entries[key] = embedding
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class ColBERTBackend(Backend):
    vendor: ClassVar[str] = "colbert"
    uses_api_key: ClassVar[bool] = False  # a key given to a chain never goes to a local model
    local: ClassVar[bool] = True  # scores in this process: serve coalesces its requests
    default_model: ClassVar[str | None] = "answerdotai/answerai-colbert-small-v1"
    options: ClassVar[dict[str, Option]] = {
        "device": Option(str, None, "cpu, cuda, cuda:1, mps...; default: the best available", check=check_device),
        "batch_size": Option(int, 32, "texts per forward pass (queries and documents are encoded apart)", minimum=1),
        "query_length": Option(int, None, "query tokens the model reads (longer queries are cut); "
                               "default: the model's", minimum=4),
        "document_length": Option(int, None, "document tokens the model reads (longer documents are windowed); "
                                  "default: the model's", minimum=8),
        "doc_cache": Option(int, 2000, "documents whose token embeddings are kept (LRU, by text hash) so a "
                            "repeated candidate is encoded once; 0: off", minimum=0),
        "dtype": Option(str, None, "torch weights dtype", choices=("float32", "float16", "bfloat16")),
        **window_options(),
        "trust_remote_code": Option(bool, False, "allow custom model code from the hub",
                                     risk="runs-code",
                                     risk_reason="runs Python shipped with the model (its repository or directory)"),
        "instruction": Option(str, None, "accepted for chains that set one everywhere; ColBERT models take "
                              "no instruction, so it is ignored with one warning"),
    }

    @classmethod
    def check_spec(cls, spec: BackendSpec) -> None:
        check_model_directory(cls.vendor, spec.model)

    def __init__(self, spec: BackendSpec, *, api_key: Any = None) -> None:
        super().__init__(spec)
        if self.option("instruction") is not None:
            warn_instruction_ignored(spec, "ColBERT encoders take no instruction")
        self._lock = threading.Lock()  # one forward pass at a time, and the cache changes under it
        expanded = os.path.expanduser(spec.model)
        check_model_directory(self.vendor, spec.model)  # already at parse time; the directory may have gone
        self._model = self._load(expanded if os.path.isdir(expanded) else spec.model)
        self._maxsim = require("sentence_transformers.util.similarity", "colbert").maxsim
        self.cache = DocEmbeddingCache(self.option("doc_cache"))
        self._document_prompt = next((self._model.prompts[name] for name in _DOCUMENT_PROMPTS
                                      if self._model.prompts.get(name) is not None), None)
        self.document_length = self._document_length()
        self.document_overhead = self._count_document_overhead()
        self._counter: TokenizerCounter | None = None

    # ----------------------------------------------------------------- loading

    def _load(self, name: str) -> Any:
        local_only = hub.prepare(name, self.vendor)  # hub unreachable: the cache, or one error in seconds
        st = require("sentence_transformers", "colbert")
        check_device_present(self.vendor, self.option("device"))
        kwargs: dict[str, Any] = {"device": self.option("device"),
                                  "trust_remote_code": self.option("trust_remote_code")}
        if local_only:
            kwargs["local_files_only"] = True
        if self.option("dtype"):
            kwargs["model_kwargs"] = {"dtype": getattr(require("torch", "colbert"), self.option("dtype"))}
        try:
            model = st.MultiVectorEncoder(name, **kwargs)
        except Exception as exc:  # hub unreachable, bad files...
            hint = "" if os.path.isdir(name) else (" (a hub id needs the Hugging Face hub or its local cache; "
                                                   "offline, point the spec at a local directory)")
            raise BackendUnavailableError(f"could not load colbert model {self.spec.model!r}: "
                                          f"{type(exc).__name__}: {exc}{hint}", vendor=self.vendor) from exc
        backbone = model[0]
        for name_, value in (("query_length", self.option("query_length")),
                             ("document_length", self.option("document_length"))):
            if value is None:
                continue
            if not hasattr(backbone, name_):
                raise ConfigError(f"{name_}= needs a text backbone; {self.spec.model!r} has "
                                  f"{type(backbone).__name__} first")
            expansion = getattr(backbone, "query_expansion", None) or {}
            if name_ == "query_length" and value < expansion.get("length", 0):
                # Expanded queries are padded to that length: a smaller cap would be silently ignored.
                raise ConfigError(f"query_length={value} is below the {expansion['length']} tokens this model pads "
                                  f"every query to (its query expansion); use at least that")
            setattr(backbone, name_, value)
        return model

    def _document_length(self) -> int:
        """Tokens per document, special and prefix tokens included: ``document_length``, else what the
        tokenizer and the position embeddings allow."""
        backbone = self._model[0]
        explicit = getattr(backbone, "document_length", None)
        if explicit:
            return int(explicit)
        candidates = [getattr(self._model, "max_seq_length", None)]
        config = getattr(backbone, "config", None)
        candidates.append(getattr(config, "max_position_embeddings", None))
        sane = [int(c) for c in candidates if isinstance(c, int) and 0 < c < 1_000_000]
        return min(sane) if sane else 512

    def _count_document_overhead(self) -> int:
        """Tokens the model adds to every document ([CLS], the [D] prefix, [SEP]...), measured by
        encoding an empty document the way ``encode_document`` does."""
        try:
            features = self._model.preprocess([""], prompt=self._document_prompt, task="document")
            return int(features["input_ids"].shape[-1])
        except Exception:  # a backbone without input_ids (images): no windows, see windowing()
            return -1

    # ----------------------------------------------------------------- windows

    def windowing(self) -> Windowing | None:
        """Windows of ``document_length`` minus the tokens every document gets ([CLS], [D], [SEP]),
        counted on the document alone: the query is encoded apart and takes none of the budget."""
        if self._counter is None:
            hf_tokenizer = getattr(self._model, "tokenizer", None)
            if hf_tokenizer is None or not getattr(hf_tokenizer, "is_fast", False) or self.document_overhead < 0:
                return None  # a slow (Python) tokenizer has no offsets: texts go whole, the model cuts
            self._counter = TokenizerCounter(hf_tokenizer.backend_tokenizer)
        budget = self.document_length - self.document_overhead
        return Windowing(self._counter, Limit(budget, includes_query=False), WindowPolicy.from_options(self.option))

    # ----------------------------------------------------------------- scoring

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        return self.score_many([(query, texts)])[0]

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        """All queries in one encode call; every distinct document encoded at most once (and not at
        all when the cache holds it); then one MaxSim per request."""
        if not requests:
            return []
        try:
            with self._lock:
                queries = self._model.encode_query([query for query, _ in requests], **self._encode_kwargs())
                documents = self._documents([text for _, texts in requests for text in texts])
                results = []
                for query_tokens, (_, texts) in zip(queries, requests, strict=True):
                    results.append(self._score_one(query_tokens, [documents[text_key(t)] for t in texts]))
                return results
        except BadResponseError:
            raise
        except Exception as exc:  # e.g. out of memory: a typed, fall-back-able failure
            raise BackendUnavailableError(f"colbert {self.spec.model!r} failed to score: "
                                          f"{type(exc).__name__}: {exc}", vendor=self.vendor) from exc

    def _encode_kwargs(self) -> dict[str, Any]:
        # normalize_embeddings: unit vectors whatever the checkpoint's pipeline ends with, so every
        # token similarity is a cosine and the [0, 1] mapping holds (a no-op on normalised models).
        return {"batch_size": self.option("batch_size"), "normalize_embeddings": True, "show_progress_bar": False}

    def _documents(self, texts: Sequence[str]) -> dict[bytes, Any]:
        """Token embeddings of every distinct text, from the cache or one encode call for the rest."""
        found: dict[bytes, Any] = {}
        missing: dict[bytes, str] = {}
        for text in texts:
            key = text_key(text)
            if key in found or key in missing:
                continue
            cached = self.cache.get(key)
            if cached is None:
                missing[key] = text
            else:
                found[key] = cached
        if missing:
            encoded = self._model.encode_document(list(missing.values()), **self._encode_kwargs())
            for key, embedding in zip(missing, encoded, strict=True):
                found[key] = embedding
                self.cache.put(key, embedding)
        return found

    def _score_one(self, query_tokens: Any, documents: list[Any]) -> Scores:
        if not documents:
            return Scores(raw=[], normalized=[])
        count = int(query_tokens.shape[0])
        if count == 0:
            raise BadResponseError(f"colbert {self.spec.model!r} produced no query token embeddings",
                                   vendor=self.vendor)
        raw = [float(v) for v in self._maxsim(query_tokens, documents).reshape(-1).tolist()]
        return Scores(raw=raw, normalized=[to_unit(x, count) for x in raw])
