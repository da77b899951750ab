"""The Reranker: the one place where reranking policy lives.

Adapters translate framework objects in and out; backends turn (query, text) pairs into scores.
Everything between (validation, dedup, ordering, top_n, thresholds, fusion, fallback chains,
passthrough) is here, once, so every backend behaves the same way behind every framework.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from typing import Any, Literal

from pydantic import SecretStr

from swaprank import registry
from swaprank.backends.base import Backend, Scores, run_blocking
from swaprank.cache import ScoreCache
from swaprank.config import parse_chain
from swaprank.redaction import chain_label, redact_text, redacted_chain, redacted_spec, spec_label
from swaprank.specs import BackendSpec, format_chain
from swaprank.tracing import CallSpan, call_span
from swaprank.types import (
    BackendError,
    BackendUnavailableError,
    BadResponseError,
    ConfigError,
    Document,
    InvalidInputError,
    MissingDependencyError,
    RankedDocument,
    RerankResult,
    Usage,
)
from swaprank.windows import Expansion, expand, log_long_documents

logger = logging.getLogger("swaprank")

DocumentInput = str | Document | Sequence[Any] | Mapping[str, Any]
OnError = Literal["raise", "passthrough"]
TopN = int | None | Sequence[int | None]  # one for every query, or one per query (rerank_many)
ApiKey = SecretStr | str | Mapping[str, SecretStr | str] | None

RRF_K = 60


# ------------------------------------------------------------------ input validation


def _check_query(query: Any, where: str = "query") -> str:
    if not isinstance(query, str):
        raise InvalidInputError(f"{where} must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InvalidInputError(f"{where} is empty")
    return query


def _to_document(item: Any, position: str) -> Document:
    if isinstance(item, Document):
        doc = item
    elif isinstance(item, str):
        return Document(item)
    elif item is None:
        raise InvalidInputError(f"{position} is None; expected a string or (text, id, metadata)")
    elif isinstance(item, Mapping):
        if "text" not in item:
            raise InvalidInputError(f"{position} is a mapping without a 'text' key")
        doc = Document(item["text"], item.get("id"), item.get("metadata") or {})
    elif isinstance(item, (tuple, list)) and 1 <= len(item) <= 3:
        doc = Document(*item)
        if doc.metadata is None:
            doc = Document(doc.text, doc.id)
    else:
        raise InvalidInputError(
            f"{position} is {type(item).__name__}; expected a string, a swaprank.Document, "
            "a (text, id, metadata) tuple or a {'text': ...} mapping"
        )
    if not isinstance(doc.text, str):
        raise InvalidInputError(f"{position} has text of type {type(doc.text).__name__}; expected str")
    if not isinstance(doc.metadata, Mapping):
        raise InvalidInputError(f"{position} has metadata of type {type(doc.metadata).__name__}; expected a mapping")
    return doc


def normalize_documents(documents: Any, where: str = "documents") -> list[Document]:
    """Accept the shapes callers naturally have and reject the rest with the position named."""
    if isinstance(documents, (str, bytes, Mapping)) or not isinstance(documents, Iterable):
        raise InvalidInputError(f"{where} must be a list of documents, got {type(documents).__name__}")
    return [_to_document(item, f"{where}[{i}]") for i, item in enumerate(documents)]


def _check_top_n(top_n: Any, error: type[ValueError] = InvalidInputError) -> int | None:
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, int):
        raise error(f"top_n must be a positive int or None, got {top_n!r}")
    if top_n <= 0:
        raise error(f"top_n must be a positive int or None, got {top_n}")
    return top_n


def _check_min_results(value: Any, top_n: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"min_results must be a non-negative int, got {value!r}")
    if top_n is not None and value > top_n:
        raise ConfigError(f"min_results ({value}) cannot exceed top_n ({top_n})")
    return value


def _check_threshold(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"score_threshold must be a number in [0, 1] (scores are normalised), got {value!r}")
    return float(value)


def _dedup(texts: Sequence[str], enabled: bool) -> tuple[list[str], list[int]]:
    """Unique texts to score, and for each input the position of its text among them."""
    if not enabled:
        return list(texts), list(range(len(texts)))
    first: dict[str, int] = {}
    positions = [first.setdefault(text, len(first)) for text in texts]
    return list(first), positions


def _check_scores(scores: Any, expected: int, spec: BackendSpec) -> Scores:
    """A backend that answers with the wrong shape must fail loudly, never mis-rank silently."""
    vendor = spec.backend
    if not isinstance(scores, Scores):
        raise BadResponseError(f"backend returned {type(scores).__name__}, not Scores", vendor=vendor)
    if len(scores.raw) != expected or len(scores.normalized) != expected:
        raise BadResponseError(
            f"backend returned {len(scores.raw)} raw / {len(scores.normalized)} scores for {expected} documents",
            vendor=vendor,
        )
    for value in scores.normalized:
        if not isinstance(value, float) or math.isnan(value) or not 0.0 <= value <= 1.0:
            raise BadResponseError(f"backend returned score {value!r} outside [0, 1]", vendor=vendor)
    return scores


# ------------------------------------------------------------------ the engine


class Reranker:
    """Rerank candidates for a query with the model named by a config string.

    ``model`` is a config string such as ``"cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"``
    or a fallback chain ``"cohere:rerank-v3.5 | cross-encoder:..."``; ``None`` reads
    ``SWAPRANK_MODEL``. Backends load lazily on first use (``warmup()`` loads them now) and are
    shared process-wide between Rerankers with the same spec.
    """

    def __init__(
        self,
        model: str | BackendSpec | None = None,
        *,
        top_n: int | None = None,
        score_threshold: float | None = None,
        min_results: int = 0,
        fuse: Literal["rrf"] | None = None,
        rrf_k: int = RRF_K,
        on_error: OnError = "raise",
        dedup: bool = True,
        cache_size: int = 0,
        api_key: ApiKey = None,
    ) -> None:
        self.specs: tuple[BackendSpec, ...] = parse_chain(model)
        self.top_n = _check_top_n(top_n, ConfigError)
        self.score_threshold = _check_threshold(score_threshold)
        self.min_results = _check_min_results(min_results, self.top_n)
        if fuse not in (None, "rrf"):
            raise ConfigError(f"fuse must be None or 'rrf', got {fuse!r}")
        if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 0:
            raise ConfigError(f"rrf_k must be a non-negative int, got {rrf_k!r}")
        if on_error not in ("raise", "passthrough"):
            raise ConfigError(f"on_error must be 'raise' or 'passthrough', got {on_error!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(f"cache_size must be a non-negative int (0 disables the cache), got {cache_size!r}")
        self.fuse = fuse
        self.rrf_k = rrf_k
        self.cache = ScoreCache(cache_size) if cache_size else None
        self.on_error: OnError = on_error
        self.dedup = dedup
        self._api_keys = self._split_keys(api_key)
        self._backends: dict[BackendSpec, Backend] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the configuration only: never the API keys, never live clients or models.

        An unpickled Reranker (in a worker process, a Ray task...) re-reads keys from the
        environment and re-attaches to that process's shared backends on first use.
        """
        state = self.__dict__.copy()
        state["_api_keys"] = {}
        state["_backends"] = {}
        state["cache"] = ScoreCache(self.cache.maxsize) if self.cache is not None else None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def model(self) -> str:
        """The canonical config string (chains joined with ``|``), credentials included: it is what
        builds the backends. Shown anywhere (repr, logs, results), it is masked (swaprank.redaction)."""
        return format_chain(self.specs)

    @property
    def model_name(self) -> str:
        """``backend:model`` of every backend of the chain: no URL, no options, no credentials."""
        return chain_label(self.specs)

    def __repr__(self) -> str:
        threshold = "" if self.score_threshold is None else f", score_threshold={self.score_threshold}"
        minimum = f", min_results={self.min_results}" if self.min_results else ""
        return (
            f"Reranker(model={redacted_chain(self.specs)!r}, top_n={self.top_n}{threshold}{minimum}, "
            f"fuse={self.fuse!r}, on_error={self.on_error!r})"
        )

    # ------------------------------------------------------------- backends

    def _split_keys(self, api_key: ApiKey) -> dict[str, SecretStr | None]:
        """Route keys to backends: a mapping by backend name, or one key for the one keyed backend.

        A single key is never broadcast along a chain: "cohere:... | jina:..." with one key would
        otherwise send the Cohere key to Jina's servers. Local backends take no key.
        """
        def wrap(key: SecretStr | str | None) -> SecretStr | None:
            return key if key is None or isinstance(key, SecretStr) else SecretStr(key)

        if isinstance(api_key, Mapping):
            return {registry.canonical_name(name): wrap(key) for name, key in api_key.items()}
        if api_key is None:
            return {}
        keyed = sorted({spec.backend for spec in self.specs
                        if getattr(registry.backend_factory(spec.backend), "uses_api_key", True)})
        if len(keyed) > 1:
            example = ", ".join(f"{name!r}: ..." for name in keyed)
            raise ConfigError(f"one api_key for a chain of {', '.join(keyed)} would reach every one of them; "
                              f"pass a mapping such as api_key={{{example}}}, or set each vendor's env var")
        return {name: wrap(api_key) for name in keyed}

    def _backend(self, spec: BackendSpec) -> Backend:
        backend = self._backends.get(spec)
        if backend is None:
            backend = registry.get_backend(spec, api_key=self._api_keys.get(spec.backend))
            with self._lock:
                self._backends[spec] = backend
        return backend

    def warmup(self) -> None:
        """Load every backend of the chain now instead of on the first query."""
        for spec in self.specs:
            self._backend(spec)

    # ------------------------------------------------------------- public API

    def rerank(self, query: str, documents: Iterable[DocumentInput], top_n: int | None = None) -> RerankResult:
        """Rerank ``documents`` for ``query``; see the behaviour contract in DESIGN.md section 3."""
        return self.rerank_many([query], [documents], top_n=top_n)[0]

    async def arerank(
        self, query: str, documents: Iterable[DocumentInput], top_n: int | None = None
    ) -> RerankResult:
        """Async ``rerank``: native async clients for APIs, a bounded thread pool for local models."""
        return (await self.arerank_many([query], [documents], top_n=top_n))[0]

    def rerank_many(
        self,
        queries: Sequence[str],
        docs_per_query: Sequence[Iterable[DocumentInput]],
        top_n: TopN = None,
    ) -> list[RerankResult]:
        """Rerank several queries at once; local models batch all their pairs together.

        ``top_n`` applies to every query, or is a sequence with one value per query (``None``: the
        Reranker's own ``top_n``), so unrelated requests coalesced into one call (swaprank serve's
        batcher) each keep theirs.
        """
        plan = _Plan.build(self, queries, docs_per_query, top_n)
        with self._span(plan) as span:
            try:
                results = self._run(plan, span)
            except BaseException as exc:
                span.failed(exc)
                raise
            span.served(results, plan.failures)
            return results

    def _run(self, plan: _Plan, span: CallSpan) -> list[RerankResult]:
        if not plan.requests:
            return plan.finish(self, None, None)
        for spec in self.specs:
            try:
                backend = self._backend(spec)
                expansions = self._expand(spec, backend, plan.requests)
                requests = [(e.query, e.texts) for e in expansions]
                cache = self._cache_for(backend, requests)
                todo = cache.missing(spec, requests) if cache is not None else requests
                fresh = backend.score_many(todo) if todo else []
                scores = self._merge(spec, requests, todo, fresh, cache)
                return plan.finish(self, spec, _pool(expansions, scores), expansions, _label(backend, spec))
            except Exception as exc:  # typed or not, every failure goes through the policy
                plan.errors.append(self._note_failure(spec, exc, span))
        return plan.fail(self)

    async def arerank_many(
        self,
        queries: Sequence[str],
        docs_per_query: Sequence[Iterable[DocumentInput]],
        top_n: TopN = None,
    ) -> list[RerankResult]:
        plan = _Plan.build(self, queries, docs_per_query, top_n)
        with self._span(plan) as span:
            try:
                results = await self._arun(plan, span)
            except BaseException as exc:
                span.failed(exc)
                raise
            span.served(results, plan.failures)
            return results

    async def _arun(self, plan: _Plan, span: CallSpan) -> list[RerankResult]:
        if not plan.requests:
            return plan.finish(self, None, None)
        for spec in self.specs:
            try:
                cached = self._backends.get(spec)
                backend = cached if cached is not None else await run_blocking(self._backend, spec)
                # Tokenizing long documents (and a server's first /info) is blocking work.
                expansions = await run_blocking(self._expand, spec, backend, plan.requests)
                requests = [(e.query, e.texts) for e in expansions]
                cache = self._cache_for(backend, requests)
                todo = cache.missing(spec, requests) if cache is not None else requests
                fresh = await backend.ascore_many(todo) if todo else []
                scores = self._merge(spec, requests, todo, fresh, cache)
                return plan.finish(self, spec, _pool(expansions, scores), expansions, _label(backend, spec))
            except Exception as exc:  # typed or not, every failure goes through the policy
                plan.errors.append(self._note_failure(spec, exc, span))
        return plan.fail(self)

    def _span(self, plan: _Plan) -> AbstractContextManager[CallSpan]:
        return call_span(self.model_name, spec_label(self.specs[0]), queries=len(plan.docs),
                         candidates=sum(len(d) for d in plan.docs), top_n=plan.top_n,
                         score_threshold=self.score_threshold, min_results=self.min_results)

    @staticmethod
    def _expand(spec: BackendSpec, backend: Backend, requests: list[tuple[str, list[str]]]) -> list[Expansion]:
        """Window the documents that exceed this backend's limit (DESIGN.md section 3, swaprank.windows)."""
        windowing_of = getattr(backend, "windowing", None)  # third-party backends may not have it
        windowing = windowing_of() if windowing_of is not None else None
        expansions = [expand(query, texts, windowing) for query, texts in requests]
        log_long_documents(spec_label(spec), expansions, windowing.limit if windowing is not None else None)
        return expansions

    def _cache_for(self, backend: Backend, requests: list[tuple[str, list[str]]]) -> ScoreCache | None:
        """The score cache, unless the backend's scores depend on the whole candidate list (a listwise
        LLM's are positions): a score cached from another list would mis-rank silently."""
        if self.cache is not None and getattr(backend, "list_relative_scores", False):
            self.cache.bypassed(requests)  # scored, uncached: misses (swaprank eval's docs/s counts them)
            return None
        return self.cache

    def _merge(self, spec: BackendSpec, requests: list[tuple[str, list[str]]],
               todo: list[tuple[str, list[str]]], fresh: Any, cache: ScoreCache | None) -> list[Scores]:
        """Validate what the backend answered, then fill in cache hits."""
        if not isinstance(fresh, list) or len(fresh) != len(todo):
            raise BadResponseError(f"backend answered {len(fresh) if isinstance(fresh, list) else fresh!r} "
                                   f"of {len(todo)} queries", vendor=spec.backend)
        checked = [_check_scores(scores, len(texts), spec) for scores, (_, texts) in zip(fresh, todo, strict=True)]
        return cache.complete(spec, requests, todo, checked) if cache is not None else checked

    # ------------------------------------------------------------- failure policy

    def _note_failure(self, spec: BackendSpec, exc: BaseException, span: CallSpan) -> BaseException:
        if isinstance(exc, (ConfigError, InvalidInputError)):
            raise exc  # a wrong spec or input is the caller's to fix, not a reason to fall back
        if not isinstance(exc, (BackendError, MissingDependencyError)):
            wrapped = BackendUnavailableError(
                f"backend {redacted_spec(spec)!r} raised {type(exc).__name__}: {redact_text(str(exc))}",
                vendor=spec.backend,
            )
            wrapped.__cause__ = exc
            exc = wrapped
        remaining = self.specs.index(spec) < len(self.specs) - 1
        logger.warning(
            "swaprank: %s failed: %s%s", redacted_spec(spec), exc,
            "; falling back to the next model" if remaining else "",
        )
        span.fallback(spec_label(spec), exc)
        return exc


