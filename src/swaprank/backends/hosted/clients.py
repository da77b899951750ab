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


class _OwnedHTTP:
    """httpx clients of one backend: one sync client (built on first use, and again after ``close()``,
    so a Reranker that still holds a closed backend keeps working) and one async client per loop.

    ``close()`` closes the sync client and forgets the async ones (an async client can only be
    closed on its own loop: ``aclose()`` closes the calling loop's first).
    """

    def __init__(self, make_sync: Callable[[], Any], make_async: Callable[[], Any]) -> None:
        self._make_sync = make_sync
        self._sync: Any = None
        self._lock = threading.Lock()
        self._async: PerLoop[Any] = PerLoop(make_async)

    def sync_one(self) -> Any:
        with self._lock:
            if self._sync is None:
                self._sync = self._make_sync()
            return self._sync

    def async_one(self) -> Any:
        """This event loop's async client (built on first use in the loop)."""
        return self._async.get()

    @staticmethod
    def _http_of(client: Any) -> Any:
        return client[1] if isinstance(client, tuple) else client

    def close(self) -> None:
        with self._lock:
            sync, self._sync = self._sync, None
        if sync is not None:
            self._http_of(sync).close()
        self._async.drain()

    async def aclose(self) -> None:
        current = self._async.current()
        if current is not None:
            await self._http_of(current).aclose()
        self.close()


class SdkClients(_OwnedHTTP):
    """A vendor SDK's sync client, and one async client per event loop, each on an httpx client of ours.

    Ours so that every client shares one TLS context (``shared_ssl_context``) and can be closed;
    ``build(client_class, http_client)`` passes it to the SDK under whatever name the SDK takes it.
    """

    def __init__(self, build: Callable[[Any, Any], Any], sync_class: Any, async_class: Any, **http: Any) -> None:
        def made(client_class: Any, client: Any) -> tuple[Any, Any]:
            return build(client_class, client), client

        super().__init__(lambda: made(sync_class, sync_client(**http)),
                         lambda: made(async_class, async_client(**http)))
        self.sync_one()  # built now: a wrong base_url or SDK argument fails at construction

    @property
    def sync(self) -> Any:
        return self.sync_one()[0]

    def for_loop(self) -> Any:
        """This event loop's async SDK client (built on first use in the loop)."""
        return self.async_one()[0]


class JsonHTTP(_OwnedHTTP):
    """POST JSON with httpx, for vendors without an SDK (Jina, TEI, Jina-compatible servers).

    One sync client per backend (thread-safe, pooled) and one async client per event loop.
    Non-2xx answers raise ``HTTPStatusFailure``; ``HostedBackend`` maps them.
    """

    def __init__(self, headers: Callable[[], dict[str, str]]) -> None:
        super().__init__(sync_client, async_client)
        self._headers = headers

    def post(self, url: str, body: Any, timeout: float) -> tuple[Any, httpx.Headers]:
        response = self.sync_one().post(url, json=body, headers=self._headers(), timeout=timeout)
        return self._read(response)

    def get(self, url: str, timeout: float) -> tuple[Any, httpx.Headers]:
        return self._read(self.sync_one().get(url, headers=self._headers(), timeout=timeout))

    async def aget(self, url: str, timeout: float) -> tuple[Any, httpx.Headers]:
        return self._read(await self.async_one().get(url, headers=self._headers(), timeout=timeout))

    async def apost(self, url: str, body: Any, timeout: float) -> tuple[Any, httpx.Headers]:
        response = await self.async_one().post(url, json=body, headers=self._headers(), timeout=timeout)
        return self._read(response)

    @staticmethod
    def _read(response: httpx.Response) -> tuple[Any, httpx.Headers]:
        if not 200 <= response.status_code < 300:
            raise HTTPStatusFailure(response.status_code, response.headers, response.text)
        try:
            return response.json(), response.headers
        except ValueError:
            raise HTTPStatusFailure(response.status_code, response.headers, response.text[:MESSAGE_LIMIT]) from None
