"""Everything hosted rerank APIs have in common, written once.

A vendor backend (cohere.py, voyage.py, jina.py, tei.py) only says how to send *one* request
for a (query, texts) part and how to read the answer. ``HostedBackend`` owns the policy around
it, identical for every vendor:

- **Splitting**: candidate lists over ``max_docs_per_request`` become several requests, sent
  concurrently (at most ``max_concurrency`` in flight per backend) and merged by global index.
  Sync calls use the SDK's sync client on a small per-backend thread pool, never an event loop,
  so ``rerank()`` is safe inside a running loop (Jupyter, FastAPI handlers).
- **Retries** (tenacity): exponential backoff with jitter on 429, 408, 5xx, timeouts and
  connection errors; ``Retry-After`` / ``retry-after-ms`` are honoured; attempts are bounded
  (``max_retries``) and so is the whole call (``deadline``), including queueing and backoff.
  SDK clients are built with their own retries off, so attempts are never multiplied.
- **Timeouts**: every request gets ``min(timeout, time left before the deadline)``.
- **Errors**: every failure becomes a typed ``BackendError`` (vendor, HTTP status, vendor request
  id, attempts) whose message is scrubbed of the API key. A 200 whose ranking cannot be trusted
  (missing results, out-of-range or duplicate index, wrong count, non-numeric score) is a
  ``BadResponseError``: silently mis-ranking is worse than failing over to the next model.

Kept out of ``base.py`` so that importing the core (and the local cross-encoder path) never
imports httpx or tenacity.
"""

from __future__ import annotations

import asyncio
import contextvars
import email.utils
import json
import logging
import math
import random
import ssl
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt
from tenacity.stop import stop_base

from swaprank.backends.base import BaseBackend, Scores, resolve_api_key
from swaprank.backends.limits import LengthLimits, length_options
from swaprank.config import BackendSpec, Option
from swaprank.redaction import redact_text, redacted_spec
from swaprank.tracing import AttemptSpan, attempt_span
from swaprank.types import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    BadRequestError,
    BadResponseError,
    RateLimitError,
    Usage,
)

logger = logging.getLogger("swaprank")

T = TypeVar("T")

USER_AGENT = "swaprank"
# SDKs that refuse to send without a key get this for a self-hosted base_url that needs none.
PLACEHOLDER_KEY = "EMPTY"
# Headers vendors put their request / trace id in (first match wins).
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-debug-trace-id", "x-trace-id", "x-amzn-requestid")
_MESSAGE_LIMIT = 300


def network_options(*, max_docs_per_request: int, base_url: bool = True, max_length: bool = True) -> dict[str, Option]:
    """The options every hosted backend accepts; vendors merge them into their own table."""
    options = {
        "timeout": Option(float, 30.0, "seconds for one HTTP request", minimum=0.001),
        "max_retries": Option(int, 3, "retries after the first attempt (429, 5xx, timeouts, connection errors)",
                              minimum=0),
        "deadline": Option(float, 120.0, "seconds for a whole call, retries and backoff included", minimum=0.001),
        "backoff": Option(float, 0.5, "first retry delay in seconds; doubles each retry, plus jitter", minimum=0),
        "max_backoff": Option(float, 20.0, "longest retry delay unless the vendor's Retry-After asks for more",
                              minimum=0),
        "max_docs_per_request": Option(int, max_docs_per_request, "split larger candidate lists into requests",
                                       minimum=1),
        # 16: a 1000-candidate list split at 100 per request goes out in one wave.
        "max_concurrency": Option(int, 16, "requests in flight at once per backend", minimum=1),
    }
    if base_url:
        options["base_url"] = Option(str, None, "self-hosted or proxy endpoint instead of the vendor's")
    return {**options, **length_options(max_length=max_length)}


# ------------------------------------------------------------------ reading answers


@dataclass(frozen=True, slots=True)
class Part:
    """The parsed answer to one request: scores aligned with the texts that were sent."""

    scores: list[float]
    usage: Usage | None = None
    request_id: str | None = None


