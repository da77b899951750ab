"""Dynamic micro-batching: concurrent requests for a local model share forward passes.

A local cross-encoder scores a list of pairs fastest in one length-sorted pass (less padding, no
per-call overhead, no two passes fighting over the same cores). The batcher queues requests and
hands them to ``Reranker.arerank_many`` together, once ``max_pairs`` pairs are waiting or
``max_wait`` seconds have passed since the oldest one arrived; one batch runs at a time (a second
concurrent pass on the same CPU cores only contends with the first), and while it runs the next
batch fills up. Each request keeps its own ``top_n``; a request whose client hung up before its
batch started is dropped from it; a batch all of whose requests have gone stops at its next chunk;
and a request whose input fails its batch fails alone (the others are scored again without it).

Hosted backends are not batched: their requests go out concurrently as they arrive (a vendor API
gains nothing from coalescing unrelated queries, and would bill or rate-limit them the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from swaprank.serve.metrics import ServeMetrics
from swaprank.types import RerankResult

logger = logging.getLogger("swaprank.serve")

# (queries, documents per query, top_n per query) -> one result per query
RunMany = Callable[[list[str], list[list[str]], list[int | None]], Awaitable[list[RerankResult]]]


@dataclass
class _Item:
    query: str
    texts: list[str]
    top_n: int | None
    future: asyncio.Future[RerankResult]
    enqueued: float = field(default=0.0)


class MicroBatcher:
    """Coalesce ``submit`` calls into ``run_many`` calls of at most ``max_pairs`` pairs.

    A single request larger than ``max_pairs`` runs alone. Lives on the event loop of its first
    ``submit`` (the app's loop, or a Ray Serve replica's).
    """

    def __init__(self, run_many: RunMany, *, max_pairs: int, max_wait: float, metrics: ServeMetrics) -> None:
        self._run_many = run_many
        self.max_pairs = max_pairs
        self.max_wait = max_wait
        self._metrics = metrics
        self._pending: deque[_Item] = deque()
        self._pending_pairs = 0
        self._wakeup: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def submit(self, query: str, texts: list[str], top_n: int | None) -> RerankResult:
        """Queue one request and wait for its result (cancelling the wait withdraws the request)."""
        if self._closed:
            raise RuntimeError("the batcher is closed")
        loop = asyncio.get_running_loop()
        item = _Item(query, texts, top_n, loop.create_future(), loop.time())
        self._pending.append(item)
        self._pending_pairs += len(texts)
        self._ensure_running()
        assert self._wakeup is not None
        self._wakeup.set()
        return await item.future

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._wakeup = self._wakeup or asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="swaprank-batcher")

    async def close(self) -> None:
        """Stop the loop; requests still queued fail (the server drains in-flight requests first)."""
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._pending:
            item = self._pending.popleft()
            if not item.future.done():
                item.future.set_exception(RuntimeError("the service is shutting down"))

    # ------------------------------------------------------------------ the loop

    async def _loop(self) -> None:
        assert self._wakeup is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            deadline = self._pending[0].enqueued + self.max_wait
            while self._pending_pairs < self.max_pairs:
                left = deadline - loop.time()
                if left <= 0:
                    break
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), left)
                except asyncio.TimeoutError:
                    break
            batch = self._take()
            if batch:
                await self._run(batch)

    def _take(self) -> list[_Item]:
        """The oldest live requests that fit ``max_pairs`` (at least one); withdrawn ones are dropped."""
        batch: list[_Item] = []
        pairs = 0
        while self._pending:
            item = self._pending[0]
            if item.future.done():  # cancelled: the client disconnected while queued
                self._pending.popleft()
                self._pending_pairs -= len(item.texts)
                self._metrics.dropped.labels(reason="removed_from_batch").inc()
                continue
            if batch and pairs + len(item.texts) > self.max_pairs:
                break
            self._pending.popleft()
            self._pending_pairs -= len(item.texts)
            batch.append(item)
            pairs += len(item.texts)
        return batch

    async def _run(self, batch: Sequence[_Item]) -> None:
        self._metrics.model_call("batched", len(batch), sum(len(i.texts) for i in batch))
        run = asyncio.ensure_future(self._run_many([i.query for i in batch], [i.texts for i in batch],
                                                   [i.top_n for i in batch]))
        abandoned = False

        def abandon(_: object) -> None:
            # Every request of the batch has gone (clients hung up, deadlines passed): stop scoring it
            # at the next chunk instead of finishing work nobody will read.
            nonlocal abandoned
            if not run.done() and all(i.future.cancelled() for i in batch):
                abandoned = True
                run.cancel()

        for item in batch:
            item.future.add_done_callback(abandon)
        try:
            results = await run
        except asyncio.CancelledError:
            if abandoned:
                self._metrics.dropped.labels(reason="batch_abandoned").inc()
                return
            _fail(batch, RuntimeError("the service is shutting down"))
            raise
        except Exception as exc:
            if len(batch) == 1:
                _fail(batch, exc)
                return
            # A failure is attributed to its own request, never to its neighbours: one request's
            # unusable input (or anything else that breaks only with it) must not fail the others,
            # so each is scored again on its own and gets its own answer or error.
            logger.info("swaprank serve: a batch of %d requests failed (%s); scoring each on its own",
                        len(batch), type(exc).__name__)
            for item in batch:
                if not item.future.done():
                    await self._run([item])
            return
        for item, result in zip(batch, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)


def _fail(batch: Sequence[_Item], exc: BaseException) -> None:
    for item in batch:
        if not item.future.done():
            item.future.set_exception(exc)
