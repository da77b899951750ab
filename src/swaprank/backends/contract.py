"""The backend contract: the whole interface between the engine and every backend.

A backend turns ``(query, texts)`` pairs into scores, and says what the engine must know about it
through one small value, :class:`BackendInfo`. Everything a user thinks of as policy (ordering,
top_n, thresholds, dedup, windows, fallback, caching) lives once in the engine, so swapping the
backend never changes behaviour, only scores. See docs/design.md, "The backend contract".

A plugin subclasses :class:`Backend` and writes ``score`` *or* ``score_many``; the other, and
both async methods, come from the base class (blocking work runs on the backend's own small
thread pool, never on an event loop). ``close()`` releases what the backend holds.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import math
import os
import threading
from abc import ABC
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from swaprank.redaction import redacted_spec, spec_label
from swaprank.types import Usage

if TYPE_CHECKING:
    from swaprank.specs import BackendSpec, Option
    from swaprank.windows import Windowing

T = TypeVar("T")

# One (query, texts) request per query; a call scores several at once.
Request = tuple[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class Scores:
    """A backend's answer for one query, aligned with the texts it was given.

    ``normalized`` is on [0, 1]; ``raw`` is the backend's native value. ``truncated`` counts the
    texts that did not fit the model's window and were cut (not windowed), so the engine can log
    and report it.
    """

    raw: list[float]
    normalized: list[float]
    usage: Usage | None = None
    truncated: int = 0


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What the engine, the config parser, ``swaprank serve`` and ``swaprank batch`` need to know
    about a live backend, in one value (no attribute probing anywhere).

    - ``label``: ``backend:model``, how results, documents and traces name it (no URL, options or key).
    - ``local``: it scores in this process (a model on this CPU/GPU), so coalescing concurrent
      requests into one forward pass pays (serve's micro-batcher), and its calls are blocking.
    - ``uses_api_key``: an ``api_key`` given to a chain may be routed to it.
    - ``list_relative_scores``: its scores depend on the whole candidate list (a listwise LLM's
      positions), so a score must never be cached and reused in another list.
    - ``windowing``: how long a (query, document) pair may be and how tokens are counted, so the
      engine can window over-long documents; None when unknown (texts are sent whole).
    """

    label: str
    local: bool = False
    uses_api_key: bool = True
    list_relative_scores: bool = False
    windowing: Windowing | None = None