class _Plan:
    """The validated, deduplicated work of one call, and how to turn scores into results."""

    def __init__(self, docs: list[list[Document]], positions: list[list[int]],
                 requests: list[tuple[str, list[str]]], slots: list[int | None], top_n: int | None,
                 top_ns: list[int | None]) -> None:
        self.docs = docs
        self.positions = positions
        self.requests = requests
        self.slots = slots  # per query: its index in ``requests``, or None when it had no documents
        self.top_n = top_n  # what traces show: the call's top_n (None when it varies by query)
        self.top_ns = top_ns  # per query
        self.errors: list[BaseException] = []  # the chain's failed backends, in order

    @property
    def failures(self) -> int:
        return len(self.errors)

    def _billed(self, served: Usage | None = None) -> Usage | None:
        """What this call cost: the serving backend's usage plus what failed attempts were billed."""
        return Usage.total([*(getattr(e, "usage", None) for e in self.errors), served])

    @classmethod
    def build(cls, rr: Reranker, queries: Sequence[str], docs_per_query: Sequence[Iterable[DocumentInput]],
              top_n: TopN) -> _Plan:
        if isinstance(queries, str):
            raise InvalidInputError("queries must be a list of strings, got a single str")
        queries = list(queries)
        docs_lists = list(docs_per_query)
        if len(queries) != len(docs_lists):
            raise InvalidInputError(
                f"got {len(queries)} queries but {len(docs_lists)} document lists; they must match"
            )
        if isinstance(top_n, Sequence) and not isinstance(top_n, str):
            if len(top_n) != len(queries):
                raise InvalidInputError(f"got {len(top_n)} top_n values for {len(queries)} queries; they must match")
            top_ns = [_check_top_n(t) if t is not None else rr.top_n for t in top_n]
            top_n = top_ns[0] if len(set(top_ns)) == 1 else None
        else:
            top_n = _check_top_n(top_n) if top_n is not None else rr.top_n
            top_ns = [top_n] * len(queries)
        single = len(queries) == 1
        docs: list[list[Document]] = []
        positions: list[list[int]] = []
        requests: list[tuple[str, list[str]]] = []
        slots: list[int | None] = []
        for q, (query, documents) in enumerate(zip(queries, docs_lists, strict=True)):
            _check_query(query, "query" if single else f"queries[{q}]")
            normalized = normalize_documents(documents, "documents" if single else f"docs_per_query[{q}]")
            unique, pos = _dedup([d.text for d in normalized], rr.dedup)
            docs.append(normalized)
            positions.append(pos)
            slots.append(len(requests) if normalized else None)
            if normalized:
                requests.append((query, unique))
        return cls(docs, positions, requests, slots, top_n, top_ns)

    def finish(self, rr: Reranker, spec: BackendSpec | None, scores: list[Scores] | None,
               expansions: Sequence[Expansion] = (), label: str = "") -> list[RerankResult]:
        model = redacted_spec(spec) if spec is not None else ""
        if spec is not None and self.errors:
            logger.warning("swaprank: served by fallback %s after %d failure(s)", model, len(self.errors))
        results = []
        for docs, positions, slot, top_n in zip(self.docs, self.positions, self.slots, self.top_ns, strict=True):
            if slot is None or scores is None or spec is None:
                results.append(RerankResult([], model=model, model_name=label))
                continue
            checked = scores[slot]
            expansion = expansions[slot] if expansions else None
            ranked = [
                RankedDocument(index=i, score=checked.normalized[u], raw_score=checked.raw[u],
                               text=d.text, id=d.id, metadata=dict(d.metadata),
                               windows=expansion.windows[u] if expansion else 1,
                               truncated=expansion.cut[u] if expansion else False)
                for i, (d, u) in enumerate(zip(docs, positions, strict=True))
            ]
            ranked = _threshold(_order(ranked, rr.fuse, rr.rrf_k), rr.score_threshold, rr.min_results)
            # Counted over every input document (duplicates included), before top_n and thresholds.
            windowed = sum(1 for u in positions if expansion and expansion.windows[u] > 1)
            measured = expansion is not None and expansion.measured
            cut = sum(1 for u in positions if expansion.cut[u]) if measured and expansion else checked.truncated
            # The call's cost (failed attempts included) is reported once, on the first query's result.
            usage = self._billed(checked.usage) if slot == 0 else checked.usage
            results.append(RerankResult(ranked[:top_n], model=model, model_name=label, usage=usage,
                                        truncated=cut, windowed=windowed))
        return results

    def fail(self, rr: Reranker) -> list[RerankResult]:
        last = self.errors[-1]
        if rr.on_error == "raise":
            raise last
        logger.error("swaprank: every model failed (%s); returning documents in input order", last)
        results: list[RerankResult] = []
        for docs, top_n in zip(self.docs, self.top_ns, strict=True):
            kept = [
                RankedDocument(index=i, score=0.0, raw_score=math.nan, text=d.text, id=d.id,
                               metadata=dict(d.metadata))
                for i, d in enumerate(docs)
            ]
            billed = self._billed() if not results else None
            results.append(RerankResult(kept[:top_n], passthrough=True, error=last, usage=billed))
        return results


