"""What the self-hosted servers (vLLM, llama.cpp, Infinity) share: a required, checked ``base_url``,
and asking the server about itself once (its pair limit), the way TEI's backend asks ``/info``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from swaprank.specs import BackendSpec
from swaprank.types import ConfigError

logger = logging.getLogger("swaprank")
RETRY_SECONDS = 60.0


def self_hosted_url(vendor: str, spec: BackendSpec, example: str) -> str:
    """The required ``base_url`` of a self-hosted server, checked: there is no vendor default to fall
    back on, and an address without ``http(s)://host`` would fail only at the first call."""
    base_url = spec.option_dict.get("base_url")
    parsed = urlparse(base_url) if isinstance(base_url, str) else None
    if not isinstance(base_url, str) or parsed is None or parsed.scheme not in ("http", "https") or not parsed.netloc:
        # The value itself is not echoed: a malformed address may still carry credentials.
        got = "none" if not base_url else "an address without http(s)://host"
        raise ConfigError(f"{vendor} is self-hosted: give the server's address as base_url, like "
                          f"{vendor}:<model>?base_url={example}; got {got}")
    return base_url


class ServerFacts:
    """``GET <url>`` once per backend, for what the server says about itself (``/props``, ``/v1/models``).

    A failure (server down, endpoint disabled, a proxy without it) is logged once and asked again a
    minute later; until then callers get None and fall back (documents go whole).
    """

    def __init__(self, vendor: str, url: str, get: Callable[[str], Any], scrub: Callable[[str], str]) -> None:
        self._vendor, self._url, self._get, self._scrub = vendor, url, get, scrub
        self._facts: Any = None
        self._known = False
        self._lock = threading.Lock()
        self._retry_at = 0.0

    def known(self) -> Any:
        """What the server said, if it has been asked already (never asks: for reprs and labels)."""
        return self._facts if self._known else None

    def get(self) -> Any:
        with self._lock:
            if not self._known and time.monotonic() >= self._retry_at:
                try:
                    self._facts = self._get(self._url)
                    self._known = True
                except Exception as exc:
                    self._retry_at = time.monotonic() + RETRY_SECONDS
                    route = urlparse(self._url).path or "/"
                    logger.warning("swaprank: %s %s unavailable (%s: %s); long documents are sent whole, and one "
                                   "over the server's window fails the request (set max_length to window them)",
                                   self._vendor, route, type(exc).__name__, self._scrub(str(exc))[:200])
            return self._facts if self._known else None
