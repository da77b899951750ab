"""The served model's life: load and warm it, route requests to the batcher or straight through,
and say whether the service is ready.

Loading starts in the app's lifespan (``start``) and, for hosts that do not run an ASGI lifespan,
lazily on the first request or readiness probe; requests that arrive while the model loads wait for
it. ``/ready`` is 503 until the model is loaded and warmed, and again from the moment shutdown begins
(``drain``), so a load balancer stops sending traffic before in-flight requests finish.

Large requests skip the batcher: a local model scores them in chunks (``Reranker(chunk_chars=...)``),
and between two of their chunks the batcher's small batches get the model, so a small request never
waits behind the whole of a large one. Every request's work is tracked (``track``) so a shutdown
that runs out of time can stop it (``abort_after``) and answer it with the service's own error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from swaprank import Reranker
from swaprank.redaction import redact_text
from swaprank.serve.batching import MicroBatcher
from swaprank.serve.errors import ServeError
from swaprank.serve.metrics import ServeMetrics
from swaprank.serve.settings import ServeSettings
from swaprank.types import RerankResult

logger = logging.getLogger("swaprank.serve")


class ServeEngine:
    def __init__(self, settings: ServeSettings, reranker: Reranker | None, metrics: ServeMetrics) -> None:
        self.settings = settings
        self.reranker = reranker if reranker is not None else Reranker(settings.model, **settings.reranker_options())
        self.metrics = metrics
        # Local models (told by their registration) gain from coalescing; hosted APIs do not.
        first = self.reranker.specs[0]
        self.local = self.reranker.registry.registration(first.backend).local
        self.batcher: MicroBatcher | None = None
        if self.local and settings.batching and settings.max_batch_pairs > 1:
            self.batcher = MicroBatcher(self._run_many, max_pairs=settings.max_batch_pairs,
                                        max_wait=settings.max_wait_ms / 1000.0, metrics=metrics)
        self.loaded = False
        self.draining = False
        self.load_error: str | None = None
        self.aborting = False
        self.inflight: set[asyncio.Future[RerankResult]] = set()
        self._load_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def mode(self) -> str:
        """How requests reach the model: ``batched`` (local, coalesced) or ``direct``."""
        return "batched" if self.batcher is not None else "direct"

    @property
    def ready(self) -> bool:
        return self.loaded and not self.draining

    def start(self) -> None:
        """Begin loading the model in the background (idempotent; needs a running loop)."""
        if self._load_task is None:
            self._loop = asyncio.get_running_loop()
            self._load_task = self._loop.create_task(self._load(), name="swaprank-load")

    async def _load(self) -> None:
        try:
            await asyncio.to_thread(self.reranker.warmup)
            if self.local and self.settings.warmup:
                # The first forward pass pays one-time costs (graph compilation, allocator growth).
                await self.reranker.arerank("warm-up query", ["warm-up document"])
        except Exception as exc:
            self.load_error = type(exc).__name__
            logger.error("swaprank serve: the model failed to load: %s: %s", type(exc).__name__,
                         redact_text(str(exc)))
            return
        self.loaded = True
        self.metrics.ready.set(0 if self.draining else 1)
        logger.info("swaprank serve: model loaded and warmed (%s)", self.mode)

    async def wait_loaded(self) -> None:
        self.start()
        assert self._load_task is not None
        await asyncio.shield(self._load_task)
        if not self.loaded:
            raise ServeError(503, "not_ready", f"the model failed to load ({self.load_error}); see the server log",
                             {"retry-after": "5"})

    def drain(self) -> None:
        """Shutdown has begun: report not ready; requests already accepted still finish."""
        self.draining = True
        self.metrics.ready.set(0)

    def abort_after(self, seconds: float) -> None:
        """From any thread (a signal handler): in ``seconds``, stop every request still running."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.call_later, seconds, self.abort_inflight)

    def abort_inflight(self) -> None:
        """Shutdown ran out of time: cancel the work of every request still running (each handler then
        answers 503 ``shutting_down``; local model work stops at its next chunk)."""
        self.aborting = True
        if self.inflight:
            logger.warning("swaprank serve: graceful timeout reached; stopping %d request(s) still running",
                           len(self.inflight))
        for work in list(self.inflight):
            work.cancel()

    async def close(self) -> None:
        self.drain()
        if self.batcher is not None:
            await self.batcher.close()
        if self._load_task is not None and not self._load_task.done():
            self._load_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._load_task

    async def rerank(self, query: str, texts: list[str], top_n: int | None) -> RerankResult:
        """One request's result, through the batcher for a local model, else straight to the Reranker."""
        await self.wait_loaded()
        if self.batcher is not None and not self._large(query, texts):
            return await self.batcher.submit(query, texts, top_n)
        self.metrics.model_call("direct", 1, len(texts))
        return (await self._run_many([query], [texts], [top_n]))[0]

    def _large(self, query: str, texts: list[str]) -> bool:
        """More model work than one chunk: scored on its own, chunk by chunk, beside the batcher."""
        return len(query) * len(texts) + sum(map(len, texts)) > self.reranker.chunk_chars

    async def _run_many(self, queries: list[str], docs: list[list[str]],
                        top_ns: list[int | None]) -> list[RerankResult]:
        return await self.reranker.arerank_many(queries, docs, top_n=top_ns)
