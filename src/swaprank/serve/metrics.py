"""Prometheus metrics of one app, in a registry of its own.

A per-app ``CollectorRegistry`` (not prometheus-client's global one) so several apps in one process
(tests, a Ray Serve replica next to another deployment) never collide on metric names or mix counts.
"""

from __future__ import annotations

from typing import Any

from swaprank.backends.optional import require

# Seconds: from a cache hit on a tiny request to a 1000-document request on CPU.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_PAIR_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)
_REQUEST_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServeMetrics:
    """The service's counters, gauges and histograms (all prefixed ``swaprank_serve_``).

    - ``requests_total{route,status}`` and ``request_seconds{route}``: every answered request.
    - ``inflight_requests``: requests being handled now.
    - ``errors_total{type}``: every error answer by its ``type`` (see :mod:`swaprank.serve.errors`).
    - ``model_calls_total{mode}``: calls into the Reranker (``batched`` or ``direct``); with batching
      on, fewer calls than requests is the coalescing at work.
    - ``batch_pairs`` and ``batch_requests``: the size of each call in (query, document) pairs and
      in requests.
    - ``dropped_total{reason}``: requests whose client hung up (``client_disconnected``), and of those
      the ones taken out of a batch before it ran (``removed_from_batch``); batches stopped because every
      request of them had gone (``batch_abandoned``).
    - ``ready``: 1 once the model is loaded and warmed, 0 while loading or shutting down.
    """

    def __init__(self) -> None:
        prom = require("prometheus_client", "serve")
        self._prom = prom
        self.registry = prom.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = prom.Counter("swaprank_serve_requests", "Answered HTTP requests", ("route", "status"),
                                     registry=r)
        self.latency = prom.Histogram("swaprank_serve_request_seconds", "Request latency", ("route",),
                                      buckets=_LATENCY_BUCKETS, registry=r)
        self.inflight = prom.Gauge("swaprank_serve_inflight_requests", "Requests being handled", registry=r)
        self.errors = prom.Counter("swaprank_serve_errors", "Error answers by type", ("type",), registry=r)
        self.model_calls = prom.Counter("swaprank_serve_model_calls", "Calls into the Reranker", ("mode",),
                                        registry=r)
        self.batch_pairs = prom.Histogram("swaprank_serve_batch_pairs", "Pairs per Reranker call",
                                          buckets=_PAIR_BUCKETS, registry=r)
        self.batch_requests = prom.Histogram("swaprank_serve_batch_requests", "Requests per Reranker call",
                                             buckets=_REQUEST_BUCKETS, registry=r)
        self.dropped = prom.Counter("swaprank_serve_dropped", "Requests dropped before scoring", ("reason",),
                                    registry=r)
        self.ready = prom.Gauge("swaprank_serve_ready", "1 when the model is loaded and warmed", registry=r)

    def model_call(self, mode: str, requests: int, pairs: int) -> None:
        self.model_calls.labels(mode=mode).inc()
        self.batch_requests.observe(requests)
        self.batch_pairs.observe(pairs)

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        body: Any = self._prom.generate_latest(self.registry)
        return bytes(body), str(self._prom.CONTENT_TYPE_LATEST)