def _threshold(ranked: list[RankedDocument], threshold: float | None, minimum: int) -> list[RankedDocument]:
    """Drop documents under the threshold, but keep at least ``minimum`` of the best (the LLM is
    never left with an empty context because a query scored low everywhere)."""
    if threshold is None:
        return ranked
    kept = [r for r in ranked if r.score >= threshold]
    return kept if len(kept) >= minimum else ranked[:minimum]


def _label(backend: Backend, spec: BackendSpec) -> str:
    label = getattr(backend, "label", None)  # third-party backends may not have one
    return label if isinstance(label, str) and label else spec_label(spec)


def _pool(expansions: Sequence[Expansion], scores: list[Scores]) -> list[Scores]:
    """Per-window scores back to one score per document (max by default; see swaprank.windows)."""
    pooled = []
    for expansion, part in zip(expansions, scores, strict=True):
        raw, normalized = expansion.pool(part.raw, part.normalized)
        pooled.append(Scores(raw=raw, normalized=normalized, usage=part.usage, truncated=part.truncated))
    return pooled


def _order(ranked: list[RankedDocument], fuse: str | None, k: int) -> list[RankedDocument]:
    """Sort by score (raw score breaks float ties of saturated sigmoids; input order breaks the rest).

    With ``fuse="rrf"`` the model's rank and the first-stage rank (input order) are fused by
    reciprocal rank fusion, which recovers from a reranker that is weaker than the retriever on
    some queries (measured on SciFact in benchmarks/).
    """
    by_model = sorted(ranked, key=lambda r: (-r.score, -r.raw_score, r.index))
    if fuse != "rrf":
        return by_model
    model_rank = {r.index: rank for rank, r in enumerate(by_model, start=1)}
    fused = [
        _replace_fused(r, 1.0 / (k + r.index + 1) + 1.0 / (k + model_rank[r.index])) for r in ranked
    ]
    return sorted(fused, key=lambda r: (-(r.fused_score or 0.0), r.index))


def _replace_fused(doc: RankedDocument, value: float) -> RankedDocument:
    return replace(doc, fused_score=value)
