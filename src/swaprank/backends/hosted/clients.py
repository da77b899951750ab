"""httpx clients (one shared TLS context): under vendor SDKs, and plain JSON for vendors without one."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from typing import Any

import httpx

from swaprank.backends.hosted.errors import MESSAGE_LIMIT, HTTPStatusFailure
from swaprank.backends.hosted.loops import PerLoop

USER_AGENT = "swaprank"


_ssl_context: ssl.SSLContext | None = None
_ssl_lock = threading.Lock()


def shared_ssl_context() -> ssl.SSLContext:
    """One verified TLS context per process.

    Building one loads the CA bundle (~40-90 ms of CPU); without sharing, every new event loop
    (one per ``asyncio.run``) would pay that again for its async client.
    """
    global _ssl_context
    with _ssl_lock:
        if _ssl_context is None:
            _ssl_context = httpx.create_ssl_context()
        return _ssl_context


def sync_client(**kwargs: Any) -> httpx.Client:
    return httpx.Client(verify=shared_ssl_context(), headers={"User-Agent": USER_AGENT}, **kwargs)


def async_client(**kwargs: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=shared_ssl_context(), headers={"User-Agent": USER_AGENT}, **kwargs)


class SdkClients:
    """A vendor SDK's sync client, and one async client per event loop, each on an httpx client of ours.

    Ours so that every client shares one TLS context (``shared_ssl_context``); ``build(client_class,
    http_client)`` passes it to the SDK under whatever name the SDK takes it.
    """

    def __init__(self, build: Callable[[Any, Any], Any], sync_class: Any, async_class: Any, **http: Any) -> None:
        self.sync = build(sync_class, sync_client(**http))
        self._async: PerLoop[Any] = PerLoop(lambda: build(async_class, async_client(**http)))

    def for_loop(self) -> Any:
        """This event loop's async client (built on first use in the loop)."""
        return self._async.get()


class JsonHTTP:
    """POST JSON with httpx, for vendors without an SDK (Jina, TEI, Jina-compatible servers).

    One sync client per backend (thread-safe, pooled) and one async client per event loop.
    Non-2xx answers raise ``HTTPStatusFailure``; ``HostedBackend`` maps them.
    """

    def __init__(self, headers: Callable[[], dict[str, str]]) -> None:
        self._headers = headers
        self._client = sync_client()
        self._aclients: PerLoop[httpx.AsyncClient] = PerLoop(async_client)

    def post(self, url: str, body: Any, timeout: float) -> tuple[Any, httpx.Headers]:
        response = self._client.post(url, json=body, headers=self._headers(), timeout=timeout)
        return self._read(response)

    def get(self, url: str, timeout: float) -> tuple[Any, httpx.Headers]:
        return self._read(self._client.get(url, headers=self._headers(), timeout=timeout))

    async def aget(self, url: str, timeout: float) -> tuple[Any, httpx.Headers]:
        return self._read(await self._aclients.get().get(url, headers=self._headers(), timeout=timeout))

    async def apost(self, url: str, body: Any, timeout: float) -> tuple[Any, httpx.Headers]:
        response = await self._aclients.get().post(url, json=body, headers=self._headers(), timeout=timeout)
        return self._read(response)

    @staticmethod
    def _read(response: httpx.Response) -> tuple[Any, httpx.Headers]:
        if not 200 <= response.status_code < 300:
            raise HTTPStatusFailure(response.status_code, response.headers, response.text)
        try:
            return response.json(), response.headers
        except ValueError:
            raise HTTPStatusFailure(response.status_code, response.headers, response.text[:MESSAGE_LIMIT]) from None
