"""``swaprank serve --replicas N`` / ``--address``: the same FastAPI app, N replicas on Ray Serve.

Each replica builds the app with :func:`swaprank.serve.app.create_app` from the (secret-free,
frozen) :class:`ServeSettings`, so a replica answers exactly what ``swaprank serve`` answers: same
routes, wire formats, limits, errors, metrics and bearer token (read from the replica's environment,
which an embedded Ray inherits from this process). Ray Serve's proxy listens on ``host:port`` and
spreads requests over the replicas; each replica's app runs its own dynamic batcher.

:func:`run` blocks like ``swaprank serve`` and stops on Ctrl-C or SIGTERM: replicas get
``graceful_timeout`` seconds to finish in-flight requests, then the application is removed and an
embedded Ray is shut down. On a cluster (``--address``) only this application is deleted; the
cluster's Serve instance and its other applications are left running.
"""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading
import time
from typing import Any

from swaprank import ray_runtime
from swaprank.serve.settings import ServeSettings
from swaprank.types import ConfigError

logger = logging.getLogger("swaprank.serve")

APP_NAME = "swaprank"
DEPLOYMENT_NAME = "SwaprankReranker"
MAX_ONGOING_REQUESTS = 64


class ServeReplica:
    """One replica: holds the settings; Ray Serve asks it for the ASGI app once it is constructed."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings

    def __serve_build_asgi_app__(self) -> Any:
        from swaprank.serve.app import create_app

        return create_app(self.settings)


def build(settings: ServeSettings, replicas: int) -> Any:
    """The bound Ray Serve application (``serve.run`` it, or hand it to ``serve build`` tooling)."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ConfigError(f"replicas must be a positive int, got {replicas!r}")
    ray_runtime.import_ray()
    from ray import serve

    deployment: Any = serve.deployment(
        serve.ingress()(ServeReplica),
        name=DEPLOYMENT_NAME,
        num_replicas=replicas,
        graceful_shutdown_timeout_s=settings.graceful_timeout,
        # Ray Serve's default (5 requests in a replica at once) would starve the replica's dynamic batcher,
        # which coalesces concurrent requests; the app itself bounds documents and bytes per request.
        max_ongoing_requests=MAX_ONGOING_REQUESTS,
    )
    return deployment.bind(settings)


def run(settings: ServeSettings, replicas: int = 1, address: str | None = None) -> int:
    """Serve ``settings`` on Ray Serve with ``replicas`` replicas until Ctrl-C or SIGTERM; return 0."""
    if address is None:
        ray_runtime.local_environment()  # before ray is first imported (build imports it)
    application = build(settings, replicas)  # argument errors before Ray starts
    port = settings.port or _free_port(settings.host)
    started = ray_runtime.connect(address, quiet=True)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    from ray import serve

    try:
        serve.start(http_options={"host": settings.host, "port": port})
        serve.run(application, name=APP_NAME, route_prefix="/")
        running = running_replicas()
        print(f"swaprank serve: {running} replica(s) of {', '.join(settings.model_names)} on Ray Serve at "
              f"http://{settings.host}:{port} (Ctrl-C or SIGTERM to stop)", file=sys.stderr, flush=True)
        while not stop.wait(0.5):
            pass
        print("swaprank serve: stopping (in-flight requests finish first)", file=sys.stderr, flush=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _stop(serve, embedded=address is None)
        ray_runtime.disconnect(started)
    return 0


def running_replicas() -> int:
    """Replicas of the swaprank deployment Ray Serve reports RUNNING."""
    from ray import serve
    from ray.serve.schema import ReplicaState

    status = serve.status().applications.get(APP_NAME)
    if status is None:
        return 0
    deployment = status.deployments.get(DEPLOYMENT_NAME)
    return int(deployment.replica_states.get(ReplicaState.RUNNING, 0)) if deployment is not None else 0


def _stop(serve: Any, *, embedded: bool) -> None:
    started = time.perf_counter()
    try:
        if embedded:
            serve.shutdown()  # this process's own Serve instance: all of it
        else:
            serve.delete(APP_NAME)  # a shared cluster: only what this command deployed
    except Exception as exc:  # shutting down must not hide why we stopped
        logger.warning("swaprank serve: Ray Serve shutdown: %s: %s", type(exc).__name__, exc)
    logger.info("swaprank serve: Ray Serve stopped in %.1f s", time.perf_counter() - started)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
