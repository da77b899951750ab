"""OpenTelemetry spans: one per rerank call, one child per HTTP attempt.

Reranking is invisible in most RAG traces (a compressor emits nothing, a postprocessor one event),
yet it is where a fallback fires, a vendor throttles, or long documents get windowed. With the
``otel`` extra (``opentelemetry-api``) installed, every ``Reranker`` call opens a span named
``rerank <backend:model>`` that follows the spirit of the GenAI semantic conventions
(``gen_ai.operation.name``, ``gen_ai.provider.name``, ``gen_ai.request.model``,
``gen_ai.response.model``, ``gen_ai.usage.input_tokens``) plus ``swaprank.*`` attributes for
what the conventions do not name (candidates, top_n, returned, fallback, passthrough,
windowed/truncated counts, search units); every HTTP attempt of a hosted backend is a child
span with its outcome and, when it failed, whether and why it is retried.

Nothing is exported unless the application configures an OpenTelemetry SDK (a
``TracerProvider`` with an exporter): the API alone records nothing, and without the package
every function here is a no-op. Spans carry ``backend:model`` labels and counts, never document
text, queries, URLs or keys.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from swaprank.redaction import redact_text

if TYPE_CHECKING:
    from swaprank.types import RerankResult, Usage

_UNSET: Any = object()
_tracer: Any = _UNSET


def tracer() -> Any:
    """The swaprank tracer, or None when opentelemetry-api is not installed."""
    global _tracer
    if _tracer is _UNSET:
        try:
            from opentelemetry import trace
        except ImportError:
            _tracer = None
        else:
            from swaprank._version import __version__

            _tracer = trace.get_tracer("swaprank", __version__)
    return _tracer


def usage_attributes(usage: Usage | None) -> dict[str, int]:
    if usage is None:
        return {}
    attributes = {}
    if usage.total_tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = usage.total_tokens
    if usage.search_units is not None:
        attributes["swaprank.usage.search_units"] = usage.search_units
    if usage.rerank_units is not None:
        attributes["swaprank.usage.rerank_units"] = usage.rerank_units
    return attributes


class CallSpan:
    """The span of one rerank call; methods are no-ops when nothing records it."""

    def __init__(self, span: Any) -> None:
        self.span = span
        self.started = time.perf_counter()
        self.recording = span is not None and span.is_recording()

    def fallback(self, label: str, error: BaseException) -> None:
        """A backend of the chain failed; the next one is tried (an event on the call's span)."""
        if self.recording:
            self.span.add_event("swaprank.fallback", {
                "swaprank.failed_model": label, "error.type": type(error).__name__,
                "swaprank.error": redact_text(str(error))[:300],
            })

    def served(self, results: Sequence[RerankResult], failures: int) -> None:
        if not self.recording:
            return
        from swaprank.types import Usage

        first = results[0] if results else None
        served_by = next((r.model_name for r in results if r.model_name), "")
        attributes: dict[str, Any] = {
            "swaprank.returned": sum(len(r) for r in results),
            "swaprank.windowed": sum(r.windowed for r in results),
            "swaprank.truncated": sum(r.truncated for r in results),
            "swaprank.queries_truncated": sum(r.query_truncated for r in results),
            "swaprank.fallback_used": failures > 0 and bool(served_by),
            "swaprank.failed_attempts": failures,
            "swaprank.passthrough": bool(first is not None and first.passthrough),
            "swaprank.latency_ms": round(1000 * (time.perf_counter() - self.started), 3),
            **usage_attributes(Usage.total(r.usage for r in results)),
        }
        if served_by:
            attributes["gen_ai.response.model"] = served_by
            attributes["gen_ai.provider.name"] = served_by.partition(":")[0]
        self.span.set_attributes(attributes)
        if first is not None and first.passthrough and first.error is not None:
            self.span.set_attribute("error.type", type(first.error).__name__)

    def failed(self, error: BaseException) -> None:
        if self.recording:
            from opentelemetry.trace import Status, StatusCode

            self.span.set_attribute("error.type", type(error).__name__)
            self.span.set_attribute("swaprank.latency_ms", round(1000 * (time.perf_counter() - self.started), 3))
            self.span.set_status(Status(StatusCode.ERROR, redact_text(str(error))[:300]))


@contextmanager
def call_span(chain_label: str, primary_label: str, *, queries: int, candidates: int, top_n: int | None,
              score_threshold: float | None, min_results: int) -> Iterator[CallSpan]:
    """A span around one rerank call (a no-op CallSpan without OpenTelemetry)."""
    otel = tracer()
    if otel is None:
        yield CallSpan(None)
        return
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "rerank", "gen_ai.request.model": primary_label,
        "swaprank.chain": chain_label, "swaprank.queries": queries, "swaprank.candidates": candidates,
        "swaprank.min_results": min_results,
    }
    if top_n is not None:
        attributes["swaprank.top_n"] = top_n
    if score_threshold is not None:
        attributes["swaprank.score_threshold"] = score_threshold
    # Exceptions are recorded by failed() with a scrubbed message, not by the SDK with the raw one.
    with otel.start_as_current_span(f"rerank {primary_label}", attributes=attributes,
                                    record_exception=False, set_status_on_exception=False) as span:
        yield CallSpan(span)


class AttemptSpan:
    def __init__(self, span: Any) -> None:
        self.span = span
        self.recording = span is not None and span.is_recording()

    def succeeded(self, usage: Usage | None) -> None:
        if self.recording:
            self.span.set_attributes(usage_attributes(usage))

    def failed(self, error: BaseException, status: int | None, retryable: bool) -> None:
        if not self.recording:
            return
        from opentelemetry.trace import Status, StatusCode

        self.span.set_attribute("error.type", type(error).__name__)
        self.span.set_attribute("swaprank.retryable", retryable)
        if retryable:
            reason = f"HTTP {status}" if status is not None else type(error).__name__
            self.span.set_attribute("swaprank.retry_reason", reason)
        if status is not None:
            self.span.set_attribute("http.response.status_code", status)
        self.span.set_status(Status(StatusCode.ERROR, redact_text(str(error))[:300]))


@contextmanager
def attempt_span(vendor: str, label: str, *, attempt: int, documents: int) -> Iterator[AttemptSpan]:
    """A client span around one HTTP attempt of a hosted backend.

    Deliberately without ``server.address`` / ``url.full``: traces often leave the company (a
    hosted tracing service), and an internal endpoint is as sensitive as the documents."""
    otel = tracer()
    if otel is None:
        yield AttemptSpan(None)
        return
    from opentelemetry.trace import SpanKind

    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "rerank", "gen_ai.provider.name": vendor, "gen_ai.request.model": label,
        "swaprank.attempt": attempt, "swaprank.documents": documents,
    }
    with otel.start_as_current_span(f"rerank.request {vendor}", kind=SpanKind.CLIENT, attributes=attributes,
                                    record_exception=False, set_status_on_exception=False) as span:
        yield AttemptSpan(span)
