"""The shared HTTP helpers on their own: header parsing, error bodies, ranking validation, mapping."""

from __future__ import annotations

import email.utils
import time

import pytest

from swaprank import AuthenticationError, BadRequestError, BadResponseError
from swaprank.backends.hosted import error_for_status, ranked_scores, retry_after_seconds, vendor_message


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),  # the precise one wins
        ({"retry-after-ms": "soon", "Retry-After": "2"}, 2.0),
        ({"Retry-After": "-4"}, 0.0),
        ({"Retry-After": "later"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_forms(headers: dict[str, str] | None, expected: float | None) -> None:
    assert retry_after_seconds(headers) == expected


def test_retry_after_as_http_date() -> None:
    when = email.utils.formatdate(time.time() + 5, usegmt=True)
    assert 3.5 < (retry_after_seconds({"Retry-After": when}) or 0) <= 5.0


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"message": "invalid request: too many documents"}, "invalid request: too many documents"),  # Cohere
        ({"detail": "Rate limit exceeded"}, "Rate limit exceeded"),  # Voyage, Jina
        ('{"error": "batch size 40 > 32", "error_type": "validation"}', "batch size 40 > 32"),  # TEI, raw text
        ({"error": {"message": "nested"}}, "nested"),
        ("Bad Gateway", "Bad Gateway"),
        (b"<html>oops</html>", "<html>oops</html>"),
        (None, ""),
    ],
)
def test_vendor_message_shapes(body: object, expected: str) -> None:
    assert vendor_message(body) == expected


def test_ranked_scores_realigns_any_order() -> None:
    items = [{"index": 2, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.5},
             {"index": 1, "relevance_score": 0}]
    assert ranked_scores(items, 3, vendor="x") == [0.5, 0.0, 0.9]


@pytest.mark.parametrize(
    "items",
    [
        [{"index": True, "relevance_score": 0.5}],  # bool is an int in Python; not an index
        [{"index": 0, "relevance_score": float("nan")}],
        [{"index": 0, "relevance_score": None}],
        ["0.5"],
        {"index": 0, "relevance_score": 0.5},
    ],
)
def test_ranked_scores_rejects_unusable_items(items: object) -> None:
    with pytest.raises(BadResponseError):
        ranked_scores(items, 1, vendor="x")


def test_status_mapping_scrubs_the_key_and_classifies() -> None:
    error = error_for_status("jina", 403, {"x-request-id": "r1"}, {"detail": "key sk-123 revoked"},
                             lambda text: text.replace("sk-123", "***"))
    assert isinstance(error, AuthenticationError)
    assert (error.status, error.request_id) == (403, "r1")
    assert "sk-123" not in str(error) and "***" in str(error)
    assert isinstance(error_for_status("tei", 422, None, {"error": "tokenizer"}), BadRequestError)
    assert isinstance(error_for_status("tei", 200, None, "not json"), BadResponseError)
