"""Run the app under uvicorn with a graceful shutdown (what ``swaprank serve`` calls).

On SIGTERM or SIGINT: ``/ready`` turns 503 at once; after ``drain_seconds`` (0 by default: give a
load balancer that long to notice) uvicorn stops accepting connections and lets in-flight requests
finish for up to ``graceful_timeout`` seconds. Requests still running then are answered by the
service itself, 503 ``shutting_down`` with ``Retry-After`` in the JSON error shape (never uvicorn's
plain-text 500), and their model work stops at its next chunk, so the process exits within about a
chunk of model time after the timeout. A SIGTERM handled this way is a clean exit (status 0), as
process supervisors (systemd, Kubernetes) expect.

Imports uvicorn at module level: this module is imported only by ``swaprank serve`` itself, which
checks the ``serve`` extra first.
"""

from __future__ import annotations

import logging
import math
import os
import resource
import signal
import threading
from types import FrameType
from typing import Any

import uvicorn

from swaprank import Reranker
from swaprank.serve.app import create_app
from swaprank.serve.connections import guarded_protocol
from swaprank.serve.settings import ServeSettings

logger = logging.getLogger("swaprank.serve")


def run(settings: ServeSettings, reranker: Reranker | None = None, *, log_level: str = "info",
        access_log: bool = True) -> int:
    """Serve until a signal stops the server; 0 after a graceful shutdown.

    A local model gets one scoring thread (``SWAPRANK_THREADS=1`` unless set): a second forward pass
    on the same cores only contends with the first, and one FIFO thread makes requests take turns
    chunk by chunk, so a small request waits for at most one chunk of a large one.
    """
    os.environ.setdefault("SWAPRANK_THREADS", "1")
    app = create_app(settings, reranker)
    connections = _raise_file_limit(settings.max_connections)
    config = uvicorn_config(app, settings, log_level=log_level, access_log=access_log, max_connections=connections)
    server = _DrainingServer(config, engine=app.state.engine, drain_seconds=settings.drain_seconds,
                             graceful_timeout=settings.graceful_timeout)
    server.run()
    return 0


def uvicorn_config(app: Any, settings: ServeSettings, *, max_connections: int | None = None,
                   **overrides: Any) -> uvicorn.Config:
    """uvicorn's configuration for ``app``: the guarded protocol (header deadline, connection cap), and a
    graceful timeout one second past the service's own, so the service answers what is still running."""
    options: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "lifespan": "on", "server_header": False,
        "http": guarded_protocol(settings.header_timeout, max_connections or settings.max_connections),
        "timeout_graceful_shutdown": math.ceil(settings.graceful_timeout) + 1,
    }
    return uvicorn.Config(app, **{**options, **overrides})


_SPARE_FILES = 256  # the model's files, the runtime's, logs: what is not a client socket


def _raise_file_limit(connections: int) -> int:
    """Room for ``connections`` sockets plus the process's own files, within the hard limit; the number
    of connections that fits (a cap past the limit would fail in ``accept`` instead of answering 503)."""
    wanted = connections + _SPARE_FILES
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < wanted:
            soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    except (ValueError, OSError) as exc:  # pragma: no cover - a platform that refuses
        logger.warning("swaprank serve: could not raise the open-file limit: %s", exc)
        return connections
    fits = connections if soft == resource.RLIM_INFINITY else max(1, min(connections, soft - _SPARE_FILES))
    if fits < connections:
        logger.warning("swaprank serve: the open-file limit (%d) allows %d connections, not %d", soft, fits,
                       connections)
    return fits


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: Any, *, engine: Any, drain_seconds: float, graceful_timeout: float) -> None:
        super().__init__(config)
        self._engine = engine
        self._drain_seconds = drain_seconds
        self._graceful_timeout = graceful_timeout
        self._draining = False
        self._stopping = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._engine.drain()
        if self._drain_seconds > 0 and not self._draining:
            self._draining = True
            logger.info("swaprank serve: draining for %.3gs before shutdown", self._drain_seconds)
            timer = threading.Timer(self._drain_seconds, self._stop, args=(sig, frame))
            timer.daemon = True
            timer.start()
            return
        self._stop(sig, frame)

    def _stop(self, sig: int, frame: FrameType | None) -> None:
        if not self._stopping:
            self._stopping = True
            self._engine.abort_after(self._graceful_timeout)
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and sig in self._captured_signals:
            # Handled: do not re-raise it after the graceful shutdown (that would end the process
            # "killed by SIGTERM" instead of with status 0).
            self._captured_signals.remove(sig)
