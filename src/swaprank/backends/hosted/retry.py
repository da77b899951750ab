"""The retry policy (tenacity) and the call-wide deadline shared by all parts and attempts.

Exponential backoff with jitter on 429, 408, 5xx, timeouts and connection errors;
``Retry-After`` / ``retry-after-ms`` are honoured; attempts are bounded (``max_retries``) and so
is the whole call (``deadline``), including queueing and backoff.
"""

from __future__ import annotations

import random
import time

from tenacity import RetryCallState
from tenacity.stop import stop_base

from swaprank.backends.hosted.errors import Retryable
from swaprank.types import BackendUnavailableError


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


class StopAtDeadline(stop_base):
    def __init__(self, deadline: Deadline) -> None:
        self.deadline = deadline

    def __call__(self, state: RetryCallState) -> bool:
        return self.deadline.remaining() <= state.upcoming_sleep


class Wait:
    """Retry-After when the vendor sent one, else exponential backoff with jitter."""

    def __init__(self, backoff: float, max_backoff: float) -> None:
        self.backoff = backoff
        self.max_backoff = max_backoff

    def __call__(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome is not None else None
        if isinstance(failure, Retryable) and failure.retry_after is not None:
            return failure.retry_after
        # Written out rather than tenacity's wait_exponential_jitter, whose arguments changed
        # between the tenacity versions we support. Jitter spreads clients that failed together.
        base = self.backoff * 2 ** (state.attempt_number - 1)
        return min(self.max_backoff, base + random.uniform(0, self.backoff))
