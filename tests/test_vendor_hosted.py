"""Pinecone, ZeroEntropy and Mixedbread: what is specific to each hosted API, through the real SDKs.

The generic hosted tests (tests/test_hosted_*.py) run for these vendors too (they are in ``FAKES``):
faults, splitting, keys, adapters. Here: the exact request each SDK puts on the wire (path, auth
header, body), the options that reach it, per-model limits, key env vars, reading each vendor's
score field (``raw_score`` kept) and usage unit.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator

import pytest

from swaprank import (
    AuthenticationError,
    BackendUnavailableError,
    BadRequestError,
    ConfigError,
    Reranker,
    Usage,
    parse_spec,
)
from swaprank.backends import registry
from swaprank.backends.registry import default_registry
from tests.fakes import FakeServer, Fault, relevance
from tests.fakes.helpers import DOCS, QUERY, TEST_KEY, rerank, spec

pytest_plugins = ["tests.fakes.fixtures"]

MANY = [f"document {i} about cats and dogs" if i % 3 else f"note {i} on markets" for i in range(250)]


@pytest.fixture
def pinecone(fake_servers: dict[str, FakeServer]) -> Iterator[FakeServer]:
    yield from _fresh(fake_servers["pinecone"])


@pytest.fixture
def zeroentropy(fake_servers: dict[str, FakeServer]) -> Iterator[FakeServer]:
    yield from _fresh(fake_servers["zeroentropy"])


@pytest.fixture
def mixedbread(fake_servers: dict[str, FakeServer]) -> Iterator[FakeServer]:
    yield from _fresh(fake_servers["mixedbread"])


def _fresh(fake: FakeServer) -> Iterator[FakeServer]:
    fake.reset()
    fake.api_key = TEST_KEY
    yield fake
    assert not fake.errors, "the fake server itself failed:\n" + "\n".join(fake.errors)


# ------------------------------------------------------------------ Pinecone


def test_pinecone_request_is_the_inference_rerank_call(pinecone: FakeServer, mode: str) -> None:
    from pinecone._internal.constants import INFERENCE_API_VERSION

    rerank(Reranker(spec(pinecone), api_key=TEST_KEY), mode)
    [req] = pinecone.requests
    assert (req.method, req.path) == ("POST", "/rerank")
    assert req.headers["api-key"] == TEST_KEY
    assert "authorization" not in req.headers
    assert req.headers["x-pinecone-api-version"] == INFERENCE_API_VERSION
    assert "source_tag=swaprank" in req.headers["user-agent"]
    # No top_n: every score comes back, the engine applies top_n after merging split parts.
    assert req.body == {"model": "bge-reranker-v2-m3", "query": QUERY, "documents": [{"text": d} for d in DOCS],
                        "rank_fields": ["text"], "return_documents": False}


@pytest.mark.parametrize("truncate", ["END", "NONE"])
def test_pinecone_forwards_truncate_as_a_model_parameter(pinecone: FakeServer, truncate: str) -> None:
    Reranker(spec(pinecone, truncate=truncate), api_key=TEST_KEY).rerank(QUERY, DOCS)
    assert pinecone.requests[0].body["parameters"] == {"truncate": truncate}


def test_pinecone_truncate_none_surfaces_the_over_long_pair_and_end_lets_pinecone_cut(pinecone: FakeServer,
                                                                                       mode: str) -> None:
    pinecone.max_tokens = 6  # the fake's pair limit, far below the documented 1024: no client-side windows
    with pytest.raises(BadRequestError, match="exceeds the maximum token limit of 6") as info:
        rerank(Reranker(spec(pinecone, truncate="NONE"), api_key=TEST_KEY), mode)
    assert (info.value.vendor, info.value.status, info.value.attempts) == ("pinecone", 400, 1)
    assert info.value.request_id == pinecone.requests[0].request_id  # from x-pinecone-request-id
    result = rerank(Reranker(spec(pinecone, truncate="END"), api_key=TEST_KEY), mode)
    assert sorted(d.index for d in result) == list(range(len(DOCS)))
    assert pinecone.requests[-1].cut > 0


def test_pinecone_truncate_accepts_only_the_documented_values() -> None:
    with pytest.raises(ConfigError, match="truncate"):
        Reranker("pinecone:bge-reranker-v2-m3?truncate=START", api_key=TEST_KEY)


@pytest.mark.parametrize(("model", "parts"), [("bge-reranker-v2-m3", [50, 100, 100]),
                                              ("pinecone-rerank-v0", [50, 100, 100]),
                                              ("cohere-rerank-3.5", [50, 200])])
def test_pinecone_splits_at_the_models_documented_document_limit(pinecone: FakeServer, model: str,
                                                                 parts: list[int]) -> None:
    pinecone.max_docs = max(parts)  # the fake refuses more, like Pinecone does
    rr = Reranker(f"pinecone:{model}?base_url={pinecone.url}&max_retries=0", api_key=TEST_KEY)
    result = rr.rerank(QUERY, MANY)
    assert sorted(len(r.documents) for r in pinecone.requests) == parts
    assert sorted(d.index for d in result) == list(range(len(MANY)))
    # The fake bills like Pinecone: one rerank unit per 100 documents of a request.
    assert result.usage == Usage(rerank_units=sum(math.ceil(p / 100) for p in parts))


def test_pinecone_explicit_max_docs_per_request_wins_over_the_model_default(pinecone: FakeServer) -> None:
    Reranker(spec(pinecone, max_docs_per_request=3), api_key=TEST_KEY).rerank(QUERY, DOCS)
    assert sorted(len(r.documents) for r in pinecone.requests) == [2, 3, 3]


def test_pinecone_pair_limits_are_the_documented_ones() -> None:
    limits = {}
    for model in ("bge-reranker-v2-m3", "cohere-rerank-3.5", "pinecone-rerank-v0"):
        backend = registry.default_registry().acquire(parse_spec(f"pinecone:{model}"), api_key=TEST_KEY)
        limits[model] = backend.length_limit().tokens
    assert limits == {"bge-reranker-v2-m3": 1024, "cohere-rerank-3.5": 40_000, "pinecone-rerank-v0": 512}


# ------------------------------------------------------------------ ZeroEntropy


@pytest.mark.parametrize("suffix", ["", "/", "/v1"])
def test_zeroentropy_request_is_the_models_rerank_call(zeroentropy: FakeServer, suffix: str) -> None:
    Reranker(f"zeroentropy:zerank-1?base_url={zeroentropy.url}{suffix}&max_retries=0&timeout=7",
             api_key=TEST_KEY).rerank(QUERY, DOCS)
    [req] = zeroentropy.requests
    assert (req.method, req.path) == ("POST", "/v1/models/rerank")
    assert req.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert req.headers["x-stainless-retry-count"] == "0"
    assert float(req.headers["x-stainless-read-timeout"]) <= 7  # the attempt's timeout reached the SDK
    assert req.body == {"model": "zerank-1", "query": QUERY, "documents": DOCS}


def test_zeroentropy_forwards_latency(zeroentropy: FakeServer) -> None:
    Reranker(spec(zeroentropy, latency="slow"), api_key=TEST_KEY).rerank(QUERY, DOCS)
    assert zeroentropy.requests[0].body["latency"] == "slow"
    with pytest.raises(ConfigError, match="latency"):
        Reranker("zeroentropy:zerank-1?latency=auto", api_key=TEST_KEY)


# ------------------------------------------------------------------ Mixedbread


@pytest.mark.parametrize("suffix", ["", "/v1"])
def test_mixedbread_request_is_the_reranking_call(mixedbread: FakeServer, suffix: str) -> None:
    Reranker(f"mixedbread:mixedbread-ai/mxbai-rerank-large-v2?base_url={mixedbread.url}{suffix}&max_retries=0",
             api_key=TEST_KEY).rerank(QUERY, DOCS)
    [req] = mixedbread.requests
    assert (req.method, req.path) == ("POST", "/v1/reranking")
    assert req.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert req.headers["x-stainless-retry-count"] == "0"
    assert req.body == {"model": "mixedbread-ai/mxbai-rerank-large-v2", "query": QUERY, "input": DOCS,
                        "top_k": len(DOCS), "return_input": False}


def test_mixedbread_forwards_rewrite_query(mixedbread: FakeServer) -> None:
    Reranker(spec(mixedbread, rewrite_query=True), api_key=TEST_KEY).rerank(QUERY, DOCS)
    assert mixedbread.requests[0].body["rewrite_query"] is True


# ------------------------------------------------------------------ all three


ANSWERS = {
    # Each vendor's own field names, results out of document order, scores not from the fake's formula.
    "pinecone": {"model": "bge-reranker-v2-m3", "data": [{"index": 2, "score": 0.91}, {"index": 0, "score": 0.42},
                                                        {"index": 1, "score": 0.07}],
                 "usage": {"rerank_units": 1}},
    "zeroentropy": {"actual_latency_mode": "fast", "e2e_latency": 0.1, "inference_latency": 0.1, "total_bytes": 60,
                    "results": [{"index": 2, "relevance_score": 0.91}, {"index": 0, "relevance_score": 0.42},
                                {"index": 1, "relevance_score": 0.07}], "total_tokens": 17},
    "mixedbread": {"usage": {"prompt_tokens": 17, "total_tokens": 17}, "model": "m", "object": "list", "top_k": 3,
                   "return_input": False, "data": [{"index": 2, "score": 0.91, "object": "rank_result"},
                                                   {"index": 0, "score": 0.42, "object": "rank_result"},
                                                   {"index": 1, "score": 0.07, "object": "rank_result"}]},
}
USAGE = {"pinecone": Usage(rerank_units=1), "zeroentropy": Usage(total_tokens=17), "mixedbread": Usage(total_tokens=17)}


@pytest.mark.parametrize("vendor", list(ANSWERS))
def test_each_vendors_score_field_is_read_and_kept_as_raw_score(server: FakeServer, mode: str) -> None:
    server.script(Fault.json_body(ANSWERS[server.vendor]))
    result = rerank(Reranker(spec(server), api_key=TEST_KEY), mode, docs=DOCS[:3])
    assert [(d.index, d.score, d.raw_score) for d in result] == [(2, 0.91, 0.91), (0, 0.42, 0.42), (1, 0.07, 0.07)]
    assert result.usage == USAGE[server.vendor]


@pytest.mark.parametrize(("model", "env"), [("pinecone:bge-reranker-v2-m3", "PINECONE_API_KEY"),
                                            ("zeroentropy:zerank-1", "ZEROENTROPY_API_KEY"),
                                            ("mixedbread:mixedbread-ai/mxbai-rerank-large-v2", "MXBAI_API_KEY")])
def test_missing_key_names_the_env_var(model: str, env: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(env, raising=False)
    default_registry().close()
    with pytest.raises(AuthenticationError, match=env) as info:
        Reranker(model).rerank(QUERY, DOCS)
    assert (info.value.vendor, info.value.attempts) == (model.split(":")[0], 0)


@pytest.mark.parametrize("vendor", list(ANSWERS))
def test_key_is_read_from_the_vendors_env_var(server: FakeServer, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    env = {"pinecone": "PINECONE_API_KEY", "zeroentropy": "ZEROENTROPY_API_KEY", "mixedbread": "MXBAI_API_KEY"}
    monkeypatch.setenv(env[server.vendor], TEST_KEY)
    default_registry().close()
    caplog.set_level(logging.DEBUG)
    rr = Reranker(spec(server))
    result = rr.rerank(QUERY, DOCS)
    assert server.sent_key(server.requests[0].headers) == TEST_KEY
    assert next(iter(result)).index == max(range(len(DOCS)), key=lambda i: relevance(QUERY, DOCS[i]))
    backend = registry.default_registry().acquire(parse_spec(spec(server)))
    for text in (repr(rr), repr(backend), str(result), caplog.text):
        assert TEST_KEY not in text


@pytest.mark.parametrize(("vendor", "env", "suffix"), [("pinecone", "PINECONE_CONTROLLER_HOST", ""),
                                                       ("zeroentropy", "ZEROENTROPY_BASE_URL", "/v1"),
                                                       ("mixedbread", "MIXEDBREAD_BASE_URL", "")])
def test_the_sdks_host_env_var_never_redirects_the_key(server: FakeServer, monkeypatch: pytest.MonkeyPatch,
                                                       env: str, suffix: str) -> None:
    """Each SDK reads a base-URL env var when given none; we always pass the vendor's URL, so a stray
    (or planted) variable cannot send the key elsewhere. Offline, the vendor's host is unreachable."""
    monkeypatch.setenv(env, server.url + suffix)
    default_registry().close()
    model = spec(server).split("?")[0]
    with pytest.raises(BackendUnavailableError, match=r"connection failed|timed out"):
        Reranker(f"{model}?max_retries=0&timeout=3", api_key=TEST_KEY).rerank(QUERY, DOCS)
    assert server.requests == []
