"""Reading a request body and decoding it as JSON, with every cost bounded before it is paid.

A body is read with a size limit (whatever Content-Length says) and a time limit (a client that
trickles its body byte by byte is answered 408 instead of holding a connection and a task), then
decoded off the event loop. JSON's own decoder is C code that holds the GIL: a body of millions of
tiny values (``[[],[],...]``: 8 MiB of them cost 3.3 s here) would stall every other request and
``/health`` for that long, thread or no thread. So the shape is checked first, at memchr speed, by
counting: a rerank request of at most ``max_documents`` documents has a few strings per document and
a handful of arrays, objects and values outside them; a body with far more is refused (400) before
it is decoded. Decoding then refuses nesting deeper than ``MAX_DEPTH``, numbers longer than
``MAX_NUMBER_CHARS`` characters (Python would otherwise parse a 5,000-digit integer, or raise from
deep inside) and NaN/Infinity, which are not JSON.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

from swaprank.serve.errors import ServeError

MAX_DEPTH = 16  # {"documents": [{"text": ...}]} is 3 deep; clients add a little
MAX_NUMBER_CHARS = 32
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')


class ClientGone(Exception):
    """The client hung up before its body arrived: nobody is left to answer."""


async def read_body(chunks: AsyncIterator[bytes], *, declared: str, limit: int, timeout: float) -> bytes:
    """The whole body, refusing more than ``limit`` bytes (413) or more than ``timeout`` seconds (408)."""
    too_large = ServeError(413, "body_too_large", f"the request body exceeds {limit} bytes", {"connection": "close"})
    if declared.isdigit() and int(declared) > limit:
        raise too_large

    async def collect() -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in chunks:
            size += len(chunk)
            if size > limit:
                raise too_large
            parts.append(chunk)
        return b"".join(parts)

    try:
        return await asyncio.wait_for(collect(), timeout) if timeout else await collect()
    except asyncio.TimeoutError:
        raise ServeError(408, "body_timeout", f"the request body did not arrive within {timeout:g} s",
                         {"connection": "close"}) from None
    except Exception as exc:
        if type(exc).__name__ == "ClientDisconnect":  # starlette's, raised by request.stream()
            raise ClientGone() from None
        raise


def check_shape(body: bytes, max_documents: int) -> None:
    """Refuse a body whose count of JSON strings, containers or values cannot be a rerank request."""
    strings = (body.count(b'"') - body.count(b'\\"')) // 2
    most_strings = 16 * max_documents + 64  # query, documents (objects with a few keys each), field names
    if strings > most_strings:
        raise _shape_error(f"{strings} strings", max_documents)
    outside = _STRING.sub(b'""', body)  # few strings, so this is quick: what is left is the structure
    containers = outside.count(b"[") + outside.count(b"{")
    if containers > 4 * max_documents + 64:
        raise _shape_error(f"{containers} arrays and objects", max_documents)
    values = outside.count(b",") + 1
    if values > 16 * max_documents + 64:
        raise _shape_error(f"{values} values", max_documents)


def _shape_error(what: str, max_documents: int) -> ServeError:
    return ServeError(400, "invalid_json", f"the body holds {what}, far more than a rerank request of at most "
                      f"{max_documents} documents needs")


class _Refused(ValueError):
    pass


def _int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(text)} digits (at most {MAX_NUMBER_CHARS})")
    return int(text)


def _float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise _Refused(f"a number of {len(text)} characters (at most {MAX_NUMBER_CHARS})")
    return float(text)


def _constant(text: str) -> Any:
    raise _Refused(f"{text}, which is not a JSON number")


def decode(body: bytes, max_documents: int) -> Any:
    """The body as JSON, or a 400 ``invalid_json`` naming what is wrong (blocking: run it in a thread)."""
    check_shape(body, max_documents)
    try:
        value = json.loads(body, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except _Refused as exc:
        raise ServeError(400, "invalid_json", f"the body holds {exc}") from None
    except RecursionError:
        raise _too_deep() from None
    except json.JSONDecodeError as exc:
        raise ServeError(400, "invalid_json", f"the body is not valid JSON: {exc.msg} at line {exc.lineno} "
                         f"column {exc.colno}") from None
    except UnicodeDecodeError:
        raise ServeError(400, "invalid_json", "the body is not valid UTF-8 JSON") from None
    if _depth(value) > MAX_DEPTH:
        raise _too_deep()
    return value


def _too_deep() -> ServeError:
    return ServeError(400, "invalid_json", f"the body is nested deeper than {MAX_DEPTH} levels")


def _depth(value: Any) -> int:
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level <= MAX_DEPTH:
                stack.extend((child, level + 1) for child in item if isinstance(child, (list, dict)))
    return deepest
