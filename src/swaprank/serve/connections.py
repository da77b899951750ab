"""Connection hygiene uvicorn does not give: a deadline for request headers, a cap on open connections.

uvicorn closes a keep-alive connection that stays idle, but a client that opens a connection and
trickles its headers byte by byte (or sends nothing at all) is kept forever; a thousand of them
exhaust the process's file descriptors and ``/health`` stops answering. The protocol below (uvicorn's
own HTTP protocol, extended) gives every request ``header_timeout`` seconds from the moment the
connection is ready for it (opened, or the previous response sent) until its headers are complete,
then answers 408 and closes; and answers 503 and closes at once any connection past
``max_connections``. Both answers carry the service's JSON error shape. Body trickling is bounded in
the app (``swaprank.serve.body``), where the body is read.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from swaprank.serve.errors import ServeError


def _raw_response(error: ServeError) -> bytes:
    body = json.dumps(error.body()).encode()
    head = [f"HTTP/1.1 {error.status} {'Request Timeout' if error.status == 408 else 'Service Unavailable'}",
            "content-type: application/json", f"content-length: {len(body)}", "connection: close"]
    head += [f"{name}: {value}" for name, value in error.headers.items() if name != "connection"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def guarded_protocol(header_timeout: float, max_connections: int) -> type:
    """uvicorn's HTTP protocol class (httptools when installed, else h11) with both guards."""
    try:
        import httptools  # noqa: F401
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as Base
    except ImportError:  # pragma: no cover - uvicorn falls back the same way
        from uvicorn.protocols.http.h11_impl import H11Protocol as Base  # type: ignore[assignment]

    too_slow = _raw_response(ServeError(408, "header_timeout", f"the request headers did not arrive within "
                                        f"{header_timeout:g} s"))
    too_many = _raw_response(ServeError(503, "overloaded", "the service holds as many connections as it "
                                        "accepts; retry later", {"retry-after": "1"}))

    class GuardedProtocol(Base):
        _header_timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            if len(self.connections) > max_connections:
                transport.write(too_many)
                transport.close()
                return
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._disarm()
            if header_timeout and not self.transport.is_closing():
                waiting_since = self.cycle
                self._header_timer = self.loop.call_later(header_timeout, self._expired, waiting_since)

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expired(self, waiting_since: Any) -> None:
            self._header_timer = None
            # A new request cycle starts when a request's headers are complete: none did in time.
            if self.cycle is waiting_since and not self.transport.is_closing():
                self.transport.write(too_slow)
                self.transport.close()

    return GuardedProtocol
