"""Async plumbing: objects bound to one event loop, and gathering that cancels on first failure."""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """One object per running event loop.

    httpx/aiohttp async clients and semaphores bind to the loop that first uses them, while
    backends live process-wide (cached by the registry) and may be used from several loops
    (``asyncio.run`` per request, pytest-asyncio's loop per test). Objects die with their loop.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._items: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, T] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        with self._lock:
            item = self._items.get(loop)
            if item is None:
                item = self._items[loop] = self._factory()
            return item

    def current(self) -> T | None:
        """The running loop's object, if it has one (never builds one)."""
        with self._lock:
            return self._items.get(asyncio.get_running_loop())

    def drain(self) -> list[T]:
        """Forget every loop's object and return them (for closing)."""
        with self._lock:
            items = list(self._items.values())
            self._items.clear()
            return items


async def gather_or_cancel(coros: list[Awaitable[T]]) -> list[T]:
    """``gather`` that cancels the siblings of the first failure (TaskGroup needs Python 3.11)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
