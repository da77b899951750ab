"""The optional bearer token: read once from the environment, compared in constant time.

The token comes from an environment variable (``SWAPRANK_SERVE_API_KEY`` unless configured), never
from argv (visible to every user in ``ps``) or the settings (pickled into Ray deployments). It is
held as bytes in this object only; its repr says whether a token is set, nothing more.
"""

from __future__ import annotations

import hmac
import os

# Paths a load balancer or orchestrator probes without credentials (Infinity answers /health openly too).
OPEN_PATHS = frozenset({"/health", "/ready", "/infinity/health"})


class BearerAuth:
    def __init__(self, env_name: str) -> None:
        value = os.environ.get(env_name, "").strip()
        self._token = value.encode("utf-8") if value else None

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def allows(self, path: str, authorization: str | None) -> bool:
        if self._token is None or path in OPEN_PATHS:
            return True
        if not authorization:
            return False
        scheme, _, credentials = authorization.partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(credentials.strip().encode("utf-8"), self._token)

    def __repr__(self) -> str:
        return f"BearerAuth(enabled={self.enabled})"
