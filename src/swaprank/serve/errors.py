"""One JSON shape for every error the service answers, and how swaprank's failures map onto HTTP.

Every non-2xx body is ``{"message": str, "type": str, "code": int, "detail": str}``: ``message``,
``type`` and ``code`` are the shape vLLM and OpenAI-style servers use (``message`` is also what
Cohere's SDK and swaprank's own clients read); ``detail`` repeats ``message`` because that is the key
Jina's API (and FastAPI) answers errors with, and the Jina clients (LlamaIndex's and LangChain's
``JinaRerank``, Haystack's ``JinaRanker``) raise ``KeyError('detail')`` on a body without it. ``type`` is a
stable machine-readable name: ``invalid_json``, ``invalid_request``, ``invalid_input``,
``unauthorized``, ``model_not_found``, ``body_too_large``, ``too_many_documents``,
``request_too_large`` (413: more model tokens than ``max_request_tokens``), ``body_timeout`` /
``header_timeout`` (408), ``request_timeout`` (504), ``overloaded`` / ``shutting_down`` (503 with
``Retry-After``), ``not_ready``, ``internal_error``, or for a failed backend the swaprank error
class (``BackendUnavailableError``, ``RateLimitError``...).

Backend failures say which class of failure and which vendor, never the backend's message: it can
name hosts, URLs or request ids of the upstream service, which are the operator's business, not the
client's (the server log has the redacted details).
"""

from __future__ import annotations

from typing import Any

from swaprank.types import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    ConfigError,
    InvalidInputError,
    MissingDependencyError,
    RateLimitError,
    RequestTooLargeError,
)


class ServeError(Exception):
    """An error the service answers with ``status`` and the one JSON shape."""

    def __init__(self, status: int, type_: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"message": self.message, "type": self.type, "code": self.status, "detail": self.message}


def _timed_out(exc: BaseException) -> bool:
    """Whether a backend failure was a timeout (504) rather than an outage (503)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = type(current).__name__
        if isinstance(current, TimeoutError) or name.endswith(("Timeout", "TimeoutError", "TimeoutException")):
            return True
        current = current.__cause__ or current.__context__
    text = str(exc)
    return "timed out" in text or "exceeded its deadline" in text


def from_exception(exc: BaseException) -> ServeError:
    """Map what ``Reranker.arerank_many`` raised to the answer a client gets.

    502: the backend answered wrongly or refused us (bad response, rejected request, rejected
    credentials: the service's configuration, not the caller's); 503: it is unavailable or rate
    limited (retryable; swaprank's clients and the vendor SDKs retry 503); 504: it timed out.
    """
    if isinstance(exc, ServeError):
        return exc
    if isinstance(exc, RequestTooLargeError):
        return ServeError(413, "request_too_large", str(exc))
    if isinstance(exc, InvalidInputError):
        return ServeError(400, "invalid_input", str(exc))
    name = type(exc).__name__
    if isinstance(exc, BackendError):
        vendor = f" ({exc.vendor})" if exc.vendor else ""
        if isinstance(exc, BackendUnavailableError) and _timed_out(exc):
            return ServeError(504, name, f"the model backend{vendor} timed out")
        if isinstance(exc, (BackendUnavailableError, RateLimitError)):
            return ServeError(503, name, f"the model backend{vendor} is unavailable; retry later",
                              {"retry-after": "1"})
        if isinstance(exc, AuthenticationError):
            return ServeError(502, name, f"the model backend{vendor} rejected the service's credentials")
        return ServeError(502, name, f"the model backend{vendor} failed: {name}")
    if isinstance(exc, MissingDependencyError):
        return ServeError(503, name, "the model backend is missing a dependency; see the server log")
    if isinstance(exc, ConfigError):
        return ServeError(500, name, "the service is misconfigured; see the server log")
    return ServeError(500, "internal_error", "internal error; see the server log")
