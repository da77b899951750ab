"""Hosted backends, happy path: the exact wire protocol, ranking, usage, options and keys.

Every test drives the real SDK (cohere, voyageai) or httpx over real HTTP against a fake server
on 127.0.0.1 that speaks the vendor's protocol.
"""

from __future__ import annotations

import asyncio

import pytest

from swaprank import AuthenticationError, ConfigError, Document, Reranker, Usage, format_spec, parse_spec
from swaprank.backends.registry import default_registry
from tests.fakes import FakeServer, relevance, token_count
from tests.fakes.helpers import DOCS, NO_USAGE, QUERY, TEST_KEY, rerank, reranker, spec
from tests.fakes.vendors_selfhosted import logit

pytest_plugins = ["tests.fakes.fixtures"]  # fake servers: fake_servers, server, vendor, mode


def expected_order(query: str, docs: list[str]) -> list[int]:
    return sorted(range(len(docs)), key=lambda i: (-relevance(query, docs[i]), i))


# ------------------------------------------------------------------ wire protocol


def test_cohere_request_is_the_v2_rerank_call(fake_servers: dict[str, FakeServer]) -> None:
    fake = fake_servers["cohere"]
    fake.reset()
    fake.api_key = TEST_KEY
    Reranker(spec(fake, max_tokens_per_doc=512), api_key=TEST_KEY).rerank(QUERY, DOCS)
    [req] = fake.requests
    assert (req.method, req.path) == ("POST", "/v2/rerank")
    assert req.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert req.headers["x-client-name"] == "swaprank"
    assert req.headers["user-agent"].startswith("cohere/")
    assert req.body == {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS, "max_tokens_per_doc": 512}


def test_voyage_request_is_the_v1_rerank_call(fake_servers: dict[str, FakeServer]) -> None:
    fake = fake_servers["voyage"]
    fake.reset()
    fake.api_key = TEST_KEY
    Reranker(spec(fake, truncation=False), api_key=TEST_KEY).rerank(QUERY, DOCS)
    [req] = fake.requests
    assert (req.method, req.path) == ("POST", "/v1/rerank")
    assert req.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert req.body == {"query": QUERY, "documents": DOCS, "model": "rerank-2.5", "top_k": None, "truncation": False}


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/rerank"])
def test_jina_request_and_base_url_forms(fake_servers: dict[str, FakeServer], suffix: str) -> None:
    fake = fake_servers["jina"]
    fake.reset()
    fake.api_key = TEST_KEY
    rr = Reranker(f"jina:jina-reranker-v2-base-multilingual?base_url={fake.url}{suffix}&max_retries=0",
                  api_key=TEST_KEY)
    rr.rerank(QUERY, DOCS)
    [req] = fake.requests
    assert (req.method, req.path) == ("POST", "/v1/rerank")
    assert req.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert req.body == {"model": "jina-reranker-v2-base-multilingual", "query": QUERY, "documents": DOCS,
                        "top_n": len(DOCS), "return_documents": False}


def test_tei_request_is_the_rerank_call(fake_servers: dict[str, FakeServer]) -> None:
    fake = fake_servers["tei"]
    fake.reset()
    Reranker(spec(fake, truncate=False)).rerank(QUERY, DOCS)
    [req] = fake.requests
    assert (req.method, req.path) == ("POST", "/rerank")
    assert "authorization" not in req.headers  # no key given, none sent
    assert req.body == {"query": QUERY, "texts": DOCS, "raw_scores": False, "truncate": False, "return_text": False}


def test_tei_sends_a_key_only_when_given(fake_servers: dict[str, FakeServer]) -> None:
    fake = fake_servers["tei"]
    fake.reset()
    fake.api_key = TEST_KEY  # TEI started with --api-key
    try:
        Reranker(spec(fake), api_key=TEST_KEY).rerank(QUERY, DOCS)
        assert fake.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    finally:
        fake.api_key = None


# ------------------------------------------------------------------ ranking


def test_rerank_orders_by_the_vendor_scores(server: FakeServer, mode: str) -> None:
    result = rerank(reranker(server), mode)
    assert [d.index for d in result] == expected_order(QUERY, DOCS)
    for doc in result:
        assert doc.text == DOCS[doc.index]
        if getattr(server, "returns_logits", False):  # llama.cpp: raw logits, mapped by one sigmoid
            assert doc.raw_score == logit(relevance(QUERY, DOCS[doc.index]))
            assert doc.score == pytest.approx(relevance(QUERY, DOCS[doc.index]))
        else:
            assert doc.score == doc.raw_score == relevance(QUERY, DOCS[doc.index])
        assert type(doc.score) is float
    assert result.model == format_spec(parse_spec(spec(server)))
    assert result.passthrough is False
    assert len(server.requests) == 1


def test_ids_metadata_and_top_n_survive_the_round_trip(server: FakeServer, mode: str) -> None:
    docs = [Document(text, id=f"doc-{i}", metadata={"n": i}) for i, text in enumerate(DOCS)]
    result = rerank(reranker(server), mode, docs=docs, top_n=3)
    best = expected_order(QUERY, DOCS)[:3]
    assert [d.id for d in result] == [f"doc-{i}" for i in best]
    assert [d.metadata for d in result] == [{"n": i} for i in best]


