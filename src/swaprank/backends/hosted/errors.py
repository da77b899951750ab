"""Mapping a failed request to the typed error a caller can act on, and whether to retry it.

Every failure becomes a ``BackendError`` (vendor, HTTP status, vendor request id, attempts) whose
message is scrubbed of the API key. A 200 whose ranking cannot be trusted is a
``BadResponseError``: silently mis-ranking is worse than failing over to the next model.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from swaprank.backends.hosted.answers import request_id_from
from swaprank.types import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    BadRequestError,
    BadResponseError,
    RateLimitError,
)

MESSAGE_LIMIT = 300


class HTTPStatusFailure(Exception):
    """A non-2xx answer (or an unparsable 2xx), before it is mapped to a typed error."""

    def __init__(self, status: int, headers: Mapping[str, str] | None, body: Any) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.headers = {str(k).lower(): str(v) for k, v in (headers or {}).items()}
        self.body = body


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
            return body.strip()[:MESSAGE_LIMIT]
    if isinstance(body, Mapping):
        for key in ("message", "detail", "error"):
            value = body.get(key)
            if isinstance(value, Mapping):  # {"error": {"message": ...}}
                value = value.get("message", value)
            if value:
                return str(value)[:MESSAGE_LIMIT]
    return "" if body is None else json.dumps(body, default=str)[:MESSAGE_LIMIT]


class Retryable(Exception):
    """Carries a typed error through tenacity when the failure is worth another attempt."""

    def __init__(self, error: BackendError, retry_after: float | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.retry_after = retry_after


def error_for_status(
    vendor: str, status: int, headers: Mapping[str, str] | None, body: Any, scrub: Callable[[str], str] = str,
) -> BackendError | Retryable:
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
        return Retryable(RateLimitError(f"{vendor} rate limit{detail}", **kwargs), retry_after_seconds(headers))
    if status == 408 or (status >= 500 and status != 501):
        return Retryable(BackendUnavailableError(f"{vendor} server error{detail}", **kwargs),
                          retry_after_seconds(headers))
    if status == 413:
        return BadRequestError(f"{vendor} refused the request as too large{detail} "
                               "(lower max_docs_per_request or enable truncation)", **kwargs)
    if 400 <= status < 500:
        return BadRequestError(f"{vendor} rejected the request{detail}", **kwargs)
    if status >= 500:
        return BackendUnavailableError(f"{vendor} server error{detail}", **kwargs)
    return BadResponseError(f"{vendor} answered with unexpected status {status}{detail}", **kwargs)


def unwrap(failure: Retryable | BackendError, attempts: int) -> BackendError:
    error = failure.error if isinstance(failure, Retryable) else failure
    error.attempts = max(attempts, 1)
    error.__context__ = None  # _failure chose the cause worth keeping; drop the implicit one
    return error
