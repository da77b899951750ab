"""Hosted backends under failure: every fault a vendor can throw, through the real SDKs and HTTP.

What a user relies on: transient faults (429, 5xx, timeouts, dropped connections) are retried
within the budget and then surface as the right typed error with vendor, status, request id and
attempt count; permanent faults (bad key, bad request, unusable 200) are not retried; nothing
ever turns into a silently wrong ranking.
"""

from __future__ import annotations

import time

import pytest

from swaprank import (
    AuthenticationError,
    BackendUnavailableError,
    BadRequestError,
    BadResponseError,
    RateLimitError,
    Reranker,
)
from tests.fakes import FakeServer, Fault, relevance
from tests.fakes.helpers import DOCS, QUERY, rerank, reranker

pytest_plugins = ["tests.fakes.fixtures"]  # fake servers: fake_servers, server, vendor, mode


def warm(rr: Reranker) -> Reranker:
    """Build the backend (SDK import, clients) before a test starts its stopwatch."""
    rr.warmup()
    return rr


def assert_correct(result: list, docs: list[str] = DOCS) -> None:
    assert sorted(d.index for d in result) == list(range(len(docs)))
    # approx: llama.cpp answers logits, mapped back through a sigmoid to float precision
    assert [d.score for d in result] == pytest.approx(sorted((relevance(QUERY, d) for d in docs), reverse=True))


# ------------------------------------------------------------------ transient faults are retried


def test_rate_limit_is_retried_then_served(server: FakeServer, mode: str) -> None:
    server.script(Fault.rate_limited(), Fault.rate_limited())
    assert_correct(rerank(reranker(server), mode))
    assert [r.status for r in server.requests] == [429, 429, 200]


@pytest.mark.parametrize("vendor", ["cohere"])  # one vendor: every SDK's headers are covered by the ms test
def test_retry_after_seconds_is_honoured(server: FakeServer) -> None:
    server.script(Fault.rate_limited(retry_after=1))
    assert_correct(rerank(reranker(server, backoff=0.01), "sync"))
    first, second = server.requests
    assert first.finished is not None
    assert second.started - first.finished >= 0.95  # our own backoff would have been ~0.02 s


def test_retry_after_ms_is_honoured(server: FakeServer, mode: str) -> None:
    server.script(Fault.rate_limited(retry_after_ms=300))
    assert_correct(rerank(reranker(server, backoff=0.01), mode))
    first, second = server.requests
    assert first.finished is not None
    assert second.started - first.finished >= 0.28


def test_persistent_rate_limit_raises_rate_limit_error(server: FakeServer, mode: str) -> None:
    server.script(*[Fault.rate_limited()] * 3)
    with pytest.raises(RateLimitError) as info:
        rerank(reranker(server, max_retries=2), mode)
    error = info.value
    assert (error.vendor, error.status, error.attempts) == (server.vendor, 429, 3)
    assert error.request_id == server.requests[-1].request_id
    assert "rate limit exceeded" in str(error)  # the vendor's own message, from its error body
    assert len(server.requests) == 3


def test_server_errors_are_retried_then_served(server: FakeServer, mode: str) -> None:
    server.script(Fault.server_error(500), Fault.server_error(503))
    assert_correct(rerank(reranker(server), mode))
    assert [r.status for r in server.requests] == [500, 503, 200]


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_persistent_server_errors_raise_unavailable(server: FakeServer, mode: str, status: int) -> None:
    server.script(*[Fault.server_error(status)] * 3)
    with pytest.raises(BackendUnavailableError) as info:
        rerank(reranker(server, max_retries=2), mode)
    error = info.value
    assert (error.vendor, error.status, error.attempts) == (server.vendor, status, 3)
    assert error.request_id == server.requests[-1].request_id
    assert len(server.requests) == 3


def test_slow_answer_times_out_and_is_retried(server: FakeServer, mode: str) -> None:
    server.script(Fault.slow(5.0))
    rr = warm(reranker(server, timeout=0.2))
    start = time.monotonic()
    assert_correct(rerank(rr, mode))
    # A wide margin (a loaded CI machine must not fail it): waiting for the slow answer takes 5 s.
    assert time.monotonic() - start < 4.0  # did not wait for the slow answer
    assert len(server.requests) == 2


def test_persistent_timeouts_raise_unavailable(server: FakeServer, mode: str) -> None:
    # 0.3 s, not less: the server must get to read each attempt even on a loaded CI machine, or it
    # cannot count it (a 0.1 s timeout once let the client give up before the server saw attempt 3).
    server.script(*[Fault.slow(5.0)] * 3)
    rr = warm(reranker(server, timeout=0.3, max_retries=2))
    start = time.monotonic()
    with pytest.raises(BackendUnavailableError, match=r"timed out after 0\.3s") as info:
        rerank(rr, mode)
    assert time.monotonic() - start < 4.5  # three 0.3 s attempts, not one 5 s answer (wide margin)
    assert (info.value.vendor, info.value.status, info.value.attempts) == (server.vendor, None, 3)
    assert len(server.requests) == 3