def test_duplicates_are_sent_once_and_all_returned(server: FakeServer, mode: str) -> None:
    docs = [DOCS[0], DOCS[1], DOCS[0], DOCS[2], DOCS[1]]
    result = rerank(reranker(server), mode, docs=docs)
    assert server.requests[0].documents == [DOCS[0], DOCS[1], DOCS[2]]
    assert sorted(d.index for d in result) == [0, 1, 2, 3, 4]
    assert {d.index: d.score for d in result}[2] == {d.index: d.score for d in result}[0]


def test_usage_is_reported(server: FakeServer, mode: str) -> None:
    result = rerank(reranker(server), mode)
    if server.vendor == "cohere":
        assert result.usage == Usage(search_units=1)
    elif server.vendor == "pinecone":
        assert result.usage == Usage(rerank_units=1)
    elif server.vendor in NO_USAGE:
        assert result.usage is None  # nothing reported is nothing invented
    else:
        assert result.usage == Usage(total_tokens=token_count(QUERY, DOCS))


def test_many_queries_in_one_call(server: FakeServer, mode: str) -> None:
    rr = reranker(server)
    queries = ["cat", "stock revenue", "dog tail"]
    docs = [DOCS, DOCS[:4], DOCS[3:]]
    results = rr.rerank_many(queries, docs) if mode == "sync" else asyncio.run(rr.arerank_many(queries, docs))
    for query, candidates, result in zip(queries, docs, results, strict=True):
        assert [d.index for d in result] == expected_order(query, candidates)
    assert len(server.requests) == 3


async def test_async_path_inside_a_running_loop(server: FakeServer) -> None:
    result = await reranker(server).arerank(QUERY, DOCS)
    assert [d.index for d in result] == expected_order(QUERY, DOCS)


# ------------------------------------------------------------------ configuration and keys


@pytest.mark.parametrize(
    ("model", "env"),
    [("cohere:rerank-v3.5", "CO_API_KEY or COHERE_API_KEY"), ("voyage:rerank-2.5", "VOYAGE_API_KEY"),
     ("jina:jina-reranker-v2-base-multilingual", "JINA_API_KEY or JINAAI_API_KEY")],
)
def test_missing_key_for_a_vendor_endpoint_names_the_env_vars(model: str, env: str) -> None:
    default_registry().close()
    with pytest.raises(AuthenticationError, match=env) as info:
        Reranker(model).rerank(QUERY, DOCS)
    assert info.value.vendor == model.split(":")[0]


@pytest.mark.parametrize(("vendor_name", "env"), [("cohere", "CO_API_KEY"), ("cohere", "COHERE_API_KEY"),
                                                  ("voyage", "VOYAGE_API_KEY"), ("jina", "JINAAI_API_KEY"),
                                                  ("vllm", "VLLM_API_KEY"), ("llamacpp", "LLAMACPP_API_KEY"),
                                                  ("infinity", "INFINITY_API_KEY")])
def test_key_is_read_from_the_environment(fake_servers: dict[str, FakeServer], monkeypatch: pytest.MonkeyPatch,
                                          vendor_name: str, env: str) -> None:
    fake = fake_servers[vendor_name]
    fake.reset()
    fake.api_key = TEST_KEY
    monkeypatch.setenv(env, TEST_KEY)
    default_registry().close()
    Reranker(spec(fake)).rerank(QUERY, DOCS)
    assert fake.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"


@pytest.mark.parametrize("name", ["cohere", "voyage"])
def test_sdk_backends_on_a_self_hosted_url_need_no_key(fake_servers: dict[str, FakeServer], name: str) -> None:
    """vLLM serves Cohere's /v2/rerank without auth; the SDKs insist on a key, so they get a placeholder."""
    fake = fake_servers[name]
    fake.reset()
    fake.api_key = None
    default_registry().close()
    result = Reranker(spec(fake)).rerank(QUERY, DOCS)
    assert len(result) == len(DOCS)
    assert fake.requests[0].headers["authorization"] == "Bearer EMPTY"


def test_self_hosted_jina_needs_no_key(fake_servers: dict[str, FakeServer]) -> None:
    fake = fake_servers["jina"]
    fake.reset()
    fake.api_key = None  # vLLM / Infinity without --api-key
    default_registry().close()
    result = Reranker(spec(fake)).rerank(QUERY, DOCS)
    assert len(result) == len(DOCS)
    assert "authorization" not in fake.requests[0].headers


@pytest.mark.parametrize(
    ("model", "match"),
    [("cohere:rerank-v3.5?max_doc_per_request=5", "valid options: .*max_docs_per_request"),
     ("tei:http://127.0.0.1:1?base_url=http://x", "unknown option 'base_url'"),
     ("voyage:rerank-2.5?timeout=-1", "timeout"),
     ("jina:m?max_concurrency=0", "max_concurrency")],
)
def test_bad_options_fail_at_construction(model: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        Reranker(model, api_key=TEST_KEY)


def test_tei_model_must_be_a_url() -> None:
    with pytest.raises(ConfigError, match="tei:http://"):
        Reranker("tei:BAAI/bge-reranker-base").rerank(QUERY, DOCS)