class HTTPStatusFailure(Exception):
    """A non-2xx answer (or an unparsable 2xx), before it is mapped to a typed error."""

    def __init__(self, status: int, headers: Mapping[str, str] | None, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
        self.body = body


def request_id_from(headers: Mapping[str, str] | None) -> str | None:
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    return next((lowered[name] for name in REQUEST_ID_HEADERS if lowered.get(name)), None)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds the vendor asked us to wait: ``retry-after-ms``, else ``Retry-After`` (seconds or date)."""
    if not headers:
        return None
    lowered = {str(k).lower(): str(v).strip() for k, v in headers.items()}
    try:
        if lowered.get("retry-after-ms"):
            return max(0.0, float(lowered["retry-after-ms"]) / 1000)
    except ValueError:
        pass
    value = lowered.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def vendor_message(body: Any) -> str:
    """The human part of an error body: Cohere ``{"message"}``, Voyage/Jina ``{"detail"}``, TEI ``{"error"}``."""
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8", errors="replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return body.strip()[:_MESSAGE_LIMIT]
    if isinstance(body, Mapping):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, Mapping):  # {"error": {"message": ...}}
                value = value.get("message", value)
            if value:
                return str(value)[:_MESSAGE_LIMIT]
    return "" if body is None else json.dumps(body, default=str)[:_MESSAGE_LIMIT]


def ranked_scores(
    items: Any,
    count: int,
    *,
    vendor: str,
    index_key: str = "index",
    score_key: str = "relevance_score",
    request_id: str | None = None,
) -> list[float]:
    """Turn a vendor's ``[{index, score}]`` (any order) into scores aligned with the texts sent.

    We always ask for every document back, so anything but a permutation of ``range(count)``
    with a numeric score each means the vendor's answer cannot be mapped back safely.
    """

    def bad(problem: str) -> BadResponseError:
        return BadResponseError(f"{vendor} returned an unusable ranking: {problem}", vendor=vendor,
                                status=200, request_id=request_id)

    if items is None:
        raise bad("the answer has no results list")
    if not isinstance(items, list):
        raise bad(f"expected a list of results, got {type(items).__name__}")
    if len(items) != count:
        raise bad(f"{len(items)} results for {count} documents")
    scores: list[float | None] = [None] * count
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise bad(f"result {position} is {type(item).__name__}, not an object")
        index, score = item.get(index_key), item.get(score_key)
        if isinstance(index, bool) or not isinstance(index, int):
            raise bad(f"result {position} has {index_key}={index!r}, not an integer")
        if not 0 <= index < count:
            raise bad(f"result {position} has {index_key}={index}, outside 0..{count - 1}")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise bad(f"result {position} has {score_key}={score!r}, not a finite number")
        if scores[index] is not None:
            raise bad(f"document {index} is ranked twice")
        scores[index] = float(score)
    return [s for s in scores if s is not None]  # complete: count results, no duplicates


def int_or_none(value: Any) -> int | None:
    """Usage counters are informative: a missing or odd value is dropped, never fatal."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value)


def dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


# ------------------------------------------------------------------ mapping failures


class _Retryable(Exception):
    """Carries a typed error through tenacity when the failure is worth another attempt."""

    def __init__(self, error: BackendError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def error_for_status(
    vendor: str, status: int, headers: Mapping[str, str] | None, body: Any, scrub: Callable[[str], str] = str,
) -> BackendError | _Retryable:
    """Map one HTTP answer to the error a caller can act on (and whether retrying may help)."""
    message = scrub(vendor_message(body))
    request_id = request_id_from(headers)
    detail = f": {message}" if message else ""
    kwargs: dict[str, Any] = {"vendor": vendor, "status": status, "request_id": request_id}
    if 200 <= status < 300:
        return BadResponseError(f"{vendor} answered {status} with a body that is not valid JSON{detail}", **kwargs)
    if status in (401, 403, 498):
        return AuthenticationError(f"{vendor} rejected the API key{detail}", **kwargs)
    if status == 429:
        return _Retryable(RateLimitError(f"{vendor} rate limit{detail}", **kwargs), retry_after_seconds(headers))
    if status == 408 or (status >= 500 and status != 501):
        return _Retryable(BackendUnavailableError(f"{vendor} server error{detail}", **kwargs),
                          retry_after_seconds(headers))
    if status == 413:
        return BadRequestError(f"{vendor} refused the request as too large{detail} "
                               "(lower max_docs_per_request or enable truncation)", **kwargs)
    if 400 <= status < 500:
        return BadRequestError(f"{vendor} rejected the request{detail}", **kwargs)
    if status >= 500:
        return BackendUnavailableError(f"{vendor} server error{detail}", **kwargs)
    return BadResponseError(f"{vendor} answered with unexpected status {status}{detail}", **kwargs)


# ------------------------------------------------------------------ call-wide deadline


class Deadline:
    """The time budget of one ``score_many`` call, shared by all its parts and retries."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def budget(self, timeout: float, vendor: str) -> float:
        """The timeout for the next request, or an error when the call is out of time."""
        left = self.remaining()
        if left <= 0:
            raise BackendUnavailableError(f"{vendor} call exceeded its deadline of {self.seconds:g}s", vendor=vendor)
        return min(timeout, left)


class _StopAtDeadline(stop_base):
    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, state: RetryCallState) -> bool:
        return self.deadline.remaining() <= state.upcoming_sleep


class _Wait:
    """Retry-After when the vendor sent one, else exponential backoff with jitter."""

    def __init__(self, backoff: float, max_backoff: float) -> None:
        self.backoff = backoff
        self.max_backoff = max_backoff

    def __call__(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, _Retryable) and failure.retry_after is not None:
            return failure.retry_after
        # Written out rather than tenacity's wait_exponential_jitter, whose arguments changed
        # between the tenacity versions we support. Jitter spreads clients that failed together.
        base = self.backoff * 2 ** (state.attempt_number - 1)
        return min(self.max_backoff, base + random.uniform(0, self.backoff))


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


# ------------------------------------------------------------------ SDK log redaction


class _RedactKeys(logging.Filter):
    """Scrubs live backends' keys, and credentials written into URLs, from SDK log records.

    SDK loggers quote vendor error bodies verbatim (voyage logs every error message at INFO),
    and a vendor that echoes the key back would otherwise put it in the application's logs;
    httpx logs every request's full URL at INFO, ``user:password@`` included.
    """

    def __init__(self) -> None:
        super().__init__()
        self._backends: weakref.WeakSet[HostedBackend] = weakref.WeakSet()

    def watch(self, backend: HostedBackend) -> None:
        self._backends.add(backend)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = redact_text(message)
        for backend in list(self._backends):
            scrubbed = backend._scrub(scrubbed)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


_redact_keys = _RedactKeys()


# The HTTP clients the SDKs and JsonHTTP use; httpx logs each request's URL at INFO.
HTTP_LOGGERS = ("httpx", "httpcore")


def redact_sdk_logs(backend: HostedBackend, logger_names: Sequence[str]) -> None:
    if backend.secret() is not None:
        _redact_keys.watch(backend)
    for name in (*logger_names, *HTTP_LOGGERS):
        sdk_logger = logging.getLogger(name)
        if _redact_keys not in sdk_logger.filters:
            sdk_logger.addFilter(_redact_keys)


# ------------------------------------------------------------------ the shared backend


class HostedBackend(LengthLimits, BaseBackend):
    """Base of the API backends: splitting, concurrency, retries, deadline and error mapping
    (and, through ``LengthLimits``, the pair limit that lets the Reranker window long documents).

    Subclasses set ``vendor``, ``default_model``, ``options`` (``network_options()`` merged with
    their own), ``key_env`` and implement ``_send`` / ``_asend`` for one request. They may add
    SDK exception types to ``timeout_errors`` / ``connection_errors`` and override
    ``_status_failure`` to expose an SDK's HTTP error as ``HTTPStatusFailure``.
    """

    key_env: ClassVar[tuple[str, ...]] = ()
    # Loggers the vendor SDK writes response bodies to; keys are scrubbed from their records.
    sdk_loggers: ClassVar[tuple[str, ...]] = ()
    # SDK exception types meaning "timed out" / "could not talk to the server"; set by subclasses
    # (per instance when the SDK is imported lazily).
    timeout_errors: tuple[type[BaseException], ...] = ()
    connection_errors: tuple[type[BaseException], ...] = ()

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec)
        self._api_key = resolve_api_key(api_key, self.key_env)
        if self._api_key is None and self.key_required():
            names = " or ".join(self.key_env)
            raise AuthenticationError(
                f"no API key for {self.vendor}: pass api_key=... or set {names}", vendor=self.vendor, attempts=0,
            )
        redact_sdk_logs(self, self.sdk_loggers)
        self._init_limits()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._semaphores: PerLoop[asyncio.Semaphore] = PerLoop(
            lambda: asyncio.Semaphore(self.option("max_concurrency"))
        )

    # -------------------------------------------------------------- for subclasses

    def key_required(self) -> bool:
        """Keys are needed for the vendor's own endpoint; a self-hosted ``base_url`` may do without."""
        return "base_url" not in self.options or not self.option("base_url")

    def secret(self) -> str | None:
        return self._api_key.get_secret_value() if self._api_key is not None else None

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:  # pragma: no cover - abstract
        raise NotImplementedError

    def _status_failure(self, exc: BaseException) -> HTTPStatusFailure | None:
        return exc if isinstance(exc, HTTPStatusFailure) else None

    # -------------------------------------------------------------- Backend protocol

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        return self.score_many([(query, texts)])[0]

    async def ascore(self, query: str, texts: Sequence[str]) -> Scores:
        return (await self.ascore_many([(query, texts)]))[0]

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        deadline = Deadline(self.option("deadline"))
        jobs = self._jobs(requests)
        if len(jobs) <= 1:
            parts = [self._attempts(query, chunk, deadline) for _, _, query, chunk in jobs]
        else:
            # Each part runs in a copy of the caller's context, so its attempt spans nest under the call's.
            futures = [self._executor().submit(contextvars.copy_context().run, self._attempts, query, chunk, deadline)
                       for _, _, query, chunk in jobs]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            _raise_first(futures, done)
            parts = [future.result() for future in futures]
        return self._merge(requests, jobs, parts)

    async def ascore_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        deadline = Deadline(self.option("deadline"))
        jobs = self._jobs(requests)
        semaphore = self._semaphores.get()

        async def run(query: str, chunk: list[str]) -> Part:
            async with semaphore:
                return await self._aattempts(query, chunk, deadline)

        parts = await _gather_or_cancel([run(query, chunk) for _, _, query, chunk in jobs])
        return self._merge(requests, jobs, parts)

    # -------------------------------------------------------------- splitting

    def _jobs(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[int, int, str, list[str]]]:
        """(request index, offset, query, chunk) for every request the call will send."""
        size = self.option("max_docs_per_request")
        return [
            (r, offset, query, list(texts[offset: offset + size]))
            for r, (query, texts) in enumerate(requests)
            for offset in range(0, len(texts), size)
        ]

    def _merge(self, requests: Sequence[tuple[str, Sequence[str]]], jobs: list[tuple[int, int, str, list[str]]],
               parts: Sequence[Part]) -> list[Scores]:
        raw: list[list[float]] = [[math.nan] * len(texts) for _, texts in requests]
        usage: list[list[Usage | None]] = [[] for _ in requests]
        for (r, offset, _, chunk), part in zip(jobs, parts, strict=True):
            if len(part.scores) != len(chunk):  # a backend bug, not a vendor one: never mis-align
                raise BadResponseError(f"{self.vendor} part has {len(part.scores)} scores for {len(chunk)} documents",
                                       vendor=self.vendor, request_id=part.request_id)
            raw[r][offset: offset + len(chunk)] = part.scores
            usage[r].append(part.usage)
        return [Scores(raw=scores, normalized=list(scores), usage=Usage.total(u)) for scores, u in zip(raw, usage,
                                                                                                          strict=True)]

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.option("max_concurrency"),
                                                thread_name_prefix=f"swaprank-{self.vendor}")
            return self._pool

    # -------------------------------------------------------------- retries

    def _policy(self, deadline: Deadline) -> dict[str, Any]:
        return {
            "retry": retry_if_exception_type(_Retryable),
            "stop": stop_after_attempt(self.option("max_retries") + 1) | _StopAtDeadline(deadline),
            "wait": _Wait(self.option("backoff"), self.option("max_backoff")),
            "before_sleep": self._log_retry,
            "reraise": True,
        }

    def _attempts(self, query: str, texts: list[str], deadline: Deadline) -> Part:
        attempt_number = 0
        try:
            for attempt in Retrying(**self._policy(deadline)):
                with attempt:
                    attempt_number = attempt.retry_state.attempt_number
                    timeout = deadline.budget(self.option("timeout"), self.vendor)
                    with self._attempt_span(attempt_number, len(texts)) as span:
                        try:
                            part = self._send(query, texts, timeout)
                        except Exception as exc:
                            raise _traced(span, self._failure(exc, timeout))  # noqa: B904 - _failure sets the cause
                        span.succeeded(part.usage)
                        return part
            raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
        except (_Retryable, BackendError) as failure:
            error = _unwrap(failure, attempt_number)
        raise error  # outside the handler: the cause chain is the one _failure chose

    async def _aattempts(self, query: str, texts: list[str], deadline: Deadline) -> Part:
        attempt_number = 0
        try:
            async for attempt in AsyncRetrying(**self._policy(deadline)):
                with attempt:
                    attempt_number = attempt.retry_state.attempt_number
                    timeout = deadline.budget(self.option("timeout"), self.vendor)
                    with self._attempt_span(attempt_number, len(texts)) as span:
                        try:
                            # The SDKs get the timeout too; this also bounds DNS, pool waits and body reads.
                            part = await asyncio.wait_for(self._asend(query, texts, timeout), timeout)
                        except Exception as exc:
                            raise _traced(span, self._failure(exc, timeout))  # noqa: B904 - _failure sets the cause
                        span.succeeded(part.usage)
                        return part
            raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover
        except (_Retryable, BackendError) as failure:
            error = _unwrap(failure, attempt_number)
        raise error

    def _log_retry(self, state: RetryCallState) -> None:
        failure = state.outcome.exception() if state.outcome is not None else None
        logger.info("swaprank: %s attempt %d failed (%s); retrying in %.2fs", redacted_spec(self.spec),
                    state.attempt_number, failure, state.upcoming_sleep)

    def _attempt_span(self, attempt: int, documents: int) -> Any:
        return attempt_span(self.vendor, self.label, attempt=attempt, documents=documents)

    # -------------------------------------------------------------- error mapping

    def _scrub(self, text: str) -> str:
        """Error text without the API key, nor credentials written into a URL."""
        key = self.secret()
        return redact_text(text.replace(key, "***") if key else text)

    def _failure(self, exc: Exception, timeout: float) -> BackendError | _Retryable:
        """Classify one failed attempt; unknown exceptions (our bugs) propagate unchanged."""
        if isinstance(exc, BackendError):
            return exc
        status_failure = self._status_failure(exc)
        if status_failure is not None:
            mapped = error_for_status(self.vendor, status_failure.status, status_failure.headers,
                                      status_failure.body, self._scrub)
        elif isinstance(exc, (httpx.TimeoutException, TimeoutError, asyncio.TimeoutError, *self.timeout_errors)):
            mapped = _Retryable(BackendUnavailableError(f"{self.vendor} request timed out after {timeout:.3g}s",
                                                        vendor=self.vendor))
        elif isinstance(exc, (httpx.TransportError, ConnectionError, *self.connection_errors)):
            detail = self._scrub(str(exc))[:_MESSAGE_LIMIT]
            mapped = _Retryable(BackendUnavailableError(
                f"{self.vendor} connection failed: {type(exc).__name__}: {detail}", vendor=self.vendor))
        else:
            raise exc
        error = mapped.error if isinstance(mapped, _Retryable) else mapped
        # An SDK's HTTP error adds nothing ours lacks (status, request id, vendor message), and its
        # str() can quote a whole response body, a key echoed by the vendor included; transport
        # errors are kept as the cause, for debugging.
        error.__cause__ = None if status_failure is not None else exc
        error.__suppress_context__ = True
        return mapped


def _traced(span: AttemptSpan, failure: _Retryable | BackendError) -> _Retryable | BackendError:
    """Record a failed attempt on its span: the typed error, the status, whether it is retried."""
    error = failure.error if isinstance(failure, _Retryable) else failure
    span.failed(error, error.status, retryable=isinstance(failure, _Retryable))
    return failure


def _unwrap(failure: _Retryable | BackendError, attempts: int) -> BackendError:
    error = failure.error if isinstance(failure, _Retryable) else failure
    error.attempts = max(attempts, 1)
    error.__context__ = None  # _failure chose the cause worth keeping; drop the implicit one
    return error


def _raise_first(futures: list[Future[Part]], done: set[Future[Part]]) -> None:
    for future in futures:  # in submission order, so the error reported is deterministic
        error = future.exception() if future in done else None
        if error is not None:
            billed = [f.result() for f in done if f.exception() is None]
            raise _with_usage(error, billed)


def _with_usage(error: BaseException, billed: Sequence[Part]) -> BaseException:
    """The failure of a split call carries what its successful parts were billed (fallbacks add it up)."""
    if isinstance(error, BackendError):
        error.usage = Usage.total(part.usage for part in billed)
    return error


async def _gather_or_cancel(coros: list[Awaitable[T]]) -> list[T]:
    """``gather`` that cancels the siblings of the first failure (TaskGroup needs Python 3.11)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException as error:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        billed = [t.result() for t in tasks if t.done() and not t.cancelled() and t.exception() is None]
        raise _with_usage(error, [p for p in billed if isinstance(p, Part)])  # noqa: B904 - same error


# ------------------------------------------------------------------ plain JSON over httpx


_ssl_context: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """One verified TLS context per process.

    Building one loads the CA bundle (~40-90 ms of CPU); without sharing, every new event loop
    (one per ``asyncio.run``) would pay that again for its async client.
    """
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = httpx.create_ssl_context()
        return _ssl_context


def sync_client(**kwargs: Any) -> httpx.Client:
    return httpx.Client(verify=shared_ssl_context(), headers={"User-Agent": USER_AGENT}, **kwargs)


def async_client(**kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=shared_ssl_context(), headers={"User-Agent": USER_AGENT}, **kwargs)


class JsonHTTP:
    """POST JSON with httpx, for vendors without an SDK (Jina, TEI, Jina-compatible servers).

    One sync client per backend (thread-safe, pooled) and one async client per event loop.
    Non-2xx answers raise ``HTTPStatusFailure``; ``HostedBackend`` maps them.
    """

    def __init__(self, headers: Callable[[], dict[str, str]]) -> None:
        self._headers = headers
        self._client = sync_client()
        self._aclients: PerLoop[httpx.AsyncClient] = PerLoop(async_client)

    def post(self, url: str, body: Any, timeout: float) -> tuple[Any, httpx.Headers]:
        response = self._client.post(url, json=body, headers=self._headers(), timeout=timeout)
        return self._read(response)

    def get(self, url: str, timeout: float) -> tuple[Any, httpx.Headers]:
        return self._read(self._client.get(url, headers=self._headers(), timeout=timeout))

    async def apost(self, url: str, body: Any, timeout: float) -> tuple[Any, httpx.Headers]:
        response = await self._aclients.get().post(url, json=body, headers=self._headers(), timeout=timeout)
        return self._read(response)

    @staticmethod
    def _read(response: httpx.Response) -> tuple[Any, httpx.Headers]:
        if not 200 <= response.status_code < 300:
            raise HTTPStatusFailure(response.status_code, response.headers, response.text)
        try:
            return response.json(), response.headers
        except ValueError:
            raise HTTPStatusFailure(response.status_code, response.headers, response.text[:_MESSAGE_LIMIT]) from None


class JsonRerankBackend(HostedBackend):
    """A rerank endpoint spoken as plain JSON over httpx: subclasses say where, what and how to read.

    Bearer auth is sent only when a key is known, so self-hosted servers work without one.
    """

    url: str  # the endpoint; set by the subclass's __init__

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        self._http = JsonHTTP(self._auth)

    def _auth(self) -> dict[str, str]:
        key = self.secret()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read(self, data: Any, headers: httpx.Headers, count: int) -> Part:  # pragma: no cover - abstract
        raise NotImplementedError

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:
        return self._read(*self._http.post(self.url, self._body(query, texts), timeout), len(texts))

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:
        return self._read(*await self._http.apost(self.url, self._body(query, texts), timeout), len(texts))
