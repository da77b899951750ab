"""What every backend implements, and the helpers more than one backend needs.

A backend does one thing: score ``(query, text)`` pairs. Everything a user thinks of as policy
(ordering, top_n, thresholds, dedup, fallback, passthrough) lives once in ``swaprank.reranker``,
so swapping the backend never changes behaviour, only scores.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import importlib
import logging
import math
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from pydantic import SecretStr

from swaprank.redaction import redacted_spec, spec_label
from swaprank.types import MissingDependencyError, Usage

if TYPE_CHECKING:
    from swaprank.specs import BackendSpec, Option
    from swaprank.windows import Windowing

T = TypeVar("T")


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


@runtime_checkable
class Backend(Protocol):
    spec: BackendSpec
    vendor: str

    def score(self, query: str, texts: Sequence[str]) -> Scores: ...

    async def ascore(self, query: str, texts: Sequence[str]) -> Scores: ...

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]: ...

    async def ascore_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]: ...


class BaseBackend:
    """Defaults so a backend only has to write ``score``.

    Blocking backends (local models) get ``ascore`` for free: it runs ``score`` in a small shared
    thread pool so an event loop is never blocked by a forward pass. Network backends override
    ``ascore`` with their SDK's native async client.
    """

    vendor: ClassVar[str] = ""
    default_model: ClassVar[str | None] = None
    options: ClassVar[Mapping[str, Option]] = {}

    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec

    def option(self, name: str) -> Any:
        """The option's value from the spec, else its declared default."""
        values = self.spec.option_dict
        if name in values:
            return values[name]
        return self.options[name].default

    def windowing(self) -> Windowing | None:
        """How long a (query, document) pair may be and how its tokens are counted, so the
        Reranker can window over-long documents; None when the limit is unknown (texts are then
        sent whole and the backend's own truncation, if any, applies)."""
        return None

    def score(self, query: str, texts: Sequence[str]) -> Scores:  # pragma: no cover - abstract
        raise NotImplementedError

    async def ascore(self, query: str, texts: Sequence[str]) -> Scores:
        return await run_blocking(self.score, query, texts)

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        return [self.score(query, texts) for query, texts in requests]

    async def ascore_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        return await run_blocking(self.score_many, requests)

    @property
    def label(self) -> str:
        """``backend:model``, how results, documents and traces name this backend (no URL, no options)."""
        return spec_label(self.spec)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redacted_spec(self.spec)})"


# ------------------------------------------------------------------ shared helpers


_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _blocking_pool() -> ThreadPoolExecutor:
    """One bounded pool per process for blocking model calls (``SWAPRANK_THREADS``, default 2).

    Bounded because CPU inference already uses every core: more concurrent forward passes only
    add memory and contention, while a queue keeps latency predictable.
    """
    global _pool
    with _pool_lock:
        if _pool is None:
            workers = max(1, int(os.environ.get("SWAPRANK_THREADS", "2")))
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="swaprank")
        return _pool


async def run_blocking(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` on the blocking pool, in the caller's context (so its trace span is the parent)."""
    loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return await loop.run_in_executor(_blocking_pool(), functools.partial(context.run, func, *args))


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or explain which pip extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this backend needs the {module!r} package: pip install 'swaprank[{extra}]' ({exc})"
        ) from exc


def resolve_api_key(explicit: SecretStr | str | None, env_names: Sequence[str]) -> SecretStr | None:
    """The key from the argument, else the first env var set; always wrapped in SecretStr."""
    if explicit is not None:
        return explicit if isinstance(explicit, SecretStr) else SecretStr(explicit)
    for name in env_names:
        value = os.environ.get(name)
        if value:
            return SecretStr(value)
    return None


def sigmoid(value: float) -> float:
    """Logistic function that does not overflow for large negative logits."""
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    z = math.exp(value)
    return z / (1.0 + z)


_warned: set[tuple[str, ...]] = set()
_warned_lock = threading.Lock()


def warn_once(key: tuple[str, ...], message: str, *args: Any) -> bool:
    """Log ``message`` at WARNING the first time ``key`` is seen in this process; True if it was logged.

    A misconfiguration that does not stop scoring (an option a model cannot use) must be visible,
    but a service that builds a Reranker per request would otherwise repeat it on every call.
    """
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
    logging.getLogger("swaprank").warning(message, *args)
    return True


def warn_instruction_ignored(spec: BackendSpec, reason: str) -> bool:
    """The one warning a backend gives when ``instruction=`` cannot reach its model (once per spec).

    Backends without instruction support call this instead of dropping the option silently: an
    instruction changes what "relevant" means to the user, so scores computed without it must
    never pass for scores computed with it. ``reason`` says why (e.g. the model takes no prompt).
    """
    return warn_once(("instruction-ignored", spec.backend, spec.model, reason),
                     "swaprank: %s ignores instruction=: %s", redacted_spec(spec), reason)
