"""LlamaIndex adapter: drop-in postprocessor behaviour, events, serialisation, a real query engine."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.bridge.pydantic import Field
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

from swaprank import ConfigError, InvalidInputError, Reranker
from swaprank.llama_index import RerankPostprocessor
from tests import scripted_backend

TEXTS = ["s=0.2 beta", "s=0.9 alpha", "s=0.5 gamma", "s=0.7 delta"]


@pytest.fixture(autouse=True)
def _scripted() -> None:
    scripted_backend.install()


def make_nodes() -> list[NodeWithScore]:
    return [
        NodeWithScore(node=TextNode(id_=f"n{i}", text=t, metadata={"source": f"doc{i}"}), score=1.0 - i / 10)
        for i, t in enumerate(TEXTS)
    ]


class Recorder(BaseEventHandler):
    events: list[BaseEvent] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "Recorder"

    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    handler = Recorder(events=[])
    root = get_dispatcher()
    root.add_event_handler(handler)
    yield handler
    root.event_handlers.remove(handler)


def rerank_events(recorder: Recorder) -> list[BaseEvent]:
    return [e for e in recorder.events if isinstance(e, (ReRankStartEvent, ReRankEndEvent))]


def test_reorders_by_model_score_returning_new_nodes(recorder: Recorder) -> None:
    nodes = make_nodes()
    pp = RerankPostprocessor(model="scripted", top_n=3, metadata_mode=MetadataMode.NONE)
    out = pp.postprocess_nodes(nodes, query_str="q")
    assert [n.node.node_id for n in out] == ["n1", "n3", "n2"]
    assert [n.score for n in out] == [0.9, 0.7, 0.5]
    assert all(a is not b for a in out for b in nodes)  # new NodeWithScore objects
    assert [n.score for n in nodes] == [1.0, 0.9, 0.8, 0.7]  # caller's nodes untouched
    assert out[0].node.metadata == {"source": "doc1"}
    start, end = rerank_events(recorder)
    assert isinstance(start, ReRankStartEvent) and start.top_n == 3 and start.model_name == "scripted:default"
    assert isinstance(end, ReRankEndEvent) and [n.node.node_id for n in end.nodes] == ["n1", "n3", "n2"]


def test_text_sent_to_the_model_follows_metadata_mode() -> None:
    node = NodeWithScore(node=TextNode(id_="m", text="alpha", metadata={"title": "s=0.8"}), score=0.1)
    embed = RerankPostprocessor(model="scripted", metadata_mode=MetadataMode.EMBED)
    none = RerankPostprocessor(model="scripted", metadata_mode=MetadataMode.NONE)
    assert embed.postprocess_nodes([node], query_str="q")[0].score == 0.8  # title is part of the text
    assert none.postprocess_nodes([node], query_str="q")[0].score == 0.0


def test_keep_retrieval_score_goes_to_a_copy_and_stays_out_of_prompts() -> None:
    nodes = make_nodes()
    out = RerankPostprocessor(model="scripted", top_n=1, keep_retrieval_score=True).postprocess_nodes(
        nodes, query_str="q")
    assert out[0].node.metadata == {"source": "doc1", "retrieval_score": 0.9}
    assert "retrieval_score" not in out[0].node.get_content(metadata_mode=MetadataMode.LLM)
    assert nodes[1].node.metadata == {"source": "doc1"}


def test_empty_input_emits_events_and_returns_empty(recorder: Recorder) -> None:
    assert RerankPostprocessor(model="scripted").postprocess_nodes([], query_str="q") == []
    assert [type(e) for e in rerank_events(recorder)] == [ReRankStartEvent, ReRankEndEvent]


def test_missing_query_is_a_clear_error() -> None:
    with pytest.raises(InvalidInputError, match="needs a query"):
        RerankPostprocessor(model="scripted").postprocess_nodes(make_nodes())


def test_bad_config_fails_at_construction() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'nope'"):
        RerankPostprocessor(model="nope:x")
    with pytest.raises(ConfigError, match="top_n must be a positive int"):
        RerankPostprocessor(model="scripted", top_n=0)


def test_threshold_and_passthrough() -> None:
    out = RerankPostprocessor(model="scripted", top_n=None, score_threshold=0.6).postprocess_nodes(
        make_nodes(), query_str="q")
    assert [n.node.node_id for n in out] == ["n1", "n3"]
    failing = RerankPostprocessor(model="scripted?fail=true", top_n=None, on_error="passthrough")
    out = failing.postprocess_nodes(make_nodes(), query_str="q")
    assert [n.node.node_id for n in out] == ["n0", "n1", "n2", "n3"]
    assert [n.score for n in out] == [1.0, 0.9, 0.8, 0.7]  # the retriever's scores, flagged
    assert all(n.node.metadata["rerank_passthrough"] is True for n in out)


def test_native_async_matches_sync(recorder: Recorder) -> None:
    pp = RerankPostprocessor(model="scripted-async", top_n=2)
    out = asyncio.run(pp.apostprocess_nodes(make_nodes(), query_bundle=QueryBundle("q")))
    assert [n.node.node_id for n in out] == ["n1", "n3"]
    assert [type(e) for e in rerank_events(recorder)] == [ReRankStartEvent, ReRankEndEvent]


def test_serialisation_round_trip_without_the_key() -> None:
    pp = RerankPostprocessor(model="scripted:x?delay=0", top_n=3, score_threshold=0.1, api_key="sk-live-123456",
                             keep_retrieval_score=True)
    data = pp.to_dict()
    assert data["class_name"] == "SwapRankRerank" == RerankPostprocessor.class_name()
    assert "sk-live-123456" not in str(data) + pp.to_json() + repr(pp) + str(pp)
    clone = RerankPostprocessor.from_dict(data)
    assert (clone.model, clone.top_n, clone.score_threshold, clone.keep_retrieval_score) == (
        "scripted:x?delay=0", 3, 0.1, True)
    assert isinstance(clone.reranker, Reranker)


def test_real_query_engine_end_to_end(tiny_spec: str) -> None:
    """A real VectorStoreIndex + RetrieverQueryEngine with llama-index-core's mock LLM and embeddings."""
    Settings.embed_model = MockEmbedding(embed_dim=8)
    index = VectorStoreIndex([TextNode(id_=f"n{i}", text=t) for i, t in enumerate(TEXTS)])
    pp = RerankPostprocessor(model="scripted", top_n=2)
    engine = RetrieverQueryEngine.from_args(index.as_retriever(similarity_top_k=4), llm=MockLLM(),
                                            node_postprocessors=[pp])
    response = engine.query("which one is alpha")
    assert [n.node.node_id for n in response.source_nodes] == ["n1", "n3"]
    assert [n.score for n in response.source_nodes] == [0.9, 0.7]

    # the same engine with a real (tiny) cross-encoder: scores are the model's, sorted, top 2 kept
    engine = index.as_query_engine(similarity_top_k=4, llm=MockLLM(),
                                   node_postprocessors=[RerankPostprocessor(model=tiny_spec, top_n=2)])
    nodes = asyncio.run(engine.aquery("which one is alpha")).source_nodes
    assert len(nodes) == 2 and nodes[0].score is not None and nodes[1].score is not None
    assert nodes[0].score >= nodes[1].score
