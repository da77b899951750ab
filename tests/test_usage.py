"""Usage, one shape for every backend: the vendor's units on RerankResult.usage (summed over split
requests and over failed fallback attempts), in LangChain document metadata, in LlamaIndex's end
event and node metadata."""

from __future__ import annotations

import asyncio

import pytest
from langchain_core.documents import Document as LCDocument
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

from swaprank import Reranker, Usage
from swaprank.backends.registry import default_registry
from swaprank.langchain import RerankCompressor
from swaprank.llama_index import RerankPostprocessor
from tests.fakes import FakeServer, Fault, token_count
from tests.fakes.helpers import DOCS, NO_USAGE, QUERY, TEST_KEY, rerank, spec
from tests.llama_events import recording

pytest_plugins = ["tests.fakes.fixtures"]


def expected_usage(vendor: str, parts: list[list[str]]) -> Usage:
    if vendor == "cohere":
        return Usage(search_units=len(parts))
    if vendor == "pinecone":
        return Usage(rerank_units=len(parts))
    return Usage(total_tokens=sum(token_count(QUERY, p) for p in parts))


def test_langchain_documents_carry_the_calls_usage(server: FakeServer, mode: str) -> None:
    compressor = RerankCompressor(model=spec(server, max_docs_per_request=3), top_n=2, api_key=TEST_KEY)
    docs = [LCDocument(page_content=t, id=f"d{i}") for i, t in enumerate(DOCS)]
    out = (compressor.compress_documents(docs, QUERY) if mode == "sync"
           else asyncio.run(compressor.acompress_documents(docs, QUERY)))
    if server.vendor in NO_USAGE:  # no usage reported: no usage keys, never zeros
        assert all("rerank_usage" not in d.metadata and "total_tokens" not in d.metadata for d in out)
        return
    usage = expected_usage(server.vendor, [DOCS[0:3], DOCS[3:6], DOCS[6:8]])  # three requests, summed
    for doc in out:
        assert doc.metadata["rerank_usage"] == usage.as_dict()
        if usage.total_tokens is not None:  # where the vendor counts tokens, like langchain-voyageai
            assert doc.metadata["total_tokens"] == usage.total_tokens
        else:
            assert "total_tokens" not in doc.metadata


def test_local_models_add_no_usage_keys(tiny_spec: str) -> None:
    out = RerankCompressor(model=tiny_spec, top_n=2).compress_documents([LCDocument(page_content=t) for t in DOCS],
                                                                        QUERY)
    assert all("rerank_usage" not in d.metadata and "total_tokens" not in d.metadata for d in out)


@pytest.mark.parametrize("vendor", ["voyage", "cohere"])
def test_llama_index_end_event_and_nodes_carry_usage(server: FakeServer) -> None:
    with recording() as handler:
        post = RerankPostprocessor(model=spec(server), top_n=2, api_key=TEST_KEY)
        nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.5) for i, t in enumerate(DOCS)]
        out = post.postprocess_nodes(nodes, query_str=QUERY)
    usage = expected_usage(server.vendor, [DOCS]).as_dict()
    assert handler.ends[0].tags["usage"] == usage
    assert handler.ends[0].tags["model_name"] == spec(server).split("?")[0]
    for node in out:
        assert node.node.metadata["rerank_usage"] == usage
        assert "rerank_usage" not in node.node.get_content(metadata_mode=MetadataMode.LLM)


@pytest.mark.parametrize("vendor", ["jina"])
def test_usage_adds_what_a_failed_split_call_was_billed_before_the_fallback(
        server: FakeServer, fake_servers: dict[str, FakeServer], mode: str) -> None:
    """Jina answers the first half, then fails the second three times: TEI serves, and the bill is both."""
    tei = fake_servers["tei"]
    tei.reset()
    default_registry().close()
    server.script(Fault.slow(0.0), *[Fault.server_error(503)] * 3)
    chain = f"{spec(server, max_docs_per_request=4, max_concurrency=1)} | {spec(tei)}"
    result = rerank(Reranker(chain, api_key={"jina": TEST_KEY}), mode)
    assert result.model_name == "tei:fake-org/fake-reranker" and len(server.requests) == 4
    assert result.usage == Usage(total_tokens=token_count(QUERY, DOCS[:4]) + token_count(QUERY, DOCS))
    server.settle()


@pytest.mark.parametrize("vendor", ["cohere"])
def test_passthrough_reports_what_the_failures_cost(server: FakeServer) -> None:
    server.script(Fault.slow(0.0), *[Fault.server_error(503)] * 3)
    rr = Reranker(spec(server, max_docs_per_request=4, max_concurrency=1), api_key=TEST_KEY, on_error="passthrough")
    result = rr.rerank(QUERY, DOCS)
    assert result.passthrough and result.usage == Usage(search_units=1)
    server.settle()


def test_usage_as_dict_keeps_only_reported_units() -> None:
    assert Usage(search_units=2).as_dict() == {"search_units": 2}
    assert Usage(total_tokens=9, search_units=None).as_dict() == {"total_tokens": 9}
    assert Usage().as_dict() == {}
