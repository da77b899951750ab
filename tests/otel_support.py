"""One in-memory OpenTelemetry SDK for the whole test session (a process has one tracer provider).

Only tests that ask for the ``spans`` fixture install it; spans are kept in memory and never
leave the process.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

_exporter = None


def exporter() -> object:
    global _exporter
    if _exporter is None:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        _exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    return _exporter


@pytest.fixture
def spans() -> Iterator[object]:
    recorded = exporter()
    recorded.clear()  # type: ignore[attr-defined]
    yield recorded
    recorded.clear()  # type: ignore[attr-defined]
