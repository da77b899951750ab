"""The ASGI app: ``create_app(settings, reranker=None)`` -> a FastAPI application.

Routes: ``POST /v2/rerank`` (Cohere v2), ``POST /v1/rerank`` and ``POST /rerank`` (Jina / vLLM),
``POST /infinity/rerank``, ``GET /infinity/models`` and ``GET /infinity/health`` (Infinity's API under a
prefix: Infinity clients use ``http://host:port/infinity`` as their base URL), ``GET /v1/models`` (the
served names, as vLLM lists them), ``GET /health`` (liveness: the process answers), ``GET /ready``
(503 until the model is loaded and warmed, and from the start of shutdown), ``GET /metrics``
(Prometheus). With a bearer token configured every route but the health probes and ``/ready`` needs
``Authorization: Bearer <token>`` (401 otherwise). Wire formats, ``raw_scores`` and ``usage``:
:mod:`swaprank.serve.protocol`. Clients only ever see the served names
(:attr:`~swaprank.serve.settings.ServeSettings.model_names`), never a local model path.

Every error has the body ``{"message", "type", "code", "detail"}`` (``detail`` = ``message``, the key
Jina's clients read; see :mod:`swaprank.serve.errors`):
400 ``invalid_json`` (not JSON, or not an object), 422 ``invalid_request`` (a field missing, empty or
of the wrong type; the message names it, e.g. ``documents[2]: Input should be a valid string``),
413 ``body_too_large`` / ``too_many_documents``, 404 ``model_not_found`` (a ``model`` this service
does not serve, unless ``accept_any_model``), 401 ``unauthorized``, 503 ``not_ready``, and
502/503/504 named after swaprank's error class when the backend fails. No traceback, backend URL or
key ever reaches a response.

FastAPI is imported at module level (it resolves the handlers' annotations from this module's
globals); this module itself is imported only when an app is built.

Model loading and the batcher start in the app's lifespan, or lazily on the first request when the
host runs no lifespan, so the same app runs under uvicorn (``swaprank serve``) and as a Ray Serve
ingress (``swaprank.serve.ray_deployment``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from pydantic import ValidationError

from swaprank import Reranker
from swaprank._version import __version__
from swaprank.backends.optional import require
from swaprank.serve.auth import BearerAuth
from swaprank.serve.body import ClientGone, decode, read_body
from swaprank.serve.engine import ServeEngine
from swaprank.serve.errors import ServeError, from_exception
from swaprank.serve.metrics import ServeMetrics
from swaprank.serve.protocol import (
    CohereRerankRequest,
    InfinityRerankRequest,
    JinaRerankRequest,
    RerankRequest,
    cohere_response,
    describe,
    infinity_response,
    jina_response,
)
from swaprank.serve.settings import ServeSettings
from swaprank.texts import unreadable
from swaprank.types import RerankResult

require("fastapi", "serve")  # the extra's name in the error, not a bare ImportError
from fastapi import FastAPI, Request, Response  # noqa: E402  (FastAPI resolves handler annotations here)
from fastapi.responses import JSONResponse  # noqa: E402
from starlette.exceptions import HTTPException  # noqa: E402

logger = logging.getLogger("swaprank.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_ROUTES = frozenset({"/v2/rerank", "/v1/rerank", "/rerank", "/v1/models", "/health", "/ready", "/metrics",
                     "/infinity/rerank", "/infinity/models", "/infinity/health"})


def create_app(settings: ServeSettings, reranker: Reranker | None = None) -> FastAPI:
    """The service for ``settings``; ``reranker`` (built from ``settings`` when None) serves every request."""
    metrics = ServeMetrics()
    engine = ServeEngine(settings, reranker, metrics)
    auth = BearerAuth(settings.api_key_env)
    names = settings.model_names
    started = int(time.time())

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            await engine.close()

    # No /docs, /redoc or /openapi.json: a service exposed to clients publishes its API in its own docs,
    # not a browsable page that loads scripts from a CDN and lists every route to whoever asks.
    app = FastAPI(title="swaprank serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None, description="Reranking service: Cohere v2 and Jina/vLLM rerank APIs over swaprank.")
    app.state.engine = engine
    app.state.metrics = metrics
    app.state.settings = settings

    def error(exc: ServeError) -> Response:
        metrics.errors.labels(type=exc.type).inc()
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> Response:  # unknown route, wrong method
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error(ServeError(exc.status_code, kind, str(exc.detail)))

    def check_model(name: str | None) -> None:
        if name is None or settings.accept_any_model or name in names:
            return
        raise ServeError(404, "model_not_found",
                         f"The model `{name}` does not exist; this service serves: {', '.join(names)}")

    async def parse(request: Request, model: type[RerankRequest]) -> RerankRequest:
        body = await read_body(request.stream(), declared=request.headers.get("content-length", ""),
                               limit=settings.max_body_bytes, timeout=settings.body_timeout)
        raw = await asyncio.to_thread(decode, body, settings.max_documents)  # off the event loop
        if not isinstance(raw, dict):
            raise ServeError(400, "invalid_json", f"the body must be a JSON object, got {type(raw).__name__}")
        documents = raw.get("documents")
        if isinstance(documents, list) and len(documents) > settings.max_documents:
            raise ServeError(413, "too_many_documents", f"{len(documents)} documents in one request; this service "
                             f"accepts at most {settings.max_documents} (split the request)")
        try:
            parsed = model.model_validate(raw)
        except ValidationError as exc:
            raise ServeError(422, "invalid_request", describe(exc)) from None
        check_model(parsed.model)
        check_readable(parsed)  # before batching: one request's bad text is its own 400, nobody else's
        return parsed

    async def answer(request: Request, model: type[RerankRequest],
                     render: Callable[[RerankRequest, RerankResult, list[str]], dict[str, Any]]) -> Response:
        try:
            parsed = await parse(request, model)
            texts = parsed.texts()
            result = await until_disconnected(request, engine, engine.rerank(parsed.query, texts, parsed.wanted()),
                                              settings.request_timeout)
            if result is None:
                metrics.dropped.labels(reason="client_disconnected").inc()
                return Response(status_code=499)  # nobody reads it: the client is gone
            body = render(parsed, result, texts)
        except ClientGone:
            metrics.dropped.labels(reason="client_disconnected").inc()
            return Response(status_code=499)
        except ServeError as exc:
            return error(exc)
        except Exception as exc:
            mapped = from_exception(exc)
            if mapped.status >= 500 and mapped.type == "internal_error":
                logger.exception("swaprank serve: unexpected error")
            else:
                logger.warning("swaprank serve: %s answered %d: %s", request.url.path, mapped.status, exc)
            return error(mapped)
        headers = {"x-request-id": str(body.get("id", ""))}
        if result.passthrough:
            headers["x-swaprank-passthrough"] = "true"
        if result.query_truncated:
            headers["x-swaprank-query-truncated"] = "true"
        return JSONResponse(body, headers=headers)

    @app.post("/v2/rerank", summary="Cohere v2 rerank")
    async def cohere_rerank(request: Request) -> Response:
        return await answer(request, CohereRerankRequest, cohere_response)

    async def jina_rerank(request: Request) -> Response:
        return await answer(request, JinaRerankRequest, lambda parsed, result, texts: jina_response(
            parsed, result, texts, parsed.model or names[0]))

    app.post("/v1/rerank", summary="Jina / vLLM rerank")(jina_rerank)
    app.post("/rerank", summary="Jina / vLLM rerank (vLLM's unversioned route)")(jina_rerank)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {"object": "list", "data": [{"id": n, "object": "model", "owned_by": "swaprank"} for n in names]}

    # Infinity's routes, under /infinity: its clients take http://host:port/infinity as their base URL.
    @app.post("/infinity/rerank", summary="Infinity rerank")
    async def infinity_rerank(request: Request) -> Response:
        return await answer(request, InfinityRerankRequest, lambda parsed, result, texts: infinity_response(
            parsed, result, texts, parsed.model or names[0]))

    @app.get("/infinity/models")
    async def infinity_models() -> dict[str, Any]:
        # Infinity's ModelInfo; no owned_by: infinity_client accepts only "infinity" there, or none.
        return {"object": "list", "data": [{"id": n, "object": "model", "stats": {}, "backend": "swaprank",
                                            "capabilities": ["rerank"], "created": started} for n in names]}

    @app.get("/infinity/health")
    async def infinity_health() -> dict[str, float]:
        return {"unix": time.time()}  # Infinity's liveness answer

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> Response:
        engine.start()
        if engine.ready:
            return JSONResponse({"status": "ready", "models": list(names), "mode": engine.mode})
        reason = ("shutting down" if engine.draining else
                  f"the model failed to load ({engine.load_error})" if engine.load_error else "the model is loading")
        # Not counted in errors_total: a probe polling a loading service is not an error.
        return JSONResponse(ServeError(503, "not_ready", reason).body(), status_code=503, headers={"retry-after": "1"})

    @app.get("/metrics")
    async def prometheus() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    app.add_middleware(_Gate, auth=auth, metrics=metrics, max_concurrency=settings.max_concurrency)
    return app


def check_readable(parsed: RerankRequest) -> None:
    """400 ``invalid_input`` naming the first query or document no tokenizer can read."""
    for where, text in [("query", parsed.query), *((f"documents[{i}]", t) for i, t in enumerate(parsed.texts()))]:
        problem = unreadable(text)
        if problem is not None:
            raise ServeError(400, "invalid_input", f"{where} {problem}")


async def until_disconnected(request: Request, engine: ServeEngine, work: Awaitable[RerankResult],
                             timeout: float) -> RerankResult | None:
    """``await work``, unless the client hangs up first (the work is cancelled: a queued request leaves
    its batch, a chunked one stops at its next chunk; None is returned), the request's ``timeout``
    passes (504 ``request_timeout``) or a shutdown that ran out of time stops it (503 ``shutting_down``)."""
    task = asyncio.ensure_future(work)
    engine.inflight.add(task)

    async def hung_up() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    watcher = asyncio.ensure_future(hung_up())
    try:
        done, _ = await asyncio.wait({task, watcher}, timeout=timeout or None, return_when=asyncio.FIRST_COMPLETED)
    finally:
        engine.inflight.discard(task)
        if not task.done():
            task.cancel()
        watcher.cancel()
    if task in done:
        if task.cancelled():
            raise ServeError(503, "shutting_down", "the service is shutting down; retry on another instance",
                             {"retry-after": "1"})
        return task.result()
    if watcher in done:
        return None
    raise ServeError(504, "request_timeout", f"the request took longer than this service's {timeout:g} s; "
                     "send fewer or shorter documents")


# Always answered, whatever the load: they are how operators see trouble.
_PROBES = frozenset({"/health", "/infinity/health", "/ready", "/metrics"})


class _Gate:
    """Pure ASGI middleware (it never buffers bodies): bearer-token check before anything is read,
    the concurrency limit (503 ``overloaded`` with ``Retry-After`` past ``max_concurrency`` requests
    at once; probes exempt), in-flight gauge, request counts and latency by route and status."""

    def __init__(self, app: ASGIApp, *, auth: BearerAuth, metrics: ServeMetrics, max_concurrency: int) -> None:
        self.app = app
        self.auth = auth
        self.metrics = metrics
        self.max_concurrency = max_concurrency
        self.active = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        route = path if path in _ROUTES else "other"
        status = 500
        started = time.perf_counter()

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        self.metrics.inflight.inc()
        try:
            headers = dict(scope.get("headers") or [])
            authorization = headers.get(b"authorization", b"").decode("latin-1") or None
            if not self.auth.allows(path, authorization):
                await self._refuse(observe, ServeError(401, "unauthorized", "a valid bearer token is required: send "
                                                       "the header 'Authorization: Bearer <token>'",
                                                       {"www-authenticate": "Bearer"}))
            elif path in _PROBES:
                await self.app(scope, receive, observe)
            elif self.active >= self.max_concurrency:
                await self._refuse(observe, ServeError(503, "overloaded", f"the service is serving "
                                                       f"{self.max_concurrency} requests at once; retry later",
                                                       {"retry-after": "1"}))
            else:
                self.active += 1
                try:
                    await self.app(scope, receive, observe)
                finally:
                    self.active -= 1
        finally:
            self.metrics.inflight.dec()
            self.metrics.requests.labels(route=route, status=str(status)).inc()
            self.metrics.latency.labels(route=route).observe(time.perf_counter() - started)

    async def _refuse(self, send: Send, error: ServeError) -> None:
        self.metrics.errors.labels(type=error.type).inc()
        body = json.dumps(error.body()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        headers += [(name.encode(), value.encode()) for name, value in error.headers.items()]
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
