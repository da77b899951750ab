"""Requests queued by NVIDIA Cloud Functions (NVCF), polled to their answer within one attempt.

NVCF fronts NVIDIA's hosted APIs (the API catalog's rerankers among them). It may answer ``202``
with an ``NVCF-REQID`` header while a request waits, or a 2xx whose ``NVCF-STATUS`` is
``pending-evaluation``; the answer is then fetched from the status route (``status_url``, with
``{request_id}``) every ``interval`` seconds, inside the time budget of the attempt that posted it.
A self-hosted server never queues, so posting through here costs it nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from swaprank.backends.hosted.clients import JsonHTTP
from swaprank.backends.hosted.errors import HTTPStatusFailure

Answer = tuple[Any, httpx.Headers]


def post(http: JsonHTTP, url: str, body: Any, timeout: float, *, status_url: str, interval: float) -> Answer:
    """POST ``body``, then poll while NVCF says the request is queued; the whole within ``timeout``."""
    started = time.monotonic()
    answer = _answer_or_pending(_caught(http.post, url, body, timeout))
    while isinstance(answer, str):
        left = timeout - (time.monotonic() - started)
        if left <= interval:
            raise TimeoutError(f"queued request {answer} did not finish in time")
        time.sleep(interval)
        answer = _answer_or_pending(_caught(http.get, status_url.format(request_id=answer), left - interval))
    return answer


async def apost(http: JsonHTTP, url: str, body: Any, timeout: float, *, status_url: str, interval: float) -> Answer:
    """``post`` on the event loop; the caller bounds the whole coroutine (post and polls) by ``timeout``."""
    answer = _answer_or_pending(await _acaught(http.apost(url, body, timeout)))
    while isinstance(answer, str):
        await asyncio.sleep(interval)
        answer = _answer_or_pending(await _acaught(http.aget(status_url.format(request_id=answer), timeout)))
    return answer


def request_id(headers: Any) -> str | None:
    """NVCF's id of the request, for errors and traces when the usual request-id headers are absent."""
    value = headers.get("nvcf-reqid") if headers is not None else None
    return str(value) if value else None


def _caught(call: Callable[..., Answer], *args: Any) -> Any:
    try:
        return call(*args)
    except HTTPStatusFailure as failure:
        return failure


async def _acaught(call: Awaitable[Answer]) -> Any:
    try:
        return await call
    except HTTPStatusFailure as failure:
        return failure


def _answer_or_pending(result: Any) -> Answer | str:
    """The (json, headers) answer, or the NVCF request id to poll when the request was queued (202)."""
    if isinstance(result, HTTPStatusFailure):
        queued = result.headers.get("nvcf-reqid")
        if result.status == 202 and queued:
            return queued
        raise result
    data, headers = result
    queued = headers.get("nvcf-reqid")
    if queued and str(headers.get("nvcf-status", "")).lower() == "pending-evaluation":
        return str(queued)
    return data, headers
