"""Both framework adapters on every hosted backend, sync and async: only the model string changes."""

from __future__ import annotations

import asyncio

import pytest

from swaprank import parse_spec
from swaprank.backends.registry import default_registry
from swaprank.redaction import spec_label
from tests.fakes import FakeServer, Fault, relevance
from tests.fakes.helpers import DOCS, QUERY, TEST_KEY, spec

pytest_plugins = ["tests.fakes.fixtures"]  # fake servers: fake_servers, server, vendor, mode

TOP = 3


def label(model: str) -> str:
    """``rerank_model``: backend:model; TEI's model is its URL, so it is named by the id /info reports."""
    return "tei:fake-org/fake-reranker" if model.startswith("tei:") else spec_label(parse_spec(model))


def best(n: int = TOP) -> list[int]:
    return sorted(range(len(DOCS)), key=lambda i: (-relevance(QUERY, DOCS[i]), i))[:n]


def test_llama_index_postprocessor(server: FakeServer, mode: str) -> None:
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from swaprank.llama_index import RerankPostprocessor

    post = RerankPostprocessor(model=spec(server, max_docs_per_request=3), top_n=TOP, api_key=TEST_KEY)
    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.5) for i, t in enumerate(DOCS)]
    query = QueryBundle(QUERY)
    out = post.postprocess_nodes(nodes, query) if mode == "sync" else asyncio.run(post.apostprocess_nodes(nodes, query))
    assert [n.node.node_id for n in out] == [f"n{i}" for i in best()]
    assert [n.score for n in out] == pytest.approx([relevance(QUERY, DOCS[i]) for i in best()])  # llamacpp: sigmoid
    assert [n.score for n in nodes] == [0.5] * len(DOCS)  # the caller's nodes are untouched
    assert len(server.requests) == 3  # 8 candidates, 3 per request


def test_langchain_compressor(server: FakeServer, mode: str) -> None:
    from langchain_core.documents import Document as LCDocument

    from swaprank.langchain import RerankCompressor

    model = spec(server, max_docs_per_request=3)
    compressor = RerankCompressor(model=model, top_n=TOP, api_key=TEST_KEY)
    docs = [LCDocument(page_content=t, id=f"d{i}", metadata={"source": i}) for i, t in enumerate(DOCS)]
    if mode == "sync":
        out = compressor.compress_documents(docs, QUERY)
    else:
        out = asyncio.run(compressor.acompress_documents(docs, QUERY))
    assert [d.id for d in out] == [f"d{i}" for i in best()]
    assert [d.metadata["source"] for d in out] == best()
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx([relevance(QUERY, DOCS[i]) for i in best()])
    assert {d.metadata["rerank_model"] for d in out} == {label(model)}
    assert "://" not in out[0].metadata["rerank_model"] and "timeout" not in out[0].metadata["rerank_model"]
    assert all("relevance_score" not in d.metadata for d in docs)  # inputs not mutated


@pytest.mark.parametrize("vendor", ["cohere"])
def test_langchain_reports_the_fallback_that_served(server: FakeServer, fake_servers: dict[str, FakeServer],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_core.documents import Document as LCDocument

    from swaprank.langchain import RerankCompressor

    tei = fake_servers["tei"]
    tei.reset()
    server.script(*[Fault.server_error(503)] * 3)
    monkeypatch.setenv("CO_API_KEY", TEST_KEY)  # from the env, so the self-hosted TEI gets no key
    default_registry().close()
    compressor = RerankCompressor(model=f"{spec(server)} | {spec(tei)}", top_n=TOP)
    out = compressor.compress_documents([LCDocument(page_content=t) for t in DOCS], QUERY)
    assert [d.page_content for d in out] == [DOCS[i] for i in best()]
    assert {d.metadata["rerank_model"] for d in out} == {"tei:fake-org/fake-reranker"}
    assert "authorization" not in tei.requests[0].headers


@pytest.mark.parametrize("vendor", ["voyage"])
def test_llama_index_passthrough_flags_the_nodes(server: FakeServer) -> None:
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from swaprank.llama_index import RerankPostprocessor

    server.script(*[Fault.rate_limited()] * 3)
    post = RerankPostprocessor(model=spec(server), top_n=TOP, api_key=TEST_KEY, on_error="passthrough")
    nodes = [NodeWithScore(node=TextNode(text=t), score=1.0 - i / 10) for i, t in enumerate(DOCS)]
    out = post.postprocess_nodes(nodes, QueryBundle(QUERY))
    assert [n.node.get_content() for n in out] == DOCS[:TOP]  # the retriever's order, kept
    assert all(n.node.metadata["rerank_passthrough"] is True for n in out)
