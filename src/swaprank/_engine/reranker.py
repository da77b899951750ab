"""The Reranker: the one place where reranking policy lives.

Adapters translate framework objects in and out; backends turn (query, text) pairs into scores
through the contract in ``swaprank.backends.contract``. Everything between (validation, dedup,
windows, caching, ordering, top_n, thresholds, fusion, fallback chains, passthrough) is here, once,
so every backend behaves the same way behind every framework (docs/design.md, "Behaviour").

Sync and async share every decision: ``_steps`` is a generator that decides what to do next and
yields the I/O it needs (prepare a backend, score requests); ``_drive`` and ``_adrive`` are the two
thin loops that carry that I/O out, blocking or awaited (the shape of httpx's ``BaseClient``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Generator, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Literal

from pydantic import SecretStr

from swaprank._engine import chunks
from swaprank._engine.cache import ScoreCache
from swaprank._engine.plan import Plan, TopN, pool_windows
from swaprank._engine.steps import Done, Prepare, Prepared, Score, Step, Steps, advance
from swaprank._engine.validation import DocumentInput, check_min_results, check_scores, check_threshold, check_top_n
from swaprank.backends.contract import Backend, BackendInfo, Request, Scores
from swaprank.backends.registry import Registry, default_registry
from swaprank.config import parse_chain
from swaprank.redaction import chain_label, redact_text, redacted_chain, redacted_spec, spec_label
from swaprank.specs import BackendSpec, format_chain
from swaprank.tracing import CallSpan, call_span
from swaprank.types import (
    BackendError,
    BackendUnavailableError,
    BadResponseError,
    ClosedError,
    ConfigError,
    InvalidInputError,
    MissingDependencyError,
    RerankResult,
)
from swaprank.windows import expand, log_long_documents

logger = logging.getLogger("swaprank")

OnError = Literal["raise", "passthrough"]
ApiKey = SecretStr | str | Mapping[str, SecretStr | str] | None

RRF_K = 60


class Reranker:
    """Rerank candidates for a query with the model named by a config string.

    ``model`` is a config string such as ``"cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"``
    or a fallback chain ``"cohere:rerank-v3.5 | cross-encoder:..."``; ``None`` reads
    ``SWAPRANK_MODEL``. Backends load lazily on first use (``warmup()`` loads them now) and are
    shared with the other open Rerankers of the same ``registry`` (the process-wide one unless
    given). ``close()`` (or ``with`` / ``async with``) releases them: the last Reranker to release
    a backend closes its threads and clients.

    A config string is code (it can run a model's Python, read files, choose where a key goes):
    ``trusted=False`` parses one from a less trusted source, refusing every such option with
    ``UntrustedOptionError`` (docs/design.md, "Security"). ``model=None`` reads ``SWAPRANK_MODEL``,
    the operator's own setting, as trusted.

    Cost bounds, for callers that rerank other people's input (``swaprank serve``): a query whose
    documents would make the model read more than ``max_model_tokens`` tokens (summed over every pair
    and window, counted with the model's tokenizer before anything is scored) raises
    ``RequestTooLargeError``; a local model scores in chunks of ``chunk_chars`` characters, so an
    async call stops at the next chunk once cancelled and other calls interleave (``_engine.chunks``).
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
        registry: Registry | None = None,
        trusted: bool = True,
        max_model_tokens: int | None = None,
        chunk_chars: int = chunks.DEFAULT_CHUNK_CHARS,
    ) -> None:
        if not isinstance(trusted, bool):
            raise ConfigError(f"trusted must be True or False, got {type(trusted).__name__}")
        if registry is not None and not isinstance(registry, Registry):
            raise ConfigError(f"registry must be a swaprank.backends.Registry, got {type(registry).__name__}")
        self._registry = registry if registry is not None else default_registry()
        self.specs: tuple[BackendSpec, ...] = parse_chain(model, registry=self.registry, trusted=trusted)
        for spec in self.specs:  # what this machine can tell without loading (a missing model directory)
            self.registry.registration(spec.backend).check(spec)
        self.trusted = trusted
        self.top_n = check_top_n(top_n, ConfigError)
        self.score_threshold = check_threshold(score_threshold)
        self.min_results = check_min_results(min_results, self.top_n)
        if fuse not in (None, "rrf"):
            raise ConfigError(f"fuse must be None or 'rrf', got {fuse!r}")
        if isinstance(rrf_k, bool) or not isinstance(rrf_k, int) or rrf_k < 0:
            raise ConfigError(f"rrf_k must be a non-negative int, got {rrf_k!r}")
        if on_error not in ("raise", "passthrough"):
            raise ConfigError(f"on_error must be 'raise' or 'passthrough', got {on_error!r}")
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ConfigError(f"cache_size must be a non-negative int (0 disables the cache), got {cache_size!r}")
        for name, value in (("max_model_tokens", max_model_tokens), ("chunk_chars", chunk_chars)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        self.max_model_tokens = max_model_tokens
        self.chunk_chars = chunk_chars
        self.fuse = fuse
        self.rrf_k = rrf_k
        self.cache = ScoreCache(cache_size) if cache_size else None
        self.on_error: OnError = on_error
        self.dedup = dedup
        self._api_keys = self._split_keys(api_key)
        self._backends: dict[BackendSpec, Backend] = {}
        self._lock = threading.Lock()
        self._closed = False

    @property
    def registry(self) -> Registry:
        """Where this Reranker's backends come from (the process-wide registry unless one was given)."""
        return self._registry if self._registry is not None else default_registry()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle the configuration only: never the API keys, live clients, models or a registry.

        An unpickled Reranker (in a worker process, a Ray task...) re-reads keys from the
        environment and acquires that process's shared backends on first use.
        """
        state = self.__dict__.copy()
        state["_api_keys"] = {}
        state["_backends"] = {}
        state["_registry"] = None
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

    # ------------------------------------------------------------- backends and their lifecycle

    def _split_keys(self, api_key: ApiKey) -> dict[str, SecretStr | None]:
        """Route keys to backends: a mapping by backend name, or one key for the one keyed backend.

        A single key is never broadcast along a chain: "cohere:... | jina:..." with one key would
        otherwise send the Cohere key to Jina's servers. Local backends take no key.
        """
        def wrap(key: SecretStr | str | None) -> SecretStr | None:
            return key if key is None or isinstance(key, SecretStr) else SecretStr(key)

        if isinstance(api_key, Mapping):
            return {self.registry.canonical_name(name): wrap(key) for name, key in api_key.items()}
        if api_key is None:
            return {}
        keyed = sorted({spec.backend for spec in self.specs if self.registry.registration(spec.backend).uses_api_key})
        if len(keyed) > 1:
            example = ", ".join(f"{name!r}: ..." for name in keyed)
            raise ConfigError(f"one api_key for a chain of {', '.join(keyed)} would reach every one of them; "
                              f"pass a mapping such as api_key={{{example}}}, or set each vendor's env var")
        return {name: wrap(api_key) for name in keyed}

    def _backend(self, spec: BackendSpec) -> Backend:
        with self._lock:
            if self._closed:
                raise ClosedError("this Reranker is closed; build a new one")
            backend = self._backends.get(spec)
            if backend is None:
                backend = self.registry.acquire(spec, api_key=self._api_keys.get(spec.backend))
                self._backends[spec] = backend
        return backend

    def warmup(self) -> None:
        """Load every backend of the chain now instead of on the first query."""
        for spec in self.specs:
            self._backend(spec)

    def info(self) -> list[BackendInfo]:
        """What each backend of the chain is (loads them): label, local or not, windowing..."""
        return [self._backend(spec).info() for spec in self.specs]

    def close(self) -> None:
        """Release this Reranker's backends (the last holder closes them); later calls raise ClosedError."""
        self.registry.release(self._let_go())

    async def aclose(self) -> None:
        """Async ``close``: the backends' async clients are closed on the running loop."""
        await self.registry.arelease(self._let_go())

    def _let_go(self) -> list[Backend]:
        with self._lock:
            self._closed = True
            backends, self._backends = list(self._backends.values()), {}
        return backends

    def __enter__(self) -> Reranker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Reranker:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------- public API

    def rerank(self, query: str, documents: Iterable[DocumentInput], top_n: int | None = None) -> RerankResult:
        """Rerank ``documents`` for ``query``; see the behaviour contract in docs/design.md."""
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
        plan = Plan.build(self, queries, docs_per_query, top_n)
        with self._span(plan) as span:
            try:
                results = self._drive(self._steps(plan, span))
            except BaseException as exc:
                span.failed(exc)
                raise
            span.served(results, plan.failures)
            return results

    async def arerank_many(
        self,
        queries: Sequence[str],
        docs_per_query: Sequence[Iterable[DocumentInput]],
        top_n: TopN = None,
    ) -> list[RerankResult]:
        """Async ``rerank_many``."""
        plan = Plan.build(self, queries, docs_per_query, top_n)
        with self._span(plan) as span:
            try:
                results = await self._adrive(self._steps(plan, span))
            except BaseException as exc:
                span.failed(exc)
                raise
            span.served(results, plan.failures)
            return results

    # ------------------------------------------------------------- decisions (once) and the two I/O loops

    def _steps(self, plan: Plan, span: CallSpan) -> Steps:
        """Every decision of a call: which backend next, what to score, how to finish or fall back."""
        if not plan.requests:
            return plan.finish(self, None, None)
        for spec in self.specs:
            try:
                prepared: Prepared = yield Prepare(spec, plan.requests)
                backend, info, expansions = prepared
                plan.check_cost(expansions, self.max_model_tokens)
                requests: list[tuple[str, list[str]]] = [(e.query, e.texts) for e in expansions]
                cache = self._cache_for(info, requests)
                todo = cache.missing(spec, requests) if cache is not None else requests
                fresh = (yield from self._score(spec, backend, info, list(todo))) if todo else []
                scores = self._merge(spec, requests, todo, fresh, cache)
                return plan.finish(self, spec, pool_windows(expansions, scores), expansions, info.label)
            except Exception as exc:  # typed or not, every failure goes through the policy
                plan.errors.append(self._note_failure(spec, exc, span))
        return plan.fail(self)

    def _score(self, spec: BackendSpec, backend: Backend, info: BackendInfo,
               todo: list[Request]) -> Generator[Step, Any, Any]:
        """The backend's answer for ``todo``: a local model's in chunks (``_engine.chunks``), else one step."""
        if not info.local or info.list_relative_scores:
            return (yield Score(backend, todo))
        parts = chunks.split(todo, self.chunk_chars)
        if len(parts) == 1:
            return (yield Score(backend, todo))
        answers = []
        for pieces in parts:
            answers.append((yield Score(backend, chunks.chunk_requests(todo, pieces))))
        return chunks.join(todo, parts, answers, spec)

    def _drive(self, steps: Steps) -> list[RerankResult]:
        step = advance(steps, None, None)
        while not isinstance(step, Done):
            try:
                outcome, error = (self._prepare(step) if isinstance(step, Prepare)
                                  else step.backend.score_many(step.requests)), None
            except Exception as exc:
                outcome, error = None, exc
            step = advance(steps, outcome, error)
        return step.results

    async def _adrive(self, steps: Steps) -> list[RerankResult]:
        step = advance(steps, None, None)
        while not isinstance(step, Done):
            try:
                # Loading a model, tokenizing long documents and a server's first /info are blocking work.
                outcome, error = (await asyncio.to_thread(self._prepare, step) if isinstance(step, Prepare)
                                  else await step.backend.ascore_many(step.requests)), None
            except Exception as exc:
                outcome, error = None, exc
            step = advance(steps, outcome, error)
        return step.results

    def _prepare(self, step: Prepare) -> Prepared:
        """The backend, what it is, and the requests windowed to its limit (swaprank.windows)."""
        backend = self._backend(step.spec)
        info = backend.info()
        expansions = [expand(query, texts, info.windowing) for query, texts in step.requests]
        log_long_documents(spec_label(step.spec), expansions,
                           info.windowing.limit if info.windowing is not None else None)
        return backend, info, expansions

    def _span(self, plan: Plan) -> AbstractContextManager[CallSpan]:
        return call_span(self.model_name, spec_label(self.specs[0]), queries=len(plan.docs),
                         candidates=sum(len(d) for d in plan.docs), top_n=plan.top_n,
                         score_threshold=self.score_threshold, min_results=self.min_results)

    def _cache_for(self, info: BackendInfo, requests: list[tuple[str, list[str]]]) -> ScoreCache | None:
        """The score cache, unless the backend's scores depend on the whole candidate list (a listwise
        LLM's are positions): a score cached from another list would mis-rank silently."""
        if self.cache is not None and info.list_relative_scores:
            self.cache.bypassed(requests)  # scored, uncached: misses (swaprank eval's docs/s counts them)
            return None
        return self.cache

    def _merge(self, spec: BackendSpec, requests: list[tuple[str, list[str]]],
               todo: list[tuple[str, list[str]]], fresh: Any, cache: ScoreCache | None) -> list[Scores]:
        """Validate what the backend answered, then fill in cache hits."""
        if not isinstance(fresh, list) or len(fresh) != len(todo):
            raise BadResponseError(f"backend answered {len(fresh) if isinstance(fresh, list) else fresh!r} "
                                   f"of {len(todo)} queries", vendor=spec.backend)
        checked = [check_scores(scores, len(texts), spec) for scores, (_, texts) in zip(fresh, todo, strict=True)]
        return cache.complete(spec, requests, todo, checked) if cache is not None else checked

    # ------------------------------------------------------------- failure policy

    def _note_failure(self, spec: BackendSpec, exc: BaseException, span: CallSpan) -> BaseException:
        if isinstance(exc, (ConfigError, InvalidInputError, ClosedError)):
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
