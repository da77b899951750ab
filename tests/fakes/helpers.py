"""Helpers for the hosted-backend tests: the test key, fast retry options, a sync/async runner."""

from __future__ import annotations

import asyncio
from typing import Any

from swaprank import Reranker, RerankResult
from tests.fakes import FAKES, FakeServer, spec_for

TEST_KEY = "sk-swaprank-TEST-7f3a9c1e5b2d"
VENDORS = tuple(FAKES)
# Vendors whose answers carry no usage at all (NVIDIA NIM ranking, Amazon Bedrock Rerank).
NO_USAGE = ("nvidia", "bedrock")
# Small budgets so a fault test takes tens of milliseconds, not the production defaults' minutes.
# The default timeout stays generous (a loaded CI machine can take >0.5 s to build a client on first
# use); tests about timeouts set their own small ``timeout`` explicitly.
FAST: dict[str, Any] = {"timeout": 5.0, "max_retries": 2, "backoff": 0.01, "max_backoff": 0.05, "deadline": 10}

DOCS = [
    "the cat sat on the mat",
    "dogs bark at the mail carrier",
    "a cat and a dog share a sofa",
    "quarterly revenue grew nine percent",
    "cats purr when content",
    "the dog chased its tail",
    "stock markets closed higher",
    "my cat ignores my dog",
]
QUERY = "cat dog"


def spec(server: FakeServer, **options: Any) -> str:
    return spec_for(server.vendor, server.url, **{**FAST, **options})


def reranker(server: FakeServer, *, api_key: str | None = TEST_KEY, **options: Any) -> Reranker:
    kwargs: dict[str, Any] = {k: options.pop(k) for k in ("top_n", "on_error", "score_threshold") if k in options}
    return Reranker(spec(server, **options), api_key=api_key, **kwargs)


def rerank(rr: Reranker, mode: str, query: str = QUERY, docs: Any = DOCS, top_n: int | None = None) -> RerankResult:
    """Run the sync or the async path (the latter on a fresh event loop, as ``asyncio.run`` users do)."""
    if mode == "sync":
        return rr.rerank(query, docs, top_n=top_n)
    return asyncio.run(rr.arerank(query, docs, top_n=top_n))
