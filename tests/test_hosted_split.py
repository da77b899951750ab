"""Splitting candidate lists over a vendor's per-request limit: request counts, bounded
concurrency, merge by global index, usage summed over the parts.
"""

from __future__ import annotations

import asyncio

import pytest

from swaprank import BadResponseError, Reranker, Usage
from tests.fakes import FakeServer, Fault, relevance, token_count
from tests.fakes.helpers import NO_USAGE, QUERY, rerank, reranker

pytest_plugins = ["tests.fakes.fixtures"]  # fake servers: fake_servers, server, vendor, mode

WORDS = ["cat", "dog", "mat", "sofa", "tail", "bark", "purr", "stock", "market", "revenue"]
MANY = [f"{WORDS[i % 10]} {WORDS[(i * 7) % 10]} note {i}" for i in range(25)]


def test_split_requests_merge_to_the_unsplit_ranking(server: FakeServer, mode: str) -> None:
    whole = rerank(reranker(server, max_docs_per_request=1000), mode, docs=MANY)
    server.reset()
    split = rerank(reranker(server, max_docs_per_request=10), mode, docs=MANY)

    assert sorted(len(r.documents) for r in server.requests) == [5, 10, 10]
    sent = [doc for r in server.requests for doc in r.documents]
    assert sorted(sent) == sorted(MANY)  # every candidate sent exactly once
    assert [(d.index, d.score) for d in split] == [(d.index, d.score) for d in whole]
    assert [d.index for d in split] == sorted(range(25), key=lambda i: (-relevance(QUERY, MANY[i]), i))


def test_usage_is_summed_over_the_parts(server: FakeServer, mode: str) -> None:
    result = rerank(reranker(server, max_docs_per_request=10), mode, docs=MANY)
    if server.vendor == "cohere":
        assert result.usage == Usage(search_units=3)  # one unit per request of <= 100 documents
    elif server.vendor == "pinecone":
        assert result.usage == Usage(rerank_units=3)  # likewise, rerank units
    elif server.vendor in NO_USAGE:
        assert result.usage is None
    else:
        parts = [MANY[:10], MANY[10:20], MANY[20:]]
        assert result.usage == Usage(total_tokens=sum(token_count(QUERY, p) for p in parts))


def test_tei_splits_at_32_texts_by_default(fake_servers: dict[str, FakeServer]) -> None:
    fake = fake_servers["tei"]
    fake.reset()  # enforces TEI's default --max-client-batch-size of 32
    docs = [f"document {i} about cats" for i in range(70)]
    result = Reranker(f"tei:{fake.url}").rerank(QUERY, docs)
    assert sorted(len(r.documents) for r in fake.requests) == [6, 32, 32]
    assert sorted(d.index for d in result) == list(range(70))


def test_parts_run_concurrently_within_the_bound(server: FakeServer, mode: str) -> None:
    server.latency = 0.15  # long enough that the parts overlap at the server
    result = rerank(reranker(server, max_docs_per_request=4, max_concurrency=3), mode, docs=MANY[:24])
    assert len(server.requests) == 6
    # Three in flight at once proves the parts overlap, and never more than max_concurrency;
    # measured at the server, not by a wall clock that a loaded CI machine stretches.
    assert server.max_inflight == 3
    assert sorted(d.index for d in result) == list(range(24))


def test_max_concurrency_one_sends_parts_one_after_another(server: FakeServer, mode: str) -> None:
    server.latency = 0.05
    rerank(reranker(server, max_docs_per_request=5, max_concurrency=1), mode, docs=MANY[:15])
    assert len(server.requests) == 3
    assert server.max_inflight == 1


async def test_sync_rerank_inside_a_running_event_loop(server: FakeServer) -> None:
    """A sync call from async code (a notebook cell, a FastAPI handler) must not need its own loop."""
    loop = asyncio.get_running_loop()
    server.latency = 0.05
    result = reranker(server, max_docs_per_request=5).rerank(QUERY, MANY[:15])
    assert asyncio.get_running_loop() is loop
    assert len(server.requests) == 3
    assert server.max_inflight > 1
    assert sorted(d.index for d in result) == list(range(15))


def test_async_backend_serves_several_event_loops(server: FakeServer) -> None:
    """Backends are cached process-wide; each ``asyncio.run`` gets clients bound to its own loop."""
    rr = reranker(server, max_docs_per_request=5)
    first = asyncio.run(rr.arerank(QUERY, MANY[:12]))
    second = asyncio.run(rr.arerank(QUERY, MANY[:12]))
    assert [d.index for d in first] == [d.index for d in second]
    assert len(server.requests) == 6


def test_one_failing_part_fails_the_call(server: FakeServer, mode: str) -> None:
    server.script(Fault.wrong_index())
    with pytest.raises(BadResponseError, match=r"outside|out of range"):
        rerank(reranker(server, max_docs_per_request=10), mode, docs=MANY)
    server.settle()  # the sibling parts may still be in flight
    assert len(server.requests) <= 3


def test_a_part_that_recovers_on_retry_keeps_the_order(server: FakeServer, mode: str) -> None:
    server.script(Fault.rate_limited(), Fault.server_error(503))
    result = rerank(reranker(server, max_docs_per_request=10), mode, docs=MANY)
    assert len(server.requests) == 5  # three parts, two of them retried once
    assert [d.index for d in result] == sorted(range(25), key=lambda i: (-relevance(QUERY, MANY[i]), i))


def test_many_queries_share_the_concurrency_bound(server: FakeServer, mode: str) -> None:
    server.latency = 0.05
    rr = reranker(server, max_docs_per_request=5, max_concurrency=4)
    queries, docs = ["cat", "dog", "stock"], [MANY[:10], MANY[5:15], MANY[10:20]]
    results = rr.rerank_many(queries, docs) if mode == "sync" else asyncio.run(rr.arerank_many(queries, docs))
    assert len(server.requests) == 6
    assert server.max_inflight == 4
    for query, candidates, result in zip(queries, docs, results, strict=True):
        assert [d.index for d in result] == sorted(range(10), key=lambda i: (-relevance(query, candidates[i]), i))
