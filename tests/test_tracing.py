"""OpenTelemetry: a span per rerank call with the GenAI-style attributes, child spans per HTTP
attempt with retry reasons, nested correctly on the sync thread pool and on the event loop."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from swaprank import Reranker, tracing
from swaprank.types import BackendUnavailableError
from tests import scripted_backend
from tests.fakes import FakeServer, Fault, token_count
from tests.fakes.helpers import DOCS, QUERY, TEST_KEY, rerank, spec
from tests.otel_support import spans  # noqa: F401 - fixture

pytest_plugins = ["tests.fakes.fixtures"]


@pytest.fixture(autouse=True)
def _scripted() -> None:
    scripted_backend.install()


def finished(exporter: Any) -> list[Any]:
    return list(exporter.get_finished_spans())


def only(items: list[Any], name: str) -> Any:
    matching = [s for s in items if s.name == name]
    assert len(matching) == 1, [s.name for s in items]
    return matching[0]


def test_a_local_call_is_one_span_with_the_calls_facts(spans: Any) -> None:  # noqa: F811
    rr = Reranker("scripted:a?fail=true | scripted:b", top_n=2, score_threshold=0.1, min_results=1)
    result = rr.rerank("q", ["s=0.2 x", "s=0.9 y", "s=0.5 z", "s=0.5 z"])
    span = only(finished(spans), "rerank scripted:a")
    attrs = dict(span.attributes)
    assert attrs["gen_ai.operation.name"] == "rerank"
    assert attrs["gen_ai.request.model"] == "scripted:a" and attrs["swaprank.chain"] == "scripted:a | scripted:b"
    assert attrs["gen_ai.response.model"] == "scripted:b" == result.model_name
    assert attrs["gen_ai.provider.name"] == "scripted"
    assert (attrs["swaprank.candidates"], attrs["swaprank.top_n"], attrs["swaprank.returned"]) == (4, 2, 2)
    assert attrs["swaprank.score_threshold"] == 0.1 and attrs["swaprank.min_results"] == 1
    assert attrs["swaprank.fallback_used"] is True and attrs["swaprank.failed_attempts"] == 1
    assert attrs["swaprank.passthrough"] is False and attrs["swaprank.latency_ms"] >= 0
    assert (attrs["swaprank.windowed"], attrs["swaprank.truncated"]) == (0, 0)
    assert "gen_ai.usage.input_tokens" not in attrs  # a local model bills nothing
    [event] = span.events
    assert event.name == "swaprank.fallback" and event.attributes["swaprank.failed_model"] == "scripted:a"
    assert event.attributes["error.type"] == "BackendUnavailableError"


def test_passthrough_and_failure_are_visible(spans: Any) -> None:  # noqa: F811
    from opentelemetry.trace import StatusCode

    Reranker("scripted?fail=true", on_error="passthrough").rerank("q", ["a", "b"])
    span = only(finished(spans), "rerank scripted:default")
    assert span.attributes["swaprank.passthrough"] is True
    assert span.attributes["error.type"] == "BackendUnavailableError"
    spans.clear()
    with pytest.raises(BackendUnavailableError):
        Reranker("scripted?fail=true").rerank("q", ["a", "b"])
    span = only(finished(spans), "rerank scripted:default")
    assert span.status.status_code == StatusCode.ERROR and "scripted outage" in span.status.description
    assert span.attributes["error.type"] == "BackendUnavailableError"


@pytest.mark.parametrize("vendor", ["voyage"])
def test_http_attempts_are_child_spans_with_retry_reasons(server: FakeServer, mode: str,
                                                          spans: Any) -> None:  # noqa: F811
    from opentelemetry.trace import SpanKind, StatusCode

    server.script(Fault.server_error(503), Fault.rate_limited())
    rr = Reranker(spec(server, max_docs_per_request=3, max_concurrency=1), api_key=TEST_KEY)
    result = rerank(rr, mode)
    recorded = finished(spans)
    call = only(recorded, "rerank voyage:rerank-2.5")
    attempts = [s for s in recorded if s.name == "rerank.request voyage"]
    assert len(attempts) == 5  # 3 parts; the first part failed twice before it succeeded
    assert all(a.parent is not None and a.parent.span_id == call.context.span_id for a in attempts)
    assert all(a.kind == SpanKind.CLIENT for a in attempts)
    failed = sorted((a for a in attempts if a.status.status_code == StatusCode.ERROR),
                    key=lambda a: a.attributes["swaprank.attempt"])
    assert [(a.attributes["swaprank.attempt"], a.attributes["http.response.status_code"],
             a.attributes["swaprank.retry_reason"], a.attributes["swaprank.retryable"]) for a in failed] == [
        (1, 503, "HTTP 503", True), (2, 429, "HTTP 429", True)]
    assert failed[1].attributes["error.type"] == "RateLimitError"
    tokens = token_count(QUERY, DOCS)
    assert call.attributes["gen_ai.usage.input_tokens"] == tokens == result.usage.total_tokens  # type: ignore[union-attr]
    assert sum(a.attributes.get("gen_ai.usage.input_tokens", 0) for a in attempts) == tokens
    assert all(a.attributes["swaprank.documents"] in (3, 2) for a in attempts)


@pytest.mark.parametrize("vendor", ["jina"])
def test_concurrent_parts_nest_under_the_call_on_both_paths(server: FakeServer, spans: Any) -> None:  # noqa: F811
    rr = Reranker(spec(server, max_docs_per_request=2), api_key=TEST_KEY)
    rr.rerank(QUERY, DOCS)  # four parts on the backend's thread pool
    asyncio.run(rr.arerank(QUERY, DOCS))  # four tasks on the loop
    recorded = finished(spans)
    calls = [s for s in recorded if s.name.startswith("rerank jina")]
    assert len(calls) == 2
    for call in calls:
        children = [s for s in recorded if s.parent is not None and s.parent.span_id == call.context.span_id]
        assert len(children) == 4 and {c.name for c in children} == {"rerank.request jina"}
        assert all(c.context.trace_id == call.context.trace_id for c in children)


def test_without_opentelemetry_nothing_is_recorded(monkeypatch: pytest.MonkeyPatch,
                                                   spans: Any) -> None:  # noqa: F811
    monkeypatch.setattr(tracing, "_tracer", None)  # as when opentelemetry-api is not installed
    result = Reranker("scripted", top_n=1).rerank("q", ["s=0.1 a", "s=0.8 b"])
    assert [r.index for r in result] == [1]
    assert finished(spans) == []
