"""Adapters behave like the frameworks' own components: settings assigned after construction are
validated and take effect on the next call, and events report what was applied; ``min_results``
keeps the LLM from an empty context under a threshold (engine and both adapters)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document as LCDocument
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
from pydantic import ValidationError

from swaprank import ConfigError, Reranker
from swaprank.langchain import RerankCompressor
from swaprank.llama_index import RerankPostprocessor
from tests import scripted_backend
from tests.llama_events import RerankEvents, recording

TEXTS = ["s=0.2 beta", "s=0.9 alpha", "s=0.5 gamma", "s=0.7 delta", "s=0.1 eps"]
BY_SCORE = [1, 3, 2, 0, 4]  # indices by descending score


@pytest.fixture(autouse=True)
def _scripted() -> None:
    scripted_backend.install()


def nodes() -> list[NodeWithScore]:
    return [NodeWithScore(node=TextNode(id_=f"n{i}", text=t), score=0.5) for i, t in enumerate(TEXTS)]


def docs() -> list[LCDocument]:
    return [LCDocument(page_content=t, id=f"d{i}") for i, t in enumerate(TEXTS)]


@pytest.fixture
def events() -> Iterator[RerankEvents]:
    with recording() as handler:
        yield handler


class Runs(BaseCallbackHandler):
    def __init__(self) -> None:
        self.metadata: list[dict[str, Any]] = []

    def on_retriever_start(self, serialized: Any, query: str, *, metadata: dict[str, Any] | None = None,
                           **kwargs: Any) -> None:
        self.metadata.append(dict(metadata or {}))


# ------------------------------------------------------------------ live settings


def test_llama_index_top_n_assigned_after_construction_applies_and_is_reported(events: RerankEvents) -> None:
    post = RerankPostprocessor(model="scripted", top_n=5)
    post.top_n = 1
    out = post.postprocess_nodes(nodes(), query_str="q")
    assert [n.node.node_id for n in out] == ["n1"]
    start = events.events[0]
    assert isinstance(start, ReRankStartEvent) and start.top_n == 1
    post.top_n = 3
    out = asyncio.run(post.apostprocess_nodes(nodes(), query_bundle=QueryBundle("q")))
    assert [n.node.node_id for n in out] == ["n1", "n3", "n2"]
    assert events.events[2].top_n == 3  # type: ignore[attr-defined]
    assert post.reranker.top_n == 3


@pytest.mark.parametrize("bad", [0, -100, -10])
def test_bad_top_n_is_refused_on_assignment_and_the_old_value_stays(bad: int) -> None:
    for adapter in (RerankPostprocessor(model="scripted", top_n=2), RerankCompressor(model="scripted", top_n=2)):
        with pytest.raises(ConfigError, match="top_n must be a positive int"):
            adapter.top_n = bad
        assert adapter.top_n == 2 and adapter.reranker.top_n == 2


def test_type_errors_on_assignment_are_pydantic_validation_errors() -> None:
    compressor = RerankCompressor(model="scripted", top_n=2)
    with pytest.raises(ValidationError):
        compressor.top_n = "three"  # type: ignore[assignment]
    compressor.top_n = "3"  # type: ignore[assignment]  # lax mode coerces, like any pydantic field
    assert compressor.top_n == 3 and len(compressor.compress_documents(docs(), "q")) == 3


@pytest.mark.parametrize("bad", [-0.1, 1.5])
def test_bad_threshold_is_refused_on_assignment(bad: float) -> None:
    for adapter in (RerankPostprocessor(model="scripted"), RerankCompressor(model="scripted")):
        with pytest.raises(ConfigError, match="score_threshold must be a number in"):
            adapter.score_threshold = bad
        assert adapter.score_threshold is None and adapter.reranker.score_threshold is None


def test_langchain_settings_assigned_after_construction_apply() -> None:
    compressor = RerankCompressor(model="scripted", top_n=5)
    compressor.top_n = 2
    assert [d.id for d in compressor.compress_documents(docs(), "q")] == ["d1", "d3"]
    compressor.top_n = None
    compressor.score_threshold = 0.6
    assert [d.id for d in compressor.compress_documents(docs(), "q")] == ["d1", "d3"]
    compressor.model = "scripted:other"
    out = compressor.compress_documents(docs(), "q")
    assert out[0].metadata["rerank_model"] == "scripted:other"
    with pytest.raises(ConfigError, match="unknown backend"):
        compressor.model = "nope:x"
    assert compressor.model == "scripted:other"


def test_langchain_run_metadata_reports_the_applied_settings() -> None:
    runs = Runs()
    compressor = RerankCompressor(model="scripted", top_n=5)
    compressor.top_n = 1
    compressor.score_threshold = 0.3
    compressor.min_results = 1
    compressor.compress_documents(docs(), "q", callbacks=[runs])
    assert runs.metadata[0]["top_n"] == 1 and runs.metadata[0]["score_threshold"] == 0.3
    assert runs.metadata[0]["min_results"] == 1 and runs.metadata[0]["rerank_model"] == "scripted:default"


def test_other_llama_index_fields_are_validated_too() -> None:
    post = RerankPostprocessor(model="scripted")
    with pytest.raises(ValidationError):
        post.keep_retrieval_score = "maybe"  # type: ignore[assignment]
    with pytest.raises(ValidationError):
        post.on_error = "ignore"  # type: ignore[assignment]
    post.on_error = "passthrough"
    assert post.reranker.on_error == "passthrough"


# ------------------------------------------------------------------ min_results


def test_min_results_keeps_the_best_documents_under_a_threshold() -> None:
    rr = Reranker("scripted", score_threshold=0.95, min_results=2)
    result = rr.rerank("q", TEXTS)
    assert [r.index for r in result] == BY_SCORE[:2]
    # Enough documents pass: the threshold alone decides, min_results adds nothing.
    assert [r.index for r in Reranker("scripted", score_threshold=0.4, min_results=1).rerank("q", TEXTS)] == [1, 3, 2]
    # No threshold: min_results changes nothing.
    assert len(Reranker("scripted", min_results=2).rerank("q", TEXTS)) == len(TEXTS)


def test_min_results_is_capped_by_top_n_and_validated() -> None:
    with pytest.raises(ConfigError, match="min_results \\(3\\) cannot exceed top_n \\(2\\)"):
        Reranker("scripted", top_n=2, min_results=3)
    with pytest.raises(ConfigError, match="min_results must be a non-negative int"):
        Reranker("scripted", min_results=-1)
    rr = Reranker("scripted", score_threshold=0.99, min_results=3)
    assert [r.index for r in rr.rerank("q", TEXTS, top_n=2)] == BY_SCORE[:2]  # a per-call top_n wins


def test_min_results_in_both_adapters() -> None:
    post = RerankPostprocessor(model="scripted", top_n=None, score_threshold=0.99, min_results=2)
    assert [n.node.node_id for n in post.postprocess_nodes(nodes(), query_str="q")] == ["n1", "n3"]
    compressor = RerankCompressor(model="scripted", top_n=None, score_threshold=0.99)
    assert compressor.compress_documents(docs(), "q") == []
    compressor.min_results = 1
    assert [d.id for d in compressor.compress_documents(docs(), "q")] == ["d1"]
    with pytest.raises(ConfigError, match="cannot exceed top_n"):
        RerankCompressor(model="scripted", top_n=2, min_results=3)


# ------------------------------------------------------------------ events on every path


def test_llama_index_end_event_on_passthrough_and_on_failure(events: RerankEvents) -> None:
    passthrough = RerankPostprocessor(model="scripted?fail=true", on_error="passthrough")
    out = passthrough.postprocess_nodes(nodes(), query_str="q")
    assert len(out) == 5
    _, end = events.events
    assert isinstance(end, ReRankEndEvent) and end.tags["passthrough"] is True
    assert end.tags["error"] == "BackendUnavailableError" and len(end.nodes) == 5
    events.events.clear()
    failing = RerankPostprocessor(model="scripted?fail=true")
    with pytest.raises(Exception, match="scripted outage"):
        failing.postprocess_nodes(nodes(), query_str="q")
    assert [type(e) for e in events.events] == [ReRankStartEvent, ReRankEndEvent]
    assert events.events[1].nodes == [] and events.events[1].tags["error"] == "BackendUnavailableError"  # type: ignore[attr-defined]
    events.events.clear()
    with pytest.raises(Exception, match="scripted outage"):
        asyncio.run(failing.apostprocess_nodes(nodes(), query_str="q"))
    assert [type(e) for e in events.events] == [ReRankStartEvent, ReRankEndEvent]


def test_llama_index_end_event_says_who_served(events: RerankEvents) -> None:
    post = RerankPostprocessor(model="scripted:a?fail=true | scripted:b", top_n=2)
    post.postprocess_nodes(nodes(), query_str="q")
    start, end = events.events
    assert start.model_name == "scripted:a | scripted:b"  # type: ignore[attr-defined]
    assert end.tags["model_name"] == "scripted:b" and end.tags["returned"] == 2
    assert end.tags["passthrough"] is False and "usage" not in end.tags  # a local model bills nothing
