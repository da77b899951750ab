"""Run the app under uvicorn with a graceful shutdown (what ``swaprank serve`` calls).

On SIGTERM or SIGINT: ``/ready`` turns 503 at once; after ``drain_seconds`` (0 by default: give a
load balancer that long to notice) uvicorn stops accepting connections, lets in-flight requests
finish for up to ``graceful_timeout`` seconds, then runs the app's shutdown. A SIGTERM handled this
way is a clean exit (status 0), as process supervisors (systemd, Kubernetes) expect.

Imports uvicorn at module level: this module is imported only by ``swaprank serve`` itself, which
checks the ``serve`` extra first.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import uvicorn

from swaprank import Reranker
from swaprank.serve.app import create_app
from swaprank.serve.settings import ServeSettings

logger = logging.getLogger("swaprank.serve")


def run(settings: ServeSettings, reranker: Reranker | None = None, *, log_level: str = "info",
        access_log: bool = True) -> int:
    """Serve until a signal stops the server; 0 after a graceful shutdown."""
    app = create_app(settings, reranker)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level, lifespan="on",
                            access_log=access_log, timeout_graceful_shutdown=max(1, round(settings.graceful_timeout)),
                            server_header=False)
    server = _DrainingServer(config, engine=app.state.engine, drain_seconds=settings.drain_seconds)
    server.run()
    return 0


class _DrainingServer(uvicorn.Server):
    def __init__(self, config: Any, *, engine: Any, drain_seconds: float) -> None:
        super().__init__(config)
        self._engine = engine
        self._drain_seconds = drain_seconds
        self._draining = False

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
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and sig in self._captured_signals:
            # Handled: do not re-raise it after the graceful shutdown (that would end the process
            # "killed by SIGTERM" instead of with status 0).
            self._captured_signals.remove(sig)
