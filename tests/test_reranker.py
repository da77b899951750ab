"""The behaviour contract of docs/design.md ("Behaviour"), on a scripted backend (policy only, no model)."""

from __future__ import annotations

import asyncio
import logging
import math
import pickle

import pytest

from swaprank import (
    BackendUnavailableError,
    BadResponseError,
    ConfigError,
    Document,
    InvalidInputError,
    RankedDocument,
    Reranker,
)
from swaprank.backends import registry
from tests import scripted_backend
from tests.scripted_backend import ScriptedBackend


@pytest.fixture(autouse=True)
def _scripted() -> None:
    scripted_backend.install()
    registry.default_registry().close()
    ScriptedBackend.instances.clear()


def backend_calls() -> list[tuple[str, list[str]]]:
    return [call for inst in ScriptedBackend.instances for call in inst.calls]


DOCS = ["s=0.2 beta", "s=0.9 alpha", "s=0.5 gamma", "s=0.7 delta"]


def test_sorted_by_score_with_index_pointing_into_input() -> None:
    result = Reranker("scripted").rerank("q", DOCS)
    assert [r.index for r in result] == [1, 3, 2, 0]
    assert [r.score for r in result] == [0.9, 0.7, 0.5, 0.2]
    assert [r.raw_score for r in result] == [9.0, 7.0, 5.0, 2.0]
    assert all(type(r.score) is float and type(r.raw_score) is float for r in result)
    assert [r.text for r in result] == [DOCS[i] for i in (1, 3, 2, 0)]
    assert result.model == "scripted:default"


def test_ties_keep_input_order() -> None:
    docs = ["s=0.5 a", "s=0.9 b", "s=0.5 c", "s=0.5 d", "s=0.9 e"]
    assert [r.index for r in Reranker("scripted").rerank("q", docs)] == [1, 4, 0, 2, 3]


def test_empty_documents_return_empty_without_backend_call() -> None:
    result = Reranker("scripted").rerank("q", [])
    assert result == [] and result.model == ""
    assert backend_calls() == []


