"""A scriptable fake rerank server on 127.0.0.1, shared by the per-vendor fakes.

Each vendor fake (see ``vendors.py``) only describes its wire format: path, request fields,
response shape, error body. This module owns the rest: a real uvicorn server on an ephemeral
port in a background thread, a record of every request (headers, JSON body, timing, how many
were in flight), and a queue of scripted faults (429s, 5xx, slow answers, broken bodies,
dropped connections) consumed one per request in arrival order.

Usage::

    with FakeCohere() as server:
        server.script(Fault.rate_limited(retry_after=1), Fault.server_error(503))
        ...  # point a backend at server.url
        assert len(server.requests) == 3
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import socket
import threading
import time
import traceback
import uuid
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

# ---------------------------------------------------------------------- scoring


def relevance(query: str, document: str) -> float:
    """Deterministic [0, 1] relevance: word overlap, plus a tiny text hash so ties are rare.

    Tests import this to compute the order a correct client must return.
    """
    q = set(query.lower().split())
    d = set(document.lower().split())
    overlap = len(q & d) / len(q) if q else 0.0
    tie_breaker = (zlib.crc32(document.encode()) % 10_000) / 1_000_000  # < 0.01
    return round(min(1.0, 0.99 * overlap + tie_breaker), 6)


def token_count(query: str, documents: list[str]) -> int:
    """What the fakes bill: whitespace tokens of (query + document) per pair."""
    q = len(query.split())
    return sum(q + len(doc.split()) for doc in documents)


# ---------------------------------------------------------------------- faults


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour; build them with the class methods."""

    kind: str
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: Any = None

    @classmethod
    def rate_limited(cls, retry_after: float | None = None, retry_after_ms: float | None = None) -> Fault:
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        if retry_after_ms is not None:
            headers["retry-after-ms"] = f"{retry_after_ms:g}"
        return cls("status", 429, headers)

    @classmethod
    def server_error(cls, status: int = 500) -> Fault:
        return cls("status", status)

    @classmethod
    def status_code(cls, status: int, headers: Mapping[str, str] | None = None) -> Fault:
        return cls("status", status, dict(headers or {}))

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Answer correctly, but only after ``seconds`` (past a client's timeout)."""
        return cls("slow", delay=seconds)

    @classmethod
    def malformed_json(cls) -> Fault:
        return cls("malformed_json")

    @classmethod
    def missing_results(cls) -> Fault:
        """200 without the results list."""
        return cls("missing_results")

    @classmethod
    def missing_score(cls) -> Fault:
        """200 whose first result lacks its score field."""
        return cls("missing_score")

    @classmethod
    def wrong_index(cls) -> Fault:
        """200 whose first result points past the end of the documents sent."""
        return cls("wrong_index")

    @classmethod
    def float_index(cls) -> Fault:
        """200 whose first result has index 1.5 (an SDK that coerces it to 1 would mis-rank silently)."""
        return cls("float_index")

    @classmethod
    def negative_index(cls) -> Fault:
        """200 whose first result has index -1 (Python's ``docs[-1]`` would quietly take the last one)."""
        return cls("negative_index")

    @classmethod
    def string_score(cls) -> Fault:
        """200 whose first result has its score as a string."""
        return cls("string_score")

    @classmethod
    def duplicate_index(cls) -> Fault:
        """200 with the right count, but two results for one document and none for another."""
        return cls("duplicate_index")

    @classmethod
    def wrong_count(cls) -> Fault:
        """200 with one result fewer than documents sent."""
        return cls("wrong_count")

    @classmethod
    def drop(cls) -> Fault:
        """Close the TCP connection without answering."""
        return cls("drop")

    @classmethod
    def json_body(cls, body: Any, status: int = 200) -> Fault:
        """Answer with exactly this JSON body."""
        return cls("json_body", status, body=body)


# ---------------------------------------------------------------------- records


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # lower-case names
    body: Any
    request_id: str
    started: float
    finished: float | None = None
    status: int | None = None
    fault: str | None = None
    cut: int = 0  # documents the server cut to its max_tokens (silently, as the vendor would)

    @property
    def documents(self) -> list[str]:
        """The candidate texts of this request, whatever the vendor calls the field."""
        if not isinstance(self.body, dict):
            return []
        docs = self.body.get("documents", self.body.get("texts", self.body.get("input", [])))
        docs = self.body.get("passages", self.body.get("sources", docs))  # NVIDIA, Bedrock
        if not isinstance(docs, list):
            return []
        # Pinecone and NVIDIA send documents as {"text": ...} objects; Bedrock as inline sources.
        docs = [d["inlineDocumentSource"].get("textDocument", d) if isinstance(d, dict) and "inlineDocumentSource" in d
                else d for d in docs]
        return [d["text"] if isinstance(d, dict) and "text" in d else d for d in docs]


def loopback_socket(port: int = 0) -> socket.socket:
    """A bound 127.0.0.1 socket for a uvicorn server in a thread (``port`` 0: any free port).

    proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on sockets that say so, and without it
    every keep-alive answer waits ~40 ms for a delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class _Drop(Exception):
    pass


async def _sleep_unless_disconnected(request: Request, seconds: float) -> None:
    """Delay an answer, but stop as soon as the client hangs up (a timed-out client does).

    Real servers notice the disconnect too; without this, abandoned slow requests would linger
    into the next test and skew its in-flight counts.
    """

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(disconnected(), seconds)


# ---------------------------------------------------------------------- the server


class FakeServer:
    """Base of the vendor fakes: a real HTTP server speaking one vendor's protocol.

    Knobs (set any time): ``latency`` seconds added to every answer, ``max_docs`` the per-request
    document limit the server enforces, ``api_key`` the only accepted bearer token (``None``
    accepts any, or none).
    """

    vendor = ""
    path = "/rerank"
    docs_field = "documents"
    results_field: str | None = "results"
    index_field = "index"
    score_field = "relevance_score"
    request_id_header = "x-request-id"
    default_model: str | None = None

    def __init__(self, *, api_key: str | None = None, latency: float = 0.0, max_docs: int | None = None) -> None:
        self.api_key = api_key
        self.latency = latency
        self.max_docs = max_docs
        self.max_tokens: int | None = None  # per (query, document) pair, whitespace tokens; see too_long
        self.gets: list[str] = []  # paths of answered GET requests
        self.requests: list[Recorded] = []
        self.errors: list[str] = []  # tracebacks of bugs in the fake itself; tests assert it stays empty
        self.max_inflight = 0
        self._inflight = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        # Vendor fakes keep their own knobs in reset(): start from there too (benchmarks never reset),
        # keeping what the constructor was given.
        self.reset()
        self.latency, self.max_docs = latency, max_docs

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        sock = loopback_socket(self.port)  # 0 (any free port) unless a test set a fixed one
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self._asgi, log_level="critical", access_log=False, lifespan="off", interface="asgi3",
            timeout_graceful_shutdown=1, timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name=f"fake-{self.vendor}", daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"fake {self.vendor} server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ scripting

    def script(self, *faults: Fault) -> None:
        """Queue faults; each request consumes the next one, then the server answers normally."""
        with self._lock:
            self._faults.extend(faults)

    def reset(self) -> None:
        """Forget requests, scripted faults and knobs (for a server shared between tests)."""
        deadline = time.monotonic() + 5
        while self._inflight and time.monotonic() < deadline:  # let the last test's requests finish
            time.sleep(0.01)
        with self._lock:
            self._faults.clear()
            self.requests = []
            self.gets = []
            self.errors = []
            self.max_inflight = 0
        self.latency = 0.0
        self.max_docs = None
        self.max_tokens = None

    def settle(self, quiet: float = 0.1, timeout: float = 3.0) -> None:
        """Wait until no request is in flight and none arrived for ``quiet`` seconds.

        For tests whose client abandons parts mid-call (a failed split call leaves its running
        siblings to finish), so stragglers do not consume the next test's scripted faults.
        """
        deadline = time.monotonic() + timeout
        seen = -1
        while time.monotonic() < deadline:
            count = len(self.requests)
            if count == seen and not self._inflight:
                return
            seen = count
            time.sleep(quiet)

    @property
    def pending_faults(self) -> int:
        return len(self._faults)

    # ------------------------------------------------------------------ vendor hooks

    def parse(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        """(query, documents, top_n) from a request body; raise ValueError on a bad request."""
        query, docs = body.get("query"), body.get(self.docs_field)
        if not isinstance(query, str) or not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
            raise ValueError(f"'query' must be a string and '{self.docs_field}' a list of strings")
        top_n = body.get("top_n")
        return query, docs, top_n if isinstance(top_n, int) else None

    def error_body(self, status: int, message: str) -> Any:
        return {"detail": message}

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        raise NotImplementedError

    def response_headers(self, query: str, docs: list[str]) -> dict[str, str]:
        return {}

    def too_many(self, count: int) -> tuple[int, str]:
        return 400, f"too many documents: {count} > {self.max_docs}"

    def too_long(self, body: dict[str, Any], tokens: int) -> tuple[int, str] | None:
        """A pair over ``max_tokens``: the (status, message) the vendor rejects it with, or None
        when the vendor cuts it silently (the fake then scores only the words that fit)."""
        return None

    def get(self, path: str) -> Any:
        """The JSON answer to ``GET path``, or None for 404 (TEI's ``/info``)."""
        return None

    def sent_key(self, headers: Mapping[str, str]) -> str | None:
        """The API key a request carried, read where this vendor expects it (lower-case header names)."""
        auth = headers.get("authorization", "")
        return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None

    # ------------------------------------------------------------------ request handling

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        try:
            response = await self._handle(request)
        except _Drop:
            # The h11 protocol object owns the socket; abort it so the client sees a reset.
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is not None:
                transport.abort()
                return
            response = Response(b'{"partial": ', status_code=200, headers={"content-length": "1000"})
        except Exception:  # a bug in the fake: answer 418 (never retried) and remember it
            self.errors.append(traceback.format_exc())
            response = Response(b"fake server bug", status_code=418)
        await response(scope, receive, send)

    def _next_fault(self) -> Fault | None:
        with self._lock:
            return self._faults.popleft() if self._faults else None

    async def _handle(self, request: Request) -> Response:
        if request.method == "GET" and self.get(request.url.path) is not None:
            # Metadata routes (TEI's /info) are answered apart: not recorded, no scripted fault used.
            self.gets.append(request.url.path)
            return JSONResponse(self.get(request.url.path))
        raw = await request.body()
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        record = Recorded(
            method=request.method, path=request.url.path,
            headers={k.lower(): v for k, v in request.headers.items()}, body=body,
            request_id=uuid.uuid4().hex, started=time.monotonic(),
        )
        with self._lock:
            self.requests.append(record)
            self._inflight += 1
            self.max_inflight = max(self.max_inflight, self._inflight)
        try:
            response = await self._respond(request, record)
            record.status = response.status_code
            return response
        finally:
            record.finished = time.monotonic()
            with self._lock:
                self._inflight -= 1

    def _error(self, record: Recorded, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        all_headers = {self.request_id_header: record.request_id, **(headers or {})}
        return JSONResponse(self.error_body(status, message), status_code=status, headers=all_headers)

    async def _respond(self, request: Request, record: Recorded) -> Response:
        fault = self._next_fault()
        record.fault = fault.kind if fault else None
        delay = self.latency + (fault.delay if fault else 0.0)
        if delay:
            await _sleep_unless_disconnected(request, delay)
        if request.method != "POST" or request.url.path != self.path:
            return self._error(record, 404, f"no route {request.method} {request.url.path}")
        if self.api_key is not None and self.sent_key(record.headers) != self.api_key:
            return self._error(record, 401, "invalid api token")
        if fault is not None:
            if fault.kind == "drop":
                raise _Drop
            if fault.kind == "status":
                message = "rate limit exceeded" if fault.status == 429 else f"upstream failure {fault.status}"
                return self._error(record, fault.status, message, fault.headers)
            if fault.kind == "malformed_json":
                return Response(b'{"results": [{"index": 0, "relev', status_code=200,
                                media_type="application/json",
                                headers={self.request_id_header: record.request_id})
            if fault.kind == "json_body":
                return JSONResponse(fault.body, status_code=fault.status,
                                    headers={self.request_id_header: record.request_id})
        if not isinstance(record.body, dict):
            return self._error(record, 400, "request body must be a JSON object")
        try:
            query, docs, top_n = self.parse(record.body)
        except ValueError as exc:
            return self._error(record, 422 if self.vendor == "tei" else 400, str(exc))
        if self.max_docs is not None and len(docs) > self.max_docs:
            status, message = self.too_many(len(docs))
            return self._error(record, status, message)
        if self.max_tokens is not None:
            room = max(0, self.max_tokens - len(query.split()))
            for doc in docs:
                tokens = len(query.split()) + len(doc.split())
                rejection = self.too_long(record.body, tokens) if tokens > self.max_tokens else None
                if rejection is not None:
                    return self._error(record, *rejection)
            record.cut = sum(len(d.split()) > room for d in docs)
            docs = [" ".join(d.split()[:room]) if len(d.split()) > room else d for d in docs]
        ranked = sorted(
            ({self.index_field: i, self.score_field: relevance(query, d)} for i, d in enumerate(docs)),
            key=lambda r: -r[self.score_field],
        )
        if top_n is not None:
            ranked = ranked[:top_n]
        payload = self.payload(record.body, query, docs, ranked)
        if fault is not None:
            payload = self._corrupt(payload, fault.kind, len(docs))
        headers = {self.request_id_header: record.request_id, **self.response_headers(query, docs)}
        return JSONResponse(payload, headers=headers)

    def _results(self, payload: Any) -> list[dict[str, Any]]:
        return payload if self.results_field is None else payload[self.results_field]

    def _corrupt(self, payload: Any, kind: str, count: int) -> Any:
        payload = copy.deepcopy(payload)
        results = self._results(payload)
        if kind == "missing_results":
            return {"unexpected": True} if self.results_field is None else {
                k: v for k, v in payload.items() if k != self.results_field
            }
        if kind == "missing_score":
            del results[0][self.score_field]
        elif kind == "wrong_index":
            results[0][self.index_field] = count
        elif kind == "float_index":
            results[0][self.index_field] = 1.5
        elif kind == "negative_index":
            results[0][self.index_field] = -1
        elif kind == "string_score":
            results[0][self.score_field] = str(results[0][self.score_field])
        elif kind == "duplicate_index" and len(results) > 1:
            results[1][self.index_field] = results[0][self.index_field]
        elif kind == "wrong_count":
            results.pop()
        return payload
