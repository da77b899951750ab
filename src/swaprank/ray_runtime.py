"""Start an embedded local Ray, or join a cluster, the one way swaprank does it.

``swaprank batch`` and ``swaprank serve --replicas`` both need Ray. Started bare, Ray reports usage
statistics, starts a dashboard, and picks the machine's outward-facing address as its node IP (it
asks the routing table which interface would reach the internet) even when told
``_node_ip_address="127.0.0.1"``. An embedded Ray that exists only to use this machine's cores has
no reason for any of that, so :func:`connect` starts it with usage stats off, no dashboard and
every Ray process on 127.0.0.1. Given an address, it joins that cluster as it is configured: a
cluster's operator decides its networking, not swaprank.

The environment is set before ``ray`` is first imported (Ray reads some of it at import time) and
is inherited by the Ray processes the driver starts. ``RAY_USAGE_STATS_ENABLED=1`` in the caller's
environment is respected: opting in stays the user's choice.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from swaprank.backends.optional import missing
from swaprank.types import ConfigError

logger = logging.getLogger("swaprank")

LOOPBACK = "127.0.0.1"

# What an embedded Ray gets unless the caller's environment already says otherwise.
LOCAL_ENV: dict[str, str] = {
    # No usage report (it also stops the cloud-provider probe the report makes).
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray's own switch for "this is a single-node Ray": its node IP is then the loopback address
    # instead of the interface that routes outward. Read once, when ray is imported.
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
}


def import_ray() -> Any:
    """``import ray`` with the pip extra named when it is missing."""
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise missing("ray", "Ray (swaprank batch, swaprank serve --replicas)", exc) from exc
    return ray


def local_environment() -> None:
    """Put :data:`LOCAL_ENV` into this process's environment (values the caller set win)."""
    if "ray" in sys.modules and "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER" not in os.environ:
        logger.warning("swaprank: ray was imported before swaprank configured it; set "
                       "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray to keep it on 127.0.0.1")
    for name, value in LOCAL_ENV.items():
        os.environ.setdefault(name, value)


def connect(address: str | None = None, *, num_cpus: int | None = None, quiet: bool = True) -> bool:
    """Join the cluster at ``address``, or start an embedded local Ray (loopback, no stats, no dashboard).

    Returns True when this call started (or joined) Ray and so should :func:`disconnect` it, False
    when Ray was already initialised in this process (tests share one session; an application may
    have its own), which is then used as it is.
    """
    if address is None:
        local_environment()
    ray = import_ray()
    if ray.is_initialized():
        return False
    logging_level = logging.WARNING if quiet else logging.INFO
    if address is None:
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address=LOOPBACK,
                 logging_level=logging_level, log_to_driver=not quiet)
    else:
        if not address.strip():
            raise ConfigError("--address is empty; give ray://HOST:10001, HOST:6379 or 'auto'")
        ray.init(address=address, logging_level=logging_level, log_to_driver=not quiet)
    return True


def disconnect(started: bool) -> None:
    """Shut down the Ray connection this process opened (and with it an embedded Ray)."""
    if started:
        import_ray().shutdown()


def node_ip() -> str:
    """The IP address of the node this driver runs on, as Ray sees it (127.0.0.1 when embedded)."""
    ray = import_ray()
    return str(ray.util.get_node_ip_address())
