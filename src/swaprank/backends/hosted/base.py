"""``HostedBackend``: everything hosted rerank APIs have in common, written once.

A vendor backend only says how to send *one* request for a (query, texts) part and how to read
the answer. This class owns the policy around it, identical for every vendor:

- **Splitting**: candidate lists over ``max_docs_per_request`` become several requests, sent
  concurrently (at most ``max_concurrency`` in flight per backend) and merged by global index.
  Sync calls use the SDK's sync client on a small per-backend thread pool, never an event loop,
  so ``rerank()`` is safe inside a running loop (Jupyter, FastAPI handlers).
- **Retries** and the **deadline** (``swaprank.backends.hosted.retry``); every request gets
  ``min(timeout, time left before the deadline)``; SDK clients are built with their own retries
  off, so attempts are never multiplied.
- **Errors** (``swaprank.backends.hosted.errors``), **usage** summed over parts (and carried by a failure, so a
  fallback's bill is complete), a trace span per attempt (``swaprank.tracing``).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_EXCEPTION, Future, wait
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol, TypeVar

import httpx
from pydantic import SecretStr
from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from swaprank.backends.contract import Backend, Scores, sigmoid
from swaprank.backends.credentials import resolve_api_key
from swaprank.backends.hosted.answers import Part
from swaprank.backends.hosted.errors import MESSAGE_LIMIT, HTTPStatusFailure, Retryable, error_for_status, unwrap
from swaprank.backends.hosted.hosts import check_destination, host_of
from swaprank.backends.hosted.logs import redact_sdk_logs
from swaprank.backends.hosted.loops import PerLoop, gather_or_cancel
from swaprank.backends.hosted.options import PLACEHOLDER_KEY, Activation
from swaprank.backends.hosted.prompting import Prompting
from swaprank.backends.hosted.retry import Deadline, StopAtDeadline, Wait
from swaprank.backends.hosted.sdk_errors import StatusErrorReader
from swaprank.backends.limits import LengthLimits
from swaprank.backends.notices import warn_instruction_ignored
from swaprank.redaction import redact_text, redacted_spec
from swaprank.specs import BackendSpec
from swaprank.tracing import AttemptSpan, attempt_span
from swaprank.types import AuthenticationError, BackendError, BackendUnavailableError, BadResponseError, Usage

logger = logging.getLogger("swaprank")

class Closable(Protocol):
    """Clients a hosted backend owns (``JsonHTTP``, ``SdkClients``): closed with it."""

    def close(self) -> None: ...

    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Closable)


class HostedBackend(LengthLimits, Backend):
    """Base of the API backends: splitting, concurrency, retries, deadline and error mapping
    (and, through ``LengthLimits``, the pair limit that lets the Reranker window long documents).

    Subclasses set ``vendor``, ``default_model``, ``options`` (``network_options()`` merged with
    their own), ``key_env`` and implement ``_send`` / ``_asend`` for one request. They may add
    SDK exception types to ``timeout_errors`` / ``connection_errors``, and say in ``status_errors``
    where an SDK's HTTP error keeps the answer (``swaprank.backends.hosted.sdk_errors``).
    """

    key_env: ClassVar[tuple[str, ...]] = ()
    # Where the vendor's API is when no base_url is given: an env key may always go to these hosts
    # (swaprank.backends.hosted.hosts); self-hosted servers have none.
    default_urls: ClassVar[tuple[str, ...]] = ()
    # Credentials the process holds whatever the arguments (the AWS chain): checked like an env key.
    ambient_credentials: ClassVar[bool] = False
    # Loggers the vendor SDK writes response bodies to; keys are scrubbed from their records.
    sdk_loggers: ClassVar[tuple[str, ...]] = ()
    # SDK exception types meaning "timed out" / "could not talk to the server"; set by subclasses
    # (per instance when the SDK is imported lazily).
    timeout_errors: tuple[type[BaseException], ...] = ()
    connection_errors: tuple[type[BaseException], ...] = ()
    status_errors: tuple[StatusErrorReader, ...] = ()
    # Whether the backend writes ``instruction=`` into its requests itself (llm:); the others carry
    # it through ``prompting()`` where the model follows instructions, else warn once and ignore it.
    takes_instruction: ClassVar[bool] = False

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec)
        self._owned: list[Closable] = []
        self._api_key = resolve_api_key(api_key, self.key_env)
        self._check_key_destination(from_environment=api_key is None and self._api_key is not None)
        if self._api_key is None and self.key_required():
            names = " or ".join(self.key_env)
            raise AuthenticationError(
                f"no API key for {self.vendor}: pass api_key=... or set {names}", vendor=self.vendor, attempts=0,
            )
        redact_sdk_logs(self, self.sdk_loggers)
        self._prompting = self.prompting()
        if self.option("instruction") is not None and not self.takes_instruction and self._prompting is None:
            warn_instruction_ignored(spec, self.instruction_refusal())
        self._init_limits()
        self._semaphores: PerLoop[asyncio.Semaphore] = PerLoop(
            lambda: asyncio.Semaphore(self.option("max_concurrency"))
        )

    # -------------------------------------------------------------- lifecycle

    def own(self, resource: C) -> C:
        """Register clients that close with this backend (``close()`` / ``aclose()``)."""
        self._owned.append(resource)
        return resource

    def close(self) -> None:
        super().close()
        for resource in self._owned:
            resource.close()

    async def aclose(self) -> None:
        """Close the calling loop's async clients on it, then everything else."""
        for resource in self._owned:
            await resource.aclose()
        await asyncio.to_thread(Backend.close, self)

    # -------------------------------------------------------------- for subclasses

    def endpoint_url(self) -> str | None:
        """The address the config string chose (``base_url``), or None: the vendor's own."""
        return self.option("base_url") if "base_url" in (self.options or {}) else None

    def vendor_hosts(self) -> tuple[str, ...]:
        """The hosts of the vendor's own API (always approved for its key)."""
        return tuple(host for host in (host_of(url) for url in self.default_urls) if host)

    def _check_key_destination(self, *, from_environment: bool) -> None:
        """The one place a credential the config string did not choose meets the address it chose:
        an env key (or the AWS chain) goes only to an approved host (swaprank.backends.hosted.hosts)."""
        url = self.endpoint_url()
        if not url or not (from_environment or self.ambient_credentials):
            return
        if self.ambient_credentials:
            credential, in_code = f"the {self.credentials_label()} credentials of this process", ""
        else:
            source = next((name for name in self.key_env if os.environ.get(name)), " or ".join(self.key_env))
            credential, in_code = f"the key in ${source}", "pass the key in code (api_key=...)"
        check_destination(self.vendor, url, self.vendor_hosts(), credential, in_code=in_code)

    def credentials_label(self) -> str:
        return self.vendor

    def key_required(self) -> bool:
        """Keys are needed for the vendor's own endpoint; a self-hosted ``base_url`` may do without."""
        return "base_url" not in (self.options or {}) or not self.option("base_url")

    def secret(self) -> str | None:
        return self._api_key.get_secret_value() if self._api_key is not None else None

    def sdk_key(self) -> str:
        """The key for an SDK that refuses to start without one (a keyless self-hosted ``base_url``)."""
        return self.secret() or PLACEHOLDER_KEY

    def prompting(self) -> Prompting | None:
        """How this model reads ``instruction=`` from the query/document text (None: it cannot)."""
        return None

    def instruction_refusal(self) -> str:
        """Why ``instruction=`` cannot reach the model (the one warning's text)."""
        return f"the {self.vendor} rerank API has no instruction field"

    def overhead_text(self) -> str:
        return self._prompting.overhead() if self._prompting is not None else ""

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:  # pragma: no cover - abstract
        raise NotImplementedError

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:  # pragma: no cover - abstract
        raise NotImplementedError

    def _status_failure(self, exc: BaseException) -> HTTPStatusFailure | None:
        if isinstance(exc, HTTPStatusFailure):
            return exc
        for reader in self.status_errors:
            failure = reader.failure(exc)
            if failure is not None:
                return failure
        return None

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
            pool = self._thread_pool()
            futures = [pool.submit(contextvars.copy_context().run, self._attempts, query, chunk, deadline)
                       for _, _, query, chunk in jobs]
            done, pending = wait(futures, return_when=FIRST_EXCEPTION)
            for future in pending:
                future.cancel()
            raise_first(futures, done)
            parts = [future.result() for future in futures]
        return self._merge(requests, jobs, parts)

    async def ascore_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        deadline = Deadline(self.option("deadline"))
        jobs = self._jobs(requests)
        semaphore = self._semaphores.get()

        billed: list[Part] = []

        async def run(query: str, chunk: list[str]) -> Part:
            async with semaphore:
                part = await self._aattempts(query, chunk, deadline)
            billed.append(part)
            return part

        try:
            parts = await gather_or_cancel([run(query, chunk) for _, _, query, chunk in jobs])
        except BaseException as error:
            raise _with_usage(error, billed)  # noqa: B904 - the same error, with what was billed
        return self._merge(requests, jobs, parts)

    # -------------------------------------------------------------- splitting

    def _jobs(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[int, int, str, list[str]]]:
        """(request index, offset, query, chunk) for every request the call will send."""
        size = self.option("max_docs_per_request")
        if self._prompting is not None:
            requests = [self._prompting.apply(query, texts) for query, texts in requests]
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
        normalize = sigmoid if self.activation() == "sigmoid" else float
        return [Scores(raw=scores, normalized=[normalize(s) for s in scores], usage=Usage.total(u))
                for scores, u in zip(raw, usage, strict=True)]

    def activation(self) -> Activation:
        """``identity`` unless the backend declares the ``activation`` option (see activation_option)."""
        return self.option("activation") if "activation" in (self.options or {}) else "identity"

    def thread_count(self) -> int:
        """Sync split calls send their parts from this many threads (``max_concurrency``)."""
        return int(self.option("max_concurrency"))

    # -------------------------------------------------------------- retries

    def _policy(self, deadline: Deadline) -> dict[str, Any]:
        return {
            "retry": retry_if_exception_type(Retryable),
            "stop": stop_after_attempt(self.option("max_retries") + 1) | StopAtDeadline(deadline),
            "wait": Wait(self.option("backoff"), self.option("max_backoff")),
            "before_sleep": self._log_retry,
            "reraise": True,
        }

    def _attempts(self, query: str, texts: list[str], deadline: Deadline) -> Part:
        tries = _Try()
        with self._outcome(tries):
            for attempt in Retrying(**self._policy(deadline)):
                with attempt, self._attempt(attempt.retry_state, tries, len(texts), deadline) as run:
                    part = run.part = self._send(query, texts, run.timeout)
                    return part
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    async def _aattempts(self, query: str, texts: list[str], deadline: Deadline) -> Part:
        tries = _Try()
        with self._outcome(tries):
            async for attempt in AsyncRetrying(**self._policy(deadline)):
                with attempt, self._attempt(attempt.retry_state, tries, len(texts), deadline) as run:
                    # The SDKs get the timeout too; this also bounds DNS, pool waits and body reads.
                    part = run.part = await asyncio.wait_for(self._asend(query, texts, run.timeout), run.timeout)
                    return part
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    @contextmanager
    def _attempt(self, state: RetryCallState, tries: _Try, documents: int, deadline: Deadline) -> Iterator[_Try]:
        """One attempt, for both loops: its time budget, its span, and its failure classified."""
        tries.number, tries.part = state.attempt_number, None
        tries.timeout = deadline.budget(self.option("timeout"), self.vendor)
        with self._attempt_span(tries.number, documents) as span:
            try:
                yield tries
            except Exception as exc:
                raise traced(span, self._failure(exc, tries.timeout))  # noqa: B904 - _failure sets the cause
            if tries.part is not None:
                span.succeeded(tries.part.usage)

    @staticmethod
    @contextmanager
    def _outcome(tries: _Try) -> Iterator[None]:
        """The typed error the retries ended with, raised outside the handler so the cause chain is
        the one ``_failure`` chose."""
        try:
            yield
            return
        except (Retryable, BackendError) as failure:
            error = unwrap(failure, tries.number)
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

    def _failure(self, exc: Exception, timeout: float) -> BackendError | Retryable:
        """Classify one failed attempt; unknown exceptions (our bugs) propagate unchanged."""
        if isinstance(exc, BackendError):
            return exc
        status_failure = self._status_failure(exc)
        if status_failure is not None:
            mapped = error_for_status(self.vendor, status_failure.status, status_failure.headers,
                                      status_failure.body, self._scrub)
        elif isinstance(exc, (httpx.TimeoutException, TimeoutError, asyncio.TimeoutError, *self.timeout_errors)):
            mapped = Retryable(BackendUnavailableError(f"{self.vendor} request timed out after {timeout:.3g}s",
                                                        vendor=self.vendor))
        elif isinstance(exc, (httpx.TransportError, ConnectionError, *self.connection_errors)):
            detail = self._scrub(str(exc))[:MESSAGE_LIMIT]
            mapped = Retryable(BackendUnavailableError(
                f"{self.vendor} connection failed: {type(exc).__name__}: {detail}", vendor=self.vendor))
        else:
            raise exc
        error = mapped.error if isinstance(mapped, Retryable) else mapped
        # An SDK's HTTP error adds nothing ours lacks (status, request id, vendor message), and its
        # str() can quote a whole response body, a key echoed by the vendor included; transport
        # errors are kept as the cause, for debugging.
        error.__cause__ = None if status_failure is not None else exc
        error.__suppress_context__ = True
        return mapped


class _Try:
    """The attempt under way: its number, its time budget and, once sent, its answer."""

    def __init__(self) -> None:
        self.number = 0
        self.timeout = 0.0
        self.part: Part | None = None


def traced(span: AttemptSpan, failure: Retryable | BackendError) -> Retryable | BackendError:
    """Record a failed attempt on its span: the typed error, the status, whether it is retried."""
    error = failure.error if isinstance(failure, Retryable) else failure
    span.failed(error, error.status, retryable=isinstance(failure, Retryable))
    return failure


def raise_first(futures: list[Future[Part]], done: set[Future[Part]]) -> None:
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