def test_dropped_connection_is_retried(server: FakeServer, mode: str) -> None:
    server.script(Fault.drop())
    assert_correct(rerank(reranker(server), mode))
    assert len(server.requests) == 2


def test_persistent_drops_raise_unavailable(server: FakeServer, mode: str) -> None:
    server.script(*[Fault.drop()] * 3)
    with pytest.raises(BackendUnavailableError, match="connection failed") as info:
        rerank(reranker(server, max_retries=2), mode)
    assert (info.value.vendor, info.value.attempts) == (server.vendor, 3)
    assert info.value.__cause__ is not None  # the transport error stays attached for debugging
    assert len(server.requests) == 3


def test_mixed_transient_faults_within_the_retry_budget(server: FakeServer, mode: str) -> None:
    server.script(Fault.rate_limited(), Fault.drop(), Fault.server_error(502))
    assert_correct(rerank(reranker(server, max_retries=3), mode))
    assert len(server.requests) == 4


# ------------------------------------------------------------------ budgets


def test_retry_after_beyond_the_deadline_fails_fast(server: FakeServer, mode: str) -> None:
    server.script(Fault.rate_limited(retry_after=30))
    rr = warm(reranker(server, deadline=2))
    start = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        rerank(rr, mode)
    assert time.monotonic() - start < 10.0  # gave up instead of sleeping 30 s past the deadline (wide margin)
    assert info.value.attempts == 1


def test_deadline_bounds_the_whole_call(server: FakeServer, mode: str) -> None:
    server.script(*[Fault.slow(5.0)] * 10)
    rr = warm(reranker(server, timeout=0.3, max_retries=10, deadline=0.5))
    start = time.monotonic()
    with pytest.raises(BackendUnavailableError):
        rerank(rr, mode)
    assert time.monotonic() - start < 3.0  # eleven 0.3 s attempts would take 3.3 s (wide margin)
    assert len(server.requests) <= 3


# ------------------------------------------------------------------ permanent faults are not retried


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (Fault.malformed_json(), "not valid JSON"),
        (Fault.missing_results(), "no results list|field .* is missing"),
        (Fault.missing_score(), "(?i)score|logit"),  # the vendor's own field: relevanceScore, logit
        (Fault.wrong_index(), "outside 0..7|out of range"),
        (Fault.negative_index(), "outside 0..7"),
        (Fault.float_index(), r"index(=1\.5| of type float), not an integer|TypeError: list indices"),
        (Fault.string_score(), "not a finite number"),
        (Fault.duplicate_index(), "ranked twice"),
        (Fault.wrong_count(), "7 results for 8 documents"),
    ],
    ids=lambda v: v.kind if isinstance(v, Fault) else "",
)
def test_unusable_200_is_a_bad_response(server: FakeServer, mode: str, fault: Fault, message: str) -> None:
    server.script(fault)
    with pytest.raises(BadResponseError, match=message) as info:
        rerank(reranker(server), mode)
    error = info.value
    assert (error.vendor, error.status, error.attempts) == (server.vendor, 200, 1)
    # The voyage and pinecone SDKs drop the headers of a 200 (voyage keeps them for a body that is not JSON).
    if server.vendor not in ("voyage", "pinecone") or (server.vendor == "voyage" and fault.kind == "malformed_json"):
        assert error.request_id == server.requests[0].request_id
    assert len(server.requests) == 1


def test_rejected_key_is_an_authentication_error(server: FakeServer, mode: str) -> None:
    message, status = "invalid api token", 401
    if server.vendor == "tei":
        server.api_key = "the-real-key"  # TEI started with --api-key; the client sends none
        rr = reranker(server, api_key=None)
    elif server.vendor == "bedrock":  # signed with the AWS chain's secret; the fake expects another one
        server.api_key = "another-aws-secret-access-key"
        rr = reranker(server, api_key=None)
        message, status = "signature we calculated does not match", 403
    else:
        rr = reranker(server, api_key="sk-wrong")
    with pytest.raises(AuthenticationError, match=message) as info:
        rerank(rr, mode)
    assert (info.value.vendor, info.value.status, info.value.attempts) == (server.vendor, status, 1)
    assert info.value.request_id == server.requests[0].request_id
    assert len(server.requests) == 1


def test_bad_request_carries_the_vendor_message(server: FakeServer, mode: str) -> None:
    # Cohere's error body is {"message"}, Voyage's and Jina's {"detail"}, TEI's {"error"}.
    server.script(Fault.status_code(400))
    with pytest.raises(BadRequestError, match="upstream failure 400") as info:
        rerank(reranker(server), mode)
    assert (info.value.status, info.value.attempts) == (400, 1)
    assert len(server.requests) == 1


def test_request_over_the_vendor_limit_is_a_bad_request(server: FakeServer, mode: str) -> None:
    server.max_docs = 4
    with pytest.raises(BadRequestError) as info:
        rerank(reranker(server, max_docs_per_request=100), mode)
    if server.vendor == "tei":  # TEI answers 413 past --max-client-batch-size
        assert info.value.status == 413
        assert "lower max_docs_per_request" in str(info.value)
    else:
        assert info.value.status == 400
        assert "too many documents" in str(info.value)