class Backend(ABC):  # noqa: B024 - abstract in intent: a subclass writes score or score_many (checked at registration)
    """Base class of every backend (built-in and plugin). Subclasses write ``score`` or ``score_many``.

    Class attributes describe the backend before one is built (config parsing, key routing):
    ``vendor``, ``default_model``, ``options`` (a table of ``swaprank.specs.Option``; ``None``
    accepts any option untyped), ``uses_api_key`` and ``local``.

    Overridable hooks: ``windowing()`` (long documents), ``list_relative_scores``, ``close()`` /
    ``aclose()`` for resources of the subclass's own (call ``super().close()``). Network backends
    override ``ascore_many`` with a native async client; the default runs ``score_many`` on a
    bounded per-backend thread pool (``SWAPRANK_THREADS``, default 2: CPU inference already uses
    every core, so more concurrent forward passes only add memory and contention).
    """

    vendor: ClassVar[str] = ""
    default_model: ClassVar[str | None] = None
    options: ClassVar[Mapping[str, Option] | None] = {}
    uses_api_key: ClassVar[bool] = True
    local: ClassVar[bool] = False

    def __init__(self, spec: BackendSpec, *, api_key: Any = None) -> None:
        """Registries build backends as ``factory(spec, api_key=...)``; a backend that takes no key
        (``uses_api_key = False``) never gets one, and this base class never keeps it."""
        self.spec = spec
        self._threads: ThreadPoolExecutor | None = None
        self._threads_lock = threading.Lock()

    # ------------------------------------------------------------------ what a backend is

    @classmethod  # noqa: B027 - an optional hook, empty by default
    def check_spec(cls, spec: BackendSpec) -> None:
        """Refuse, when a Reranker (or an adapter) is built from ``spec``, what is wrong with it and needs
        no model, no network and no heavy import to tell (a model directory that does not exist,
        options that contradict each other): raise ``ConfigError``. Loading stays lazy; the default
        accepts everything its option table accepted."""

    def info(self) -> BackendInfo:
        """The facts the engine and apps act on (may load a tokenizer or ask a server once: blocking).

        ``windowing()`` goes first: a self-hosted server's label names the model it reports, which
        asking for its limits has just learned."""
        windowing = self.windowing()
        return BackendInfo(label=self.label, local=self.local, uses_api_key=self.uses_api_key,
                           list_relative_scores=self.list_relative_scores, windowing=windowing)

    def windowing(self) -> Windowing | None:
        """How long a (query, document) pair may be and how its tokens are counted; None when unknown."""
        return None

    @property
    def list_relative_scores(self) -> bool:
        """Whether scores depend on the whole candidate list (then they are never cached)."""
        return False

    @property
    def label(self) -> str:
        """``backend:model``, how results, documents and traces name this backend (no URL, no options)."""
        return spec_label(self.spec)

    def option(self, name: str) -> Any:
        """The option's value from the spec, else its declared default."""
        values = self.spec.option_dict
        if name in values or not self.options:
            return values.get(name)
        return self.options[name].default

    # ------------------------------------------------------------------ scoring

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        """Scores for one query (default: through ``score_many``)."""
        return self.score_many([(query, texts)])[0]

    def score_many(self, requests: Sequence[Request]) -> list[Scores]:
        """Scores for several queries at once (default: ``score`` for each); local models batch here."""
        return [self.score(query, texts) for query, texts in requests]

    async def ascore(self, query: str, texts: Sequence[str]) -> Scores:
        return (await self.ascore_many([(query, texts)]))[0]

    async def ascore_many(self, requests: Sequence[Request]) -> list[Scores]:
        """Async scoring: a native ``ascore`` if the subclass wrote one, else ``score_many`` in a thread."""
        if type(self).ascore is not Backend.ascore:
            return list(await asyncio.gather(*(self.ascore(query, texts) for query, texts in requests)))
        return await self.run_blocking(self.score_many, requests)

    async def run_blocking(self, func: Callable[..., T], *args: Any) -> T:
        """``func(*args)`` on this backend's thread pool, in the caller's context (trace spans nest)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._thread_pool(), functools.partial(context.run, func, *args))

    def thread_count(self) -> int:
        """How many threads the backend's pool may use (``SWAPRANK_THREADS``, default 2)."""
        return max(1, int(os.environ.get("SWAPRANK_THREADS", "2")))

    def _thread_pool(self) -> ThreadPoolExecutor:
        """The backend's own pool, built on first use (and again after ``close()``: a Reranker that
        still holds a closed backend keeps working instead of failing on a dead pool)."""
        with self._threads_lock:
            if self._threads is None:
                self._threads = ThreadPoolExecutor(max_workers=self.thread_count(),
                                                   thread_name_prefix=f"swaprank-{self.vendor or 'backend'}")
            return self._threads

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Release threads and clients. Subclasses with resources of their own extend it."""
        with self._threads_lock:
            threads, self._threads = self._threads, None
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)

    async def aclose(self) -> None:
        """Async ``close``: subclasses with async clients close them on the running loop."""
        await asyncio.get_running_loop().run_in_executor(None, self.close)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redacted_spec(self.spec)})"


def missing_methods(cls: type) -> list[str]:
    """What a backend class lacks to be usable: it must write ``score`` or ``score_many``."""
    if isinstance(cls, type) and issubclass(cls, Backend):
        if cls.score is Backend.score and cls.score_many is Backend.score_many:
            return ["score or score_many"]
        return []
    return [] if callable(getattr(cls, "score", None)) or callable(getattr(cls, "score_many", None)) \
        else ["score or score_many"]


class ForeignBackend(Backend):
    """A scorer that does not subclass ``Backend`` (a duck-typed plugin), wrapped into the contract.

    It needs ``score`` or ``score_many``; its ``ascore`` / ``ascore_many``, ``windowing`` and
    ``close`` are used when present. Looked up once, here, so the engine never probes objects.
    """

    def __init__(self, spec: BackendSpec, wrapped: Any) -> None:
        super().__init__(spec)
        self.wrapped = wrapped
        self.vendor = str(getattr(wrapped, "vendor", "") or spec.backend)  # type: ignore[misc]
        self._list_relative = bool(getattr(wrapped, "list_relative_scores", False))
        self._methods = {name: getattr(wrapped, name) for name in
                         ("score", "score_many", "ascore", "ascore_many", "windowing", "close", "aclose")
                         if callable(getattr(wrapped, name, None))}
        label = getattr(wrapped, "label", None)
        self._label = label if isinstance(label, str) and label else spec_label(spec)

    @property
    def label(self) -> str:
        return self._label

    @property
    def list_relative_scores(self) -> bool:
        return self._list_relative

    def windowing(self) -> Windowing | None:
        method = self._methods.get("windowing")
        return method() if method is not None else None

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        if "score" in self._methods:
            result: Scores = self._methods["score"](query, texts)
            return result
        return self.score_many([(query, texts)])[0]

    def score_many(self, requests: Sequence[Request]) -> list[Scores]:
        if "score_many" in self._methods:
            result: list[Scores] = self._methods["score_many"](requests)
            return result
        return [self.score(query, texts) for query, texts in requests]

    async def ascore_many(self, requests: Sequence[Request]) -> list[Scores]:
        if "ascore_many" in self._methods:
            result: list[Scores] = await self._methods["ascore_many"](requests)
            return result
        if "ascore" in self._methods:
            return list(await asyncio.gather(*(self._methods["ascore"](q, t) for q, t in requests)))
        return await self.run_blocking(self.score_many, requests)

    def close(self) -> None:
        super().close()
        if "close" in self._methods:
            self._methods["close"]()

    async def aclose(self) -> None:
        if "aclose" in self._methods:
            super().close()
            await self._methods["aclose"]()
        else:
            await super().aclose()


def sigmoid(value: float) -> float:
    """Logistic map of a logit onto [0, 1] (what ``Scores.normalized`` means for logit models),
    without overflow for large negative logits."""
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    z = math.exp(value)
    return z / (1.0 + z)
