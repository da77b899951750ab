"""What the rerank servers users run themselves (vLLM, llama.cpp, Infinity, TEI) share.

Their address is required and checked before any HTTP client exists, a key is sent only when given
(``--api-key``), and the pair limit is asked of the server once (``/props``, ``/v1/models``,
``/info``) unless ``max_length`` says it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import urlparse

from pydantic import SecretStr

from swaprank.backends.hosted.json_api import JsonRerankBackend
from swaprank.specs import BackendSpec
from swaprank.types import ConfigError
from swaprank.windows import Limit

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


class SelfHostedBackend(JsonRerankBackend):
    """Base (or first mixin, before a Jina-format backend) of a server the user runs.

    Subclasses give ``example_url`` for the error naming a missing address, read the checked address
    from ``server_url``, and say in ``server_limit`` what the server reports about its window.
    """

    example_url: ClassVar[str]  # how the error for a missing base_url writes one
    default_urls: ClassVar[tuple[str, ...]] = ()  # no vendor host: an env key goes only where approved

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        self.server_url = self.check_address(spec)  # before any HTTP client
        super().__init__(spec, api_key=api_key)

    def check_address(self, spec: BackendSpec) -> str:
        """The server's address, checked; ``base_url`` unless the backend takes it elsewhere (TEI)."""
        return self_hosted_url(self.vendor, spec, self.example_url)

    def endpoint_url(self) -> str | None:
        return self.server_url  # checked before the key is: see HostedBackend._check_key_destination

    def key_required(self) -> bool:
        return False  # a key is sent only when given (the server's --api-key)

    def server_facts(self, url: str) -> ServerFacts:
        """What the server says at ``url``, asked once with this backend's client and timeout."""
        return ServerFacts(self.vendor, url, lambda route: self._http.get(route, self.option("timeout"))[0],
                           self._scrub)

    def length_limit(self) -> Limit | None:
        """``max_length`` when given, else the server's own word (asked on first use)."""
        explicit = self.option("max_length")
        return Limit(explicit) if explicit is not None else self.server_limit()

    def server_limit(self) -> Limit | None:
        """The pair limit the server reports; None when it reports none (documents then go whole)."""
        return None
