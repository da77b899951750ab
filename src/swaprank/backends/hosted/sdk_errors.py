"""What vendor SDKs raise, read back into the framework's terms.

An SDK's HTTP error is an exception class of its own that keeps the answer (status, headers, body)
somewhere on it; a backend lists where in ``status_errors`` and ``HostedBackend`` turns a match into
an ``HTTPStatusFailure``, then into the same typed error every vendor gives. An SDK that builds
objects out of a malformed 200 fails with whatever Python or its decoder raised; those become
``BadResponseError`` in the words ``ranked_scores`` uses for everyone else.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from swaprank.backends.hosted.errors import MESSAGE_LIMIT, HTTPStatusFailure
from swaprank.backends.optional import require
from swaprank.types import BadResponseError


class StatusErrorReader(Protocol):
    """Reads one SDK's HTTP-status exception; None for any other exception."""

    def failure(self, exc: BaseException) -> HTTPStatusFailure | None: ...


@dataclass(frozen=True)
class AttributeStatus:
    """An SDK exception keeping the answer in attributes (Cohere's ``ApiError``, Voyage's ``VoyageError``,
    Pinecone's ``ApiError``).

    ``body`` lists attributes tried in turn (the first non-empty wins); ``request_id`` names one
    holding the vendor's request id apart from the headers, which is then put back among them.
    """

    error: type[BaseException]
    status: str = "status_code"
    body: tuple[str, ...] = ("body",)
    headers: str = "headers"
    request_id: str | None = None

    def failure(self, exc: BaseException) -> HTTPStatusFailure | None:
        status = getattr(exc, self.status, None)
        if not isinstance(exc, self.error) or not isinstance(status, int):
            return None
        body = None
        for name in self.body:
            body = body or getattr(exc, name, None)
        headers = getattr(exc, self.headers, None)
        if self.request_id is not None:
            headers = _with_request_id(headers, getattr(exc, self.request_id, None))
        return HTTPStatusFailure(status, headers, body)


def _with_request_id(headers: Mapping[str, str] | None, request_id: Any) -> dict[str, str]:
    merged = dict(headers or {})
    if request_id and "x-request-id" not in {k.lower() for k in merged}:
        merged["x-request-id"] = request_id  # e.g. Pinecone's own x-pinecone-request-id
    return merged


@dataclass(frozen=True)
class ResponseStatus:
    """An SDK exception keeping the ``httpx.Response`` itself, and the parsed ``body`` (the
    Stainless-generated SDKs' ``APIStatusError``)."""

    error: type[BaseException]

    def failure(self, exc: BaseException) -> HTTPStatusFailure | None:
        if isinstance(exc, self.error):
            response = getattr(exc, "response", None)
            if isinstance(response, httpx.Response):
                body = getattr(exc, "body", None)
                return HTTPStatusFailure(response.status_code, response.headers,
                                         body if body is not None else response.text)
        return None


MODEL_ERRORS = (IndexError, AttributeError, KeyError, TypeError, ValueError)


@contextmanager
def model_errors(vendor: str, keep: tuple[type[BaseException], ...]) -> Iterator[None]:
    """Errors from an SDK building its result objects out of a malformed 200 (Voyage's
    ``RerankingObject``), as ``BadResponseError``; ``keep`` lists the SDK's own and transport errors,
    which may also be a ``ValueError`` (``aiohttp.InvalidURL``) but are no parse problem."""
    try:
        yield
    except MODEL_ERRORS as exc:
        if isinstance(exc, keep):
            raise
        if isinstance(exc, IndexError):
            problem = "a result index is out of range"
        elif isinstance(exc, (AttributeError, KeyError)):
            problem = f"field {exc} is missing"
        else:
            problem = f"{type(exc).__name__}: {exc}"
        raise BadResponseError(f"{vendor} returned an unusable ranking: {problem}", vendor=vendor,
                               status=200) from exc


@contextmanager
def msgspec_errors(vendor: str, parse_error: type[Exception], scrub: Callable[[str], str], *, extra: str,
                   results: str = "data") -> Iterator[None]:
    """An SDK's strict (msgspec) decoding of an answer failed (Pinecone's ``ResponseParsingError``):
    not JSON at all, or JSON of the wrong shape or types under ``$.<results>[i]``."""
    try:
        yield
    except parse_error as exc:
        msgspec = require("msgspec", extra)
        cause = exc.__cause__
        detail = scrub(str(cause or exc))[:MESSAGE_LIMIT]
        if isinstance(cause, msgspec.DecodeError) and not isinstance(cause, msgspec.ValidationError):
            problem = f"a body that is not valid JSON ({detail})"
        else:
            problem = f"an unusable ranking: {_shape_problem(detail, results)}"
        raise BadResponseError(f"{vendor} answered 200 with {problem}", vendor=vendor, status=200) from exc


_MISSING = re.compile(r"Object missing required field `(?P<field>[^`]+)`(?: - at `(?P<at>[^`]+)`)?")
_EXPECTED = {"int": "an integer", "float": "a finite number"}


def _shape_problem(message: str, results: str) -> str:
    """msgspec's validation message in the words ``ranked_scores`` uses for the other vendors."""
    wrong = re.search(r"Expected `(?P<expected>[^`]+)`, got `(?P<got>[^`]+)`"
                      rf" - at `\$\.{re.escape(results)}\[(?P<i>\d+)\]\.(?P<field>\w+)`", message)
    if wrong:
        expected = _EXPECTED.get(wrong["expected"], wrong["expected"])
        return f"result {wrong['i']} has {wrong['field']} of type {wrong['got']}, not {expected}"
    missing = _MISSING.search(message)
    if missing:
        return f"field {missing['field']!r} is missing" + (f" at {missing['at']}" if missing["at"] else "")
    return message