@pytest.mark.parametrize(
    ("query", "message"),
    [("", "query is empty"), ("   ", "query is empty"), (None, "query must be a string, got NoneType"),
     (42, "query must be a string, got int")],
)
def test_bad_query_is_a_value_error_naming_the_problem(query: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as info:
        Reranker("scripted").rerank(query, ["a"])  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    assert backend_calls() == []


@pytest.mark.parametrize(
    ("documents", "message"),
    [
        (["ok", None], r"documents\[1\] is None"),
        (["ok", "fine", 3], r"documents\[2\] is int"),
        ([("text", "id", "not-a-mapping")], r"documents\[0\] has metadata of type str"),
        ([(b"bytes", "id")], r"documents\[0\] has text of type bytes"),
        ([{"id": "x"}], r"documents\[0\] is a mapping without a 'text' key"),
        ("a single string", "documents must be a list of documents, got str"),
        (None, "documents must be a list of documents, got NoneType"),
    ],
)
def test_bad_documents_name_their_position(documents: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        Reranker("scripted").rerank("q", documents)  # type: ignore[arg-type]


def test_document_shapes_carry_ids_and_metadata() -> None:
    docs = [
        "s=0.1 plain",
        Document("s=0.4 record", id="r", metadata={"k": 1}),
        ("s=0.3 tuple", "t", {"k": 2}),
        {"text": "s=0.2 mapping", "id": "m", "metadata": {"k": 3}},
        ("s=0.5 just text",),
    ]
    result = Reranker("scripted").rerank("q", (d for d in docs))  # any iterable works
    assert [(r.id, dict(r.metadata)) for r in result] == [
        (None, {}), ("r", {"k": 1}), ("t", {"k": 2}), ("m", {"k": 3}), (None, {})
    ]
    assert [r.index for r in result] == [4, 1, 2, 3, 0]


def test_metadata_is_copied_not_shared() -> None:
    meta = {"k": 1}
    result = Reranker("scripted").rerank("q", [Document("a", "x", meta)])
    result[0].metadata["k"] = 2  # type: ignore[index]
    assert meta == {"k": 1}


def test_top_n_none_clamped_and_per_call() -> None:
    assert len(Reranker("scripted").rerank("q", DOCS)) == 4
    assert len(Reranker("scripted", top_n=10).rerank("q", DOCS)) == 4
    assert [r.index for r in Reranker("scripted", top_n=2).rerank("q", DOCS)] == [1, 3]
    assert [r.index for r in Reranker("scripted", top_n=2).rerank("q", DOCS, top_n=1)] == [1]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_bad_top_n_is_a_value_error(bad: object) -> None:
    with pytest.raises(InvalidInputError, match="top_n must be a positive int or None"):
        Reranker("scripted").rerank("q", DOCS, top_n=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="top_n must be a positive int or None"):
        Reranker("scripted", top_n=bad)  # type: ignore[arg-type]


def test_score_threshold_applies_to_normalised_score_before_top_n() -> None:
    result = Reranker("scripted", score_threshold=0.5).rerank("q", DOCS)
    assert [r.score for r in result] == [0.9, 0.7, 0.5]
    result = Reranker("scripted", score_threshold=0.6, top_n=5).rerank("q", DOCS)
    assert [r.index for r in result] == [1, 3]


@pytest.mark.parametrize("bad", [-0.1, 1.5, "0.5", True])
def test_bad_threshold_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match=r"score_threshold must be a number in \[0, 1\]"):
        Reranker("scripted", score_threshold=bad)  # type: ignore[arg-type]


def test_exact_duplicates_scored_once_and_all_returned() -> None:
    docs = ["s=0.3 same", "s=0.8 other", "s=0.3 same", Document("s=0.3 same", id="third")]
    result = Reranker("scripted").rerank("q", docs)
    assert [r.index for r in result] == [1, 0, 2, 3]
    assert result[3].id == "third"
    assert backend_calls() == [("q", ["s=0.3 same", "s=0.8 other"])]


def test_dedup_can_be_disabled() -> None:
    Reranker("scripted", dedup=False).rerank("q", ["a", "a"])
    assert backend_calls() == [("q", ["a", "a"])]


def test_fallback_chain_serves_from_next_spec_and_records_it(caplog: pytest.LogCaptureFixture) -> None:
    rr = Reranker("scripted:primary?fail=true | scripted:backup")
    with caplog.at_level(logging.WARNING, logger="swaprank"):
        result = rr.rerank("q", DOCS)
    assert [r.index for r in result] == [1, 3, 2, 0]
    assert result.model == "scripted:backup"
    assert "scripted:primary?fail=true failed" in caplog.text and "falling back" in caplog.text


def test_all_failed_raises_the_typed_error_by_default() -> None:
    with pytest.raises(BackendUnavailableError, match="scripted outage") as info:
        Reranker("scripted?fail=true").rerank("q", DOCS)
    assert info.value.status == 503 and info.value.vendor == "scripted" and info.value.attempts == 3


def test_passthrough_keeps_every_document_in_input_order() -> None:
    result = Reranker("scripted?fail=true", on_error="passthrough", score_threshold=0.99).rerank("q", DOCS)
    assert result.passthrough is True
    assert isinstance(result.error, BackendUnavailableError)
    # no document lost: the threshold cannot apply to scores that do not exist
    assert [r.index for r in result] == [0, 1, 2, 3]
    assert all(math.isnan(r.raw_score) and r.score == 0.0 for r in result)


def test_passthrough_still_honours_top_n() -> None:
    result = Reranker("scripted?fail=true", on_error="passthrough", top_n=2).rerank("q", DOCS)
    assert [r.index for r in result] == [0, 1]


def test_backend_answering_wrong_count_is_bad_response() -> None:
    with pytest.raises(BadResponseError, match="returned 3 raw / 3 scores for 4 documents"):
        Reranker("scripted?wrong_count=true").rerank("q", DOCS)


def test_untyped_backend_exception_is_wrapped_and_falls_back() -> None:
    def broken(spec: object, *, api_key: object = None) -> object:
        raise RuntimeError("boom")

    from swaprank import register_backend

    register_backend("broken", broken, replace=True)
    assert Reranker("broken:x | scripted").rerank("q", DOCS).model == "scripted:default"
    with pytest.raises(BackendUnavailableError, match="raised RuntimeError: boom"):
        Reranker("broken:x").rerank("q", DOCS)


def test_rrf_fusion_orders_by_fused_rank() -> None:
    # first stage order = input order; the model's order is reversed
    docs = ["s=0.1 a", "s=0.2 b", "s=0.3 c"]
    result = Reranker("scripted", fuse="rrf", rrf_k=0).rerank("q", docs)
    fused = {r.index: r.fused_score for r in result}
    assert fused == pytest.approx({0: 1 / 1 + 1 / 3, 1: 1 / 2 + 1 / 2, 2: 1 / 3 + 1 / 1})
    assert [r.index for r in result] == [0, 2, 1]  # 0 and 2 tie: input order wins
    assert all(isinstance(r, RankedDocument) for r in result)


def test_rerank_many_matches_single_calls_and_handles_empty_lists() -> None:
    rr = Reranker("scripted")
    many = rr.rerank_many(["alpha query", "beta", "nothing"], [DOCS, ["x beta", "y"], []], top_n=2)
    assert [[r.index for r in res] for res in many] == [[1, 3], [0, 1], []]
    assert list(many[0]) == list(rr.rerank("alpha query", DOCS, top_n=2))
    with pytest.raises(InvalidInputError, match="got 2 queries but 1 document lists"):
        rr.rerank_many(["a", "b"], [DOCS])
    with pytest.raises(InvalidInputError, match=r"docs_per_query\[1\]\[0\] is None"):
        rr.rerank_many(["a", "b"], [DOCS, [None]])


async def test_arerank_same_result_and_never_blocks_the_loop() -> None:
    rr = Reranker("scripted?delay=0.3")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    result = await rr.arerank("q", DOCS)
    task.cancel()
    assert [r.index for r in result] == [1, 3, 2, 0]
    assert ticks >= 10, "the event loop was blocked while the model ran"


async def test_native_async_backends_run_concurrently() -> None:
    from tests.scripted_backend import AsyncScriptedBackend

    AsyncScriptedBackend.most_in_flight = 0
    rr = Reranker("scripted-async?delay=0.2")
    results = await asyncio.gather(*(rr.arerank(f"q{i}", DOCS) for i in range(5)))
    # Counted, not timed: all five calls were waiting on the backend at once (sequential: at most 1).
    assert AsyncScriptedBackend.most_in_flight == 5
    assert all([r.index for r in res] == [1, 3, 2, 0] for res in results)


async def test_async_fallback_and_passthrough() -> None:
    result = await Reranker("scripted?fail=true | scripted-async").arerank("q", DOCS)
    assert result.model == "scripted-async:default"
    result = await Reranker("scripted?fail=true", on_error="passthrough").arerank("q", DOCS)
    assert result.passthrough and [r.index for r in result] == [0, 1, 2, 3]


def test_two_rerankers_with_same_spec_share_one_backend() -> None:
    ScriptedBackend.builds = 0
    a, b = Reranker("scripted:shared"), Reranker("scripted:shared")
    a.rerank("q", DOCS)
    b.rerank("q", DOCS)
    assert ScriptedBackend.builds == 1


def test_constructor_validation() -> None:
    with pytest.raises(ConfigError, match="on_error must be 'raise' or 'passthrough'"):
        Reranker("scripted", on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="fuse must be None or 'rrf'"):
        Reranker("scripted", fuse="max")  # type: ignore[arg-type]


def test_pickle_keeps_config_but_never_the_key() -> None:
    rr = Reranker("scripted", top_n=2, api_key="sk-very-secret-key")
    blob = pickle.dumps(rr)
    assert b"sk-very-secret-key" not in blob
    assert "sk-very-secret-key" not in repr(rr)
    clone = pickle.loads(blob)
    assert clone.model == rr.model and clone.top_n == 2
    assert [r.index for r in clone.rerank("q", DOCS)] == [1, 3]


def test_score_cache_skips_pairs_already_scored_and_keeps_results_identical() -> None:
    rr = Reranker("scripted", cache_size=100)
    first = rr.rerank("q", DOCS)
    second = rr.rerank("q", [*DOCS, "s=0.95 new"])
    assert backend_calls() == [("q", DOCS), ("q", ["s=0.95 new"])]
    assert [r.index for r in second] == [4, 1, 3, 2, 0]
    assert [(r.index, r.score) for r in first] == [(r.index, r.score) for r in second[1:]]
    assert rr.cache is not None and (rr.cache.hits, rr.cache.misses) == (4, 5)
    rr.rerank("other query", DOCS[:1])  # the query is part of the key
    assert backend_calls()[-1] == ("other query", DOCS[:1])


def test_score_cache_is_lru_bounded_and_per_model() -> None:
    rr = Reranker("scripted:a?fail=true | scripted:b", cache_size=2)
    result = rr.rerank("q", DOCS)  # bigger than the cache: still answered in full
    assert [r.index for r in result] == [1, 3, 2, 0] and rr.cache is not None and len(rr.cache) == 2
    rr.rerank("q", DOCS[2:])  # the two most recent pairs: no backend call for the serving model
    served = [c for inst in ScriptedBackend.instances if inst.spec.model == "b" for c in inst.calls]
    assert served == [("q", DOCS)]
    with pytest.raises(ConfigError, match="cache_size must be a non-negative int"):
        Reranker("scripted", cache_size=-1)


def test_one_key_is_never_broadcast_along_a_chain() -> None:
    with pytest.raises(ConfigError, match=r"one api_key for a chain of scripted, scripted-async would reach every"):
        Reranker("scripted:a | scripted-async", api_key="k")
    rr = Reranker("scripted:a | scripted-async", api_key={"scripted": "k1", "scripted-async": "k2"})
    assert set(rr._api_keys) == {"scripted", "scripted-async"}
    # a local model in the chain takes no key, so one key for the one hosted backend is unambiguous
    assert set(Reranker("scripted | ce:some/model", api_key="k")._api_keys) == {"scripted"}
