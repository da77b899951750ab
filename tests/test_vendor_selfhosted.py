"""vLLM, llama.cpp and Infinity: what is specific to each self-hosted server, against fakes of their wire formats.

The generic hosted tests (tests/test_hosted_*.py) run for these vendors too (they are in ``FAKES``):
faults, splitting, keys, adapters. Here: the exact request bodies, the options that reach the wire
(``truncate_prompt_tokens``, ``endpoint=score``), the score mapping (llama.cpp's logits through one
sigmoid), usage, and over-long documents against servers that reject them.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator

import pytest

from swaprank import BackendUnavailableError, BadRequestError, BadResponseError, ConfigError, Reranker, Usage
from swaprank.backends.contract import sigmoid
from swaprank.backends.registry import default_registry
from swaprank.backends.vllm import vllm_url
from tests.fakes import FakeServer, Fault, relevance, token_count
from tests.fakes.helpers import DOCS, QUERY, TEST_KEY, rerank, spec
from tests.fakes.vendors_selfhosted import FakeVLLMScore, logit

pytest_plugins = ["tests.fakes.fixtures"]

LIMIT = 60  # whitespace tokens per (query, document) pair the fakes accept when max_tokens is set
ANSWER = "the cat and the dog are friends"
WORDS = ["cell", "protein", "study", "patients", "analysis", "levels", "results", "model", "data", "gene"]


def filler(words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


def long_docs() -> list[str]:
    """Three documents far over LIMIT; the first hides the answer in its middle."""
    return [filler(50, 5) + " " + ANSWER + " " + filler(50, 6), filler(110, 7), "a cat naps", filler(105, 8)]


def expected_order(query: str, docs: list[str]) -> list[int]:
    return sorted(range(len(docs)), key=lambda i: (-relevance(query, docs[i]), i))


@pytest.fixture
def score_server() -> Iterator[FakeServer]:
    with FakeVLLMScore() as fake:
        yield fake
        assert not fake.errors, "the fake server itself failed:\n" + "\n".join(fake.errors)


# ------------------------------------------------------------------ configuration


@pytest.mark.parametrize("name", ["vllm:m", "llamacpp", "infinity:m"])
def test_base_url_is_required(name: str) -> None:
    with pytest.raises(ConfigError, match=r"self-hosted: give the server's address as base_url"):
        Reranker(name).rerank(QUERY, DOCS)


@pytest.mark.parametrize("name", ["vllm:m", "llamacpp", "infinity:m"])
def test_a_malformed_base_url_is_refused_without_echoing_it(name: str) -> None:
    with pytest.raises(ConfigError, match="without http") as info:
        Reranker(f"{name}?base_url=user:s3cret@host:8000").rerank(QUERY, DOCS)
    assert "s3cret" not in str(info.value)


def test_vllm_endpoint_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"endpoint.*rerank, score"):
        Reranker("vllm:m?base_url=http://127.0.0.1:1&endpoint=classify")


@pytest.mark.parametrize("vendor", ["vllm", "llamacpp", "infinity"])
def test_no_key_is_needed_nor_sent(fake_servers: dict[str, FakeServer], vendor: str) -> None:
    fake = fake_servers[vendor]
    fake.reset()
    fake.api_key = None  # started without --api-key
    default_registry().close()
    result = Reranker(spec(fake)).rerank(QUERY, DOCS)
    assert [d.index for d in result] == expected_order(QUERY, DOCS)
    assert "authorization" not in fake.requests[0].headers


# ------------------------------------------------------------------ vLLM


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/rerank"])
def test_vllm_rerank_request(fake_servers: dict[str, FakeServer], suffix: str) -> None:
    fake = fake_servers["vllm"]
    fake.reset()
    Reranker(f"vllm:BAAI/bge-reranker-v2-m3?base_url={fake.url}{suffix}&max_retries=0").rerank(QUERY, DOCS)
    [req] = fake.requests
    assert (req.method, req.path) == ("POST", "/v1/rerank")
    # No return_documents: not a field of vLLM's RerankRequest (it would log it as ignored).
    assert req.body == {"model": "BAAI/bge-reranker-v2-m3", "query": QUERY, "documents": DOCS, "top_n": len(DOCS)}


@pytest.mark.parametrize(("base_url", "endpoint", "url"), [
    ("http://h:8000", "rerank", "http://h:8000/v1/rerank"), ("http://h:8000/v1/", "rerank", "http://h:8000/v1/rerank"),
    ("http://h:8000/rerank", "rerank", "http://h:8000/v1/rerank"), ("http://h:8000", "score", "http://h:8000/score"),
    ("http://h:8000/v1", "score", "http://h:8000/v1/score"), ("http://h:8000/v1/rerank", "score", "http://h:8000/v1/score"),
])
def test_vllm_routes_from_base_url(base_url: str, endpoint: str, url: str) -> None:
    assert vllm_url(base_url, endpoint) == url  # vLLM serves /rerank, /v1/rerank, /score and /v1/score


def test_vllm_score_endpoint(score_server: FakeServer, mode: str) -> None:
    model = f"vllm:BAAI/bge-reranker-v2-m3?base_url={score_server.url}&endpoint=score&max_retries=0"
    result = rerank(Reranker(model), mode, top_n=3)
    [req] = score_server.requests
    assert (req.method, req.path) == ("POST", "/score")
    assert req.body == {"model": "BAAI/bge-reranker-v2-m3", "text_1": QUERY, "text_2": DOCS}
    assert [d.index for d in result] == expected_order(QUERY, DOCS)[:3]
    assert [d.score for d in result] == [d.raw_score for d in result] == [
        relevance(QUERY, DOCS[i]) for i in expected_order(QUERY, DOCS)[:3]]
    assert result.usage == Usage(total_tokens=token_count(QUERY, DOCS))


def test_vllm_score_endpoint_splits_and_forwards_truncation(score_server: FakeServer) -> None:
    docs = [f"{text} number {i}" for i, text in enumerate(DOCS * 3)]
    rr = Reranker(f"vllm:m?base_url={score_server.url}&endpoint=score&max_docs_per_request=10"
                  f"&truncate_prompt_tokens=128")
    result = rr.rerank(QUERY, docs)
    assert sorted(len(r.body["text_2"]) for r in score_server.requests) == [4, 10, 10]
    assert all(r.body["truncate_prompt_tokens"] == 128 for r in score_server.requests)
    assert [d.index for d in result] == expected_order(QUERY, docs)
    assert result.usage == Usage(total_tokens=token_count(QUERY, docs))


def test_vllm_malformed_score_answer_is_a_bad_response(score_server: FakeServer) -> None:
    score_server.script(Fault.missing_score())
    with pytest.raises(BadResponseError, match="score=None, not a finite number") as info:
        Reranker(f"vllm:m?base_url={score_server.url}&endpoint=score").rerank(QUERY, DOCS)
    assert (info.value.vendor, info.value.status) == ("vllm", 200)


@pytest.mark.parametrize("vendor", ["vllm"])
def test_vllm_windows_within_the_max_model_len_it_reports(server: FakeServer, mode: str) -> None:
    server.max_tokens = LIMIT  # vLLM answers 400 past --max-model-len
    default_registry().close()  # a backend asks /v1/models once in its life: start from a new one
    docs = long_docs()
    result = rerank(Reranker(spec(server), api_key=TEST_KEY), mode, "cat dog", docs, top_n=None)
    assert sorted(d.index for d in result) == list(range(len(docs)))
    assert result[0].index == 0 and result.windowed == 3 and result[0].windows > 1
    assert all(r.status == 200 for r in server.requests)
    assert server.gets == ["/v1/models"]


@pytest.mark.parametrize("vendor", ["vllm"])
def test_vllm_without_a_known_limit_the_rejection_is_a_typed_error(
        server: FakeServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    server.max_tokens = LIMIT
    default_registry().close()
    monkeypatch.setattr(type(server), "get", lambda self, path: None)  # a proxy without /v1/models: 404
    caplog.set_level(logging.WARNING, logger="swaprank")
    with pytest.raises(BadRequestError, match="maximum context length is 60 tokens"):
        Reranker(spec(server, max_retries=0), api_key=TEST_KEY).rerank("cat dog", long_docs())
    [post] = [r for r in server.requests if r.method == "POST"]  # the 404ed GET is recorded too
    assert "truncate_prompt_tokens" not in post.body
    assert any("vllm /v1/models unavailable" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("vendor", ["vllm"])
def test_vllm_truncate_prompt_tokens_has_the_server_cut(server: FakeServer) -> None:
    server.max_tokens = LIMIT
    default_registry().close()
    rr = Reranker(spec(server, truncate_prompt_tokens=LIMIT, long_docs="truncate"), api_key=TEST_KEY)
    result = rr.rerank("cat dog", long_docs())
    assert len(result) == 4 and server.requests[0].body["truncate_prompt_tokens"] == LIMIT
    assert server.requests[0].cut == 3  # the server cut them, as asked
    assert server.gets == []  # the server cuts: no client-side limit is needed


@pytest.mark.parametrize("vendor", ["vllm"])
def test_vllm_max_length_windows_what_the_server_would_reject(server: FakeServer, mode: str) -> None:
    server.max_tokens = LIMIT  # vLLM answers 400 past --max-model-len
    docs = long_docs()
    result = rerank(Reranker(spec(server, max_length=LIMIT), api_key=TEST_KEY), mode, "cat dog", docs, top_n=None)
    assert sorted(d.index for d in result) == list(range(len(docs)))
    assert result[0].index == 0 and result.windowed == 3 and result[0].windows > 1
    sent = [d for r in server.requests for d in r.documents]
    assert all(len(d.split()) + 2 <= LIMIT for d in sent)
    assert all(r.status == 200 for r in server.requests)
    assert result.usage == Usage(total_tokens=sum(len(d.split()) + 2 for d in sent))


@pytest.mark.parametrize("vendor", ["vllm"])
def test_vllm_logits_are_mapped_only_when_asked(server: FakeServer) -> None:
    answer = {"id": "r", "model": "m", "usage": {"total_tokens": 9},
              "results": [{"index": 1, "relevance_score": 2.5}, {"index": 0, "relevance_score": -1.0}]}
    server.script(Fault.json_body(answer), Fault.json_body(answer))
    with pytest.raises(BadResponseError, match="outside"):  # identity: logits are not passed off as [0, 1]
        Reranker(spec(server), api_key=TEST_KEY).rerank(QUERY, DOCS[:2])
    mapped = Reranker(spec(server, activation="sigmoid"), api_key=TEST_KEY).rerank(QUERY, DOCS[:2])
    assert [(d.index, d.score, d.raw_score) for d in mapped] == [(1, sigmoid(2.5), 2.5), (0, sigmoid(-1.0), -1.0)]


# ------------------------------------------------------------------ llama.cpp


@pytest.mark.parametrize("suffix", ["", "/v1", "/v1/rerank"])
def test_llamacpp_request(fake_servers: dict[str, FakeServer], suffix: str) -> None:
    fake = fake_servers["llamacpp"]
    fake.reset()
    Reranker(f"llamacpp?base_url={fake.url}{suffix}&max_retries=0").rerank(QUERY, DOCS)
    [req] = fake.requests
    assert (req.method, req.path) == ("POST", "/v1/rerank")
    assert req.body == {"model": "default", "query": QUERY, "documents": DOCS, "top_n": len(DOCS)}
    assert fake.gets == ["/props"]  # the pair limit, asked at the server root whatever the suffix


@pytest.mark.parametrize("vendor", ["llamacpp"])
def test_llamacpp_logits_go_through_one_sigmoid(server: FakeServer, mode: str) -> None:
    result = rerank(Reranker(spec(server), api_key=TEST_KEY), mode)
    assert [d.index for d in result] == expected_order(QUERY, DOCS)
    for doc in result:
        p = relevance(QUERY, DOCS[doc.index])
        assert doc.raw_score == logit(p)  # the server's value, untouched
        assert doc.score == pytest.approx(p, abs=1e-9)  # sigmoid(logit(p)): once, not sigmoid(sigmoid(...))
        assert 0.0 <= doc.score <= 1.0
    assert result.usage == Usage(total_tokens=token_count(QUERY, DOCS))


@pytest.mark.parametrize("vendor", ["llamacpp"])
def test_llamacpp_activation_identity_for_a_model_that_ends_in_a_sigmoid(server: FakeServer) -> None:
    answer = {"model": "m", "object": "list", "usage": {"prompt_tokens": 5, "total_tokens": 5},
              "results": [{"index": 0, "relevance_score": 0.25}, {"index": 1, "relevance_score": 0.75}]}
    server.script(Fault.json_body(answer))
    result = Reranker(spec(server, activation="identity"), api_key=TEST_KEY).rerank(QUERY, DOCS[:2])
    assert [(d.index, d.score, d.raw_score) for d in result] == [(1, 0.75, 0.75), (0, 0.25, 0.25)]
    assert result.usage == Usage(total_tokens=5)


@pytest.mark.parametrize("vendor", ["llamacpp"])
def test_llamacpp_windows_long_documents_within_the_context_props_reports(server: FakeServer, mode: str) -> None:
    server.max_tokens = LIMIT  # one pair over it would fail the whole request with 500
    default_registry().close()  # a backend asks /props once in its life: start from a new one
    docs = long_docs()
    result = rerank(Reranker(spec(server), api_key=TEST_KEY), mode, "cat dog", docs, top_n=None)
    assert sorted(d.index for d in result) == list(range(len(docs)))
    assert result[0].index == 0  # the windowed answer beats the short but irrelevant document
    assert result.windowed == 3 and result[0].windows > 1
    assert result[0].score == pytest.approx(relevance("cat dog", ANSWER), abs=0.02)
    sent = [d for r in server.requests for d in r.documents]
    assert all(len(d.split()) + 2 <= LIMIT for d in sent)
    assert all(r.status == 200 for r in server.requests)
    assert server.gets == ["/props"]  # asked once per backend


@pytest.mark.parametrize("vendor", ["llamacpp"])
def test_llamacpp_max_length_wins_over_props(server: FakeServer) -> None:
    server.max_tokens = LIMIT
    server.n_ctx = 4096  # type: ignore[attr-defined]  # the server's context; the batch is what rejects
    docs = long_docs()
    result = Reranker(spec(server, max_length=LIMIT), api_key=TEST_KEY).rerank("cat dog", docs)
    assert sorted(d.index for d in result) == list(range(len(docs))) and result.windowed == 3
    assert server.gets == []  # an explicit limit needs no question
    assert all(r.status == 200 for r in server.requests)


@pytest.mark.parametrize("vendor", ["llamacpp"])
def test_llamacpp_without_props_a_long_pair_fails_the_request_and_says_why(
        server: FakeServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    server.max_tokens = LIMIT
    default_registry().close()
    monkeypatch.setattr(type(server), "get", lambda self, path: None)  # --no-endpoint-props: 404
    caplog.set_level(logging.WARNING, logger="swaprank")
    rr = Reranker(spec(server, max_retries=1), api_key=TEST_KEY)
    with pytest.raises(BackendUnavailableError, match="too large to process") as info:
        rr.rerank("cat dog", long_docs())
    assert info.value.status == 500
    warnings = [r.getMessage() for r in caplog.records if "/props unavailable" in r.getMessage()]
    assert len(warnings) == 1 and "set max_length" in warnings[0]
    assert TEST_KEY not in caplog.text
    # Asked again only after a pause: a second call does not repeat the question (nor the warning).
    with pytest.raises(BackendUnavailableError):
        rr.rerank("cat dog", long_docs())
    assert len([r for r in caplog.records if "/props unavailable" in r.getMessage()]) == 1


# ------------------------------------------------------------------ Infinity


@pytest.mark.parametrize("suffix", ["", "/", "/rerank"])
def test_infinity_request(fake_servers: dict[str, FakeServer], suffix: str) -> None:
    fake = fake_servers["infinity"]
    fake.reset()
    result = Reranker(f"infinity:mixedbread-ai/mxbai-rerank-xsmall-v1?base_url={fake.url}{suffix}"
                      f"&max_retries=0").rerank(QUERY, DOCS)
    [req] = fake.requests
    assert (req.method, req.path) == ("POST", "/rerank")
    assert req.body == {"query": QUERY, "documents": DOCS, "return_documents": False,
                        "model": "mixedbread-ai/mxbai-rerank-xsmall-v1", "top_n": len(DOCS)}
    assert [d.score for d in result] == [d.raw_score for d in result]  # already sigmoid probabilities
    assert result.usage == Usage(total_tokens=token_count(QUERY, DOCS))


@pytest.mark.parametrize("vendor", ["infinity"])
def test_infinity_splits_at_its_client_batch_limit(server: FakeServer) -> None:
    docs = [f"document {i} about cats" for i in range(2100)]
    result = Reranker(spec(server), api_key=TEST_KEY).rerank(QUERY, docs)
    assert sorted(len(r.documents) for r in server.requests) == [52, 2048]  # INFINITY_MAX_CLIENT_BATCH_SIZE
    assert sorted(d.index for d in result) == list(range(2100))
