"""LangChain adapter: drop-in compressor behaviour, callbacks, serialisation, a real compression retriever."""

from __future__ import annotations

import asyncio
import pickle
from typing import Any
from uuid import UUID

import pytest
from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import BaseCallbackHandler, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.load import dumps
from langchain_core.retrievers import BaseRetriever

from swaprank import ConfigError, InvalidInputError
from swaprank.langchain import RerankCompressor
from tests import scripted_backend

TEXTS = ["s=0.2 beta", "s=0.9 alpha", "s=0.5 gamma", "s=0.7 delta"]


@pytest.fixture(autouse=True)
def _scripted() -> None:
    scripted_backend.install()


def make_docs() -> list[Document]:
    return [Document(id=f"d{i}", page_content=t, metadata={"source": f"doc{i}", "page": i})
            for i, t in enumerate(TEXTS)]


class FixedRetriever(BaseRetriever):
    docs: list[Document]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        return self.docs


class Runs(BaseCallbackHandler):
    def __init__(self) -> None:
        self.started: list[tuple[str | None, dict[str, Any]]] = []
        self.ended: list[int] = []
        self.errors: list[BaseException] = []

    def on_retriever_start(self, serialized: Any, query: str, *, run_id: UUID, **kwargs: Any) -> None:
        self.started.append((kwargs.get("name"), kwargs.get("metadata") or {}))

    def on_retriever_end(self, documents: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.ended.append(len(documents))

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.errors.append(error)


def test_copies_keep_id_and_metadata_and_add_relevance_score() -> None:
    docs = make_docs()
    out = RerankCompressor(model="scripted", top_n=3).compress_documents(docs, "q")
    assert [d.id for d in out] == ["d1", "d3", "d2"]
    assert [d.metadata["relevance_score"] for d in out] == [0.9, 0.7, 0.5]
    assert out[0].metadata == {"source": "doc1", "page": 1, "relevance_score": 0.9, "rerank_model": "scripted:default"}
    assert all(d.metadata == {"source": f"doc{i}", "page": i} for i, d in enumerate(docs))  # inputs untouched
    assert all(a is not b for a in out for b in docs)


def test_threshold_top_n_and_passthrough() -> None:
    out = RerankCompressor(model="scripted", top_n=None, score_threshold=0.6).compress_documents(make_docs(), "q")
    assert [d.id for d in out] == ["d1", "d3"]
    out = RerankCompressor(model="scripted?fail=true", top_n=None, on_error="passthrough").compress_documents(
        make_docs(), "q")
    assert [d.id for d in out] == ["d0", "d1", "d2", "d3"]
    assert all(d.metadata["rerank_passthrough"] is True and d.metadata["relevance_score"] is None for d in out)


def test_fallback_records_the_serving_model() -> None:
    out = RerankCompressor(model="scripted:a?fail=true | scripted:b", top_n=1).compress_documents(make_docs(), "q")
    assert out[0].metadata["rerank_model"] == "scripted:b"


def test_errors_are_typed() -> None:
    with pytest.raises(ConfigError, match="unknown option 'nope'"):
        RerankCompressor(model="scripted?nope=1")
    with pytest.raises(InvalidInputError, match="query is empty"):
        RerankCompressor(model="scripted").compress_documents(make_docs(), "")
    assert RerankCompressor(model="scripted").compress_documents([], "q") == []


def test_inside_contextual_compression_retriever_with_callbacks() -> None:
    runs = Runs()
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(model="scripted", top_n=2), base_retriever=FixedRetriever(docs=make_docs()))
    out = retriever.invoke("q", config={"callbacks": [runs]})
    assert [d.id for d in out] == ["d1", "d3"]
    rerank_runs = [meta for name, meta in runs.started if name == "RerankCompressor"]
    assert rerank_runs == [{"ls_retriever_name": "contextualcompression", "rerank_model": "scripted:default",
                            "top_n": 2, "score_threshold": None, "min_results": 0, "candidates": 4}]
    assert runs.ended[-2:] == [2, 2]  # the compressor's run, then the outer retriever's


def test_native_async_and_error_callbacks() -> None:
    runs = Runs()
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(model="scripted-async", top_n=2),
        base_retriever=FixedRetriever(docs=make_docs()))
    out = asyncio.run(retriever.ainvoke("q", config={"callbacks": [runs]}))
    assert [d.id for d in out] == ["d1", "d3"]
    failing = RerankCompressor(model="scripted?fail=true")
    with pytest.raises(Exception, match="scripted outage"):
        asyncio.run(failing.acompress_documents(make_docs(), "q", callbacks=[runs]))
    assert len(runs.errors) == 1


def test_serialisation_never_contains_the_key() -> None:
    compressor = RerankCompressor(model="scripted", top_n=2, api_key="sk-live-abcdef")
    blobs = [repr(compressor), str(compressor), compressor.model_dump_json(), str(compressor.model_dump()),
             dumps(compressor), pickle.dumps(compressor).decode("latin-1")]
    assert not any("sk-live-abcdef" in blob for blob in blobs)
    clone = pickle.loads(pickle.dumps(compressor))
    assert clone.api_key is None and clone.top_n == 2
    assert [d.id for d in clone.compress_documents(make_docs(), "q")] == ["d1", "d3"]


def test_real_cross_encoder_through_the_retriever(tiny_spec: str) -> None:
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(model=tiny_spec, top_n=3), base_retriever=FixedRetriever(docs=make_docs()))
    out = retriever.invoke("which one is alpha")
    scores = [d.metadata["relevance_score"] for d in out]
    assert len(out) == 3 and scores == sorted(scores, reverse=True)
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in scores)


def test_a_chain_of_keyed_backends_takes_a_key_mapping() -> None:
    compressor = RerankCompressor(model="scripted:a?fail=true | scripted-async",
                                  api_key={"scripted": "k1", "scripted-async": "k2"})
    assert "k1" not in repr(compressor) + compressor.model_dump_json()
    assert compressor.compress_documents(make_docs(), "q")[0].metadata["rerank_model"] == "scripted-async:default"
    with pytest.raises(ConfigError, match="one api_key for a chain"):
        RerankCompressor(model="scripted:a | scripted-async", api_key="k")
