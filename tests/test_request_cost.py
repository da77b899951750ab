"""What one call may cost the model, and what a caller can stop: unreadable text refused up front,
over-long queries cut (and said so), a token budget checked before scoring, local scoring in chunks
that a cancelled async call stops between.

The tiny random cross-encoder gives real tokenization and windows (its scores mean nothing but are
deterministic); a local test backend counts and blocks calls for the chunk and cancellation checks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import pytest

from swaprank import InvalidInputError, Registry, RequestTooLargeError, Reranker
from swaprank.backends import Backend, Scores
from swaprank.windows import QUERY_SHARE

DOCS = ["the cat sat on the mat", "dogs bark at the mail carrier", "a cat and a dog share a sofa",
        "quarterly revenue grew nine percent", "cats purr when content"]


# ---------------------------------------------------------------------- unreadable text


@pytest.mark.parametrize(("query", "docs", "where"), [
    ("cat", ["ok", "bad \ud800 text"], "documents[1]"),
    ("cat", [{"text": "\udcff"}], "documents[0]"),
    ("cat \udc80", ["ok"], "query"),
])
def test_lone_surrogates_are_the_callers_error_naming_where(tiny_spec: str, query: str, docs: list[Any],
                                                           where: str) -> None:
    with Reranker(tiny_spec) as rr, pytest.raises(InvalidInputError) as caught:
        rr.rerank(query, docs)
    assert str(caught.value).startswith(where)
    assert "lone surrogate" in str(caught.value)


def test_non_ascii_text_that_is_valid_unicode_is_scored(tiny_spec: str) -> None:
    with Reranker(tiny_spec) as rr:
        result = rr.rerank("café ☕", ["naïve résumé", "日本語のテキスト", "emoji 🐈"])
    assert sorted(d.index for d in result) == [0, 1, 2]


# ---------------------------------------------------------------------- the query is bounded


def test_an_over_long_query_is_cut_to_half_the_model_and_reported(tiny_spec: str) -> None:
    with Reranker(tiny_spec) as rr:
        limit = rr.info()[0].windowing
        assert limit is not None
        most = int(limit.limit.tokens * QUERY_SHARE)
        words = [f"w{i}" for i in range(4 * limit.limit.tokens)]
        long_query = " ".join(words)
        long = rr.rerank(long_query, DOCS)
        short = rr.rerank("cat dog", DOCS)
        # What the model read is the query's first `most` tokens: scoring that text directly agrees.
        counter = limit.counter
        offsets = counter.offsets([long_query])[0]
        head = long_query[: offsets[most - 1][1]]
        cut = rr.rerank(head, DOCS)
    assert long.query_truncated and not short.query_truncated and not cut.query_truncated
    assert [(d.index, d.score) for d in long] == [(d.index, d.score) for d in cut]


def test_a_megabyte_query_is_cut_before_it_is_tokenized(tiny_spec: str) -> None:
    query = "x" * 1_000_000 + " cat"
    with Reranker(tiny_spec) as rr:
        result = rr.rerank(query, DOCS)
    assert result.query_truncated
    assert len(result) == len(DOCS)


# ---------------------------------------------------------------------- the token budget


def test_a_query_over_the_token_budget_is_refused_with_the_numbers(tiny_spec: str) -> None:
    long_doc = " ".join(["word"] * 3000)  # windowed: many pairs
    with Reranker(tiny_spec, max_model_tokens=2000) as rr:
        assert len(rr.rerank("cat", DOCS)) == len(DOCS)  # small requests pass
        with pytest.raises(RequestTooLargeError) as caught:
            rr.rerank("cat", [*DOCS, long_doc])
    error = caught.value
    assert isinstance(error, InvalidInputError)  # never a reason to fall back
    assert error.limit == 2000 and error.needed > 2000
    assert str(error.needed) in str(error) and "max_model_tokens=2000" in str(error)


def test_the_budget_names_the_query_of_a_batched_call(tiny_spec: str) -> None:
    long_doc = " ".join(["word"] * 3000)
    with Reranker(tiny_spec, max_model_tokens=2000) as rr, pytest.raises(RequestTooLargeError) as caught:
        rr.rerank_many(["a", "b", "c"], [DOCS, [], [long_doc]])
    assert str(caught.value).startswith("queries[2]")


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10"])
def test_budget_and_chunk_settings_are_checked_at_construction(tiny_spec: str, bad: Any) -> None:
    from swaprank import ConfigError

    with pytest.raises(ConfigError, match="max_model_tokens"):
        Reranker(tiny_spec, max_model_tokens=bad)
    with pytest.raises(ConfigError, match="chunk_chars"):
        Reranker(tiny_spec, chunk_chars=bad)


# ---------------------------------------------------------------------- chunks


class LocalCounting(Backend):
    """A local backend that records each scoring call and can hold the first one until released."""

    local: ClassVar[bool] = True
    default_model: ClassVar[str | None] = "counting"
    calls: ClassVar[list[list[tuple[str, list[str]]]]] = []
    started: ClassVar[threading.Event] = threading.Event()
    release: ClassVar[threading.Event] = threading.Event()
    finished: ClassVar[threading.Event] = threading.Event()
    hold: ClassVar[bool] = False

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        cls = LocalCounting
        cls.calls.append([(q, list(t)) for q, t in requests])
        if cls.hold and len(cls.calls) == 1:
            cls.started.set()
            cls.release.wait(30)
        values = [[len(t) / 1000 for t in texts] for _, texts in requests]
        cls.finished.set()
        return [Scores(raw=v, normalized=v) for v in values]


@pytest.fixture
def counting() -> Iterator[Registry]:
    LocalCounting.calls = []
    LocalCounting.hold = False
    for event in (LocalCounting.started, LocalCounting.release, LocalCounting.finished):
        event.clear()
    registry = Registry()
    registry.register("counting", LocalCounting)
    yield registry
    registry.close()


def test_local_scoring_runs_in_chunks_and_joins_to_the_same_ranking(counting: Registry) -> None:
    docs = [f"document number {i} " + "x" * i for i in range(60)]
    with Reranker("counting", registry=counting, chunk_chars=400) as chunked:
        result = chunked.rerank("q", docs)
    calls = LocalCounting.calls
    assert len(calls) > 5  # split
    assert all(sum(len(q) + len(t) for q, texts in call for t in texts) <= 400 or
               sum(len(texts) for _, texts in call) == 1 for call in calls)
    scored = [t for call in calls for _, texts in call for t in texts]
    assert scored == docs  # every pair once, in order
    assert [d.index for d in result] == list(range(59, -1, -1))  # longest first, as scored


def test_rerank_many_chunks_across_queries_and_keeps_each_querys_scores(counting: Registry) -> None:
    with Reranker("counting", registry=counting, chunk_chars=30) as rr:
        results = rr.rerank_many(["a", "b"], [["x" * 5, "x" * 25, "x" * 10], ["y" * 20, "y"]])
    assert [[d.index for d in r] for r in results] == [[1, 2, 0], [0, 1]]
    assert [[d.score for d in r] for r in results] == [[0.025, 0.01, 0.005], [0.02, 0.001]]


async def test_a_cancelled_async_call_stops_at_the_next_chunk(counting: Registry) -> None:
    LocalCounting.hold = True
    docs = ["x" * 100 for _ in range(10)]
    async with Reranker("counting", registry=counting, chunk_chars=250) as rr:
        task = asyncio.ensure_future(rr.arerank("q", docs))
        await asyncio.to_thread(LocalCounting.started.wait, 30)
        task.cancel()
        LocalCounting.release.set()
        await asyncio.to_thread(LocalCounting.finished.wait, 30)
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(5):  # give a (wrong) next chunk every chance to start
            await asyncio.sleep(0)
    assert len(LocalCounting.calls) == 1  # the chunk in progress finished; no other chunk started


def test_a_cut_query_shows_in_the_frameworks_summary(tiny_spec: str) -> None:
    from swaprank.adapter_fields import result_summary

    with Reranker(tiny_spec) as rr:
        cut = rr.rerank("cat " * 10_000, DOCS)
        whole = rr.rerank("cat", DOCS)
    assert result_summary(cut)["query_truncated"] is True
    assert "query_truncated" not in result_summary(whole)
