"""One embedded Ray per test module, started the safe way (loopback only, no usage stats, no dashboard).

Ray takes seconds to start, so a module's tests share one session; the environment swaprank's own
embedded Ray uses (swaprank.ray_runtime.LOCAL_ENV) is set first, and the node IP is checked, so a
test can never run a Ray that listens on, or reports to, anything beyond this machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def ray_session(num_cpus: int = 2) -> Iterator[Any]:
    ray = pytest.importorskip("ray", reason="Ray tests need the ray extra: pip install 'swaprank[ray]'")
    from swaprank import ray_runtime

    ray_runtime.local_environment()
    if ray.is_initialized():
        ray.shutdown()
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address=ray_runtime.LOOPBACK,
             logging_level="WARNING", log_to_driver=False)
    try:
        assert ray_runtime.node_ip() == ray_runtime.LOOPBACK, "Ray must run on 127.0.0.1 in tests"
        yield ray
    finally:
        ray.shutdown()
