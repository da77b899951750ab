"""NVIDIA NIM and Amazon Bedrock specifics: exact wire bodies, logits mapped once, NVCF queueing,
Bedrock's ARN and region handling, SigV4 signing, credentials kept out of sight, retries owned by
swaprank (boto3's own off), and the key routing of a mixed chain.

The generic hosted tests (tests/test_hosted_*.py) run these vendors through every fault already.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import re
import traceback
from typing import Any

import pytest

from swaprank import (
    AuthenticationError,
    BackendUnavailableError,
    BadRequestError,
    BadResponseError,
    ConfigError,
    RateLimitError,
    Reranker,
    parse_spec,
)
from swaprank.backends import registry
from swaprank.backends.bedrock import BedrockBackend, model_arn
from swaprank.backends.contract import sigmoid
from swaprank.backends.nvidia import NvidiaBackend, hosted_url, ranking_url
from swaprank.backends.registry import default_registry
from tests.fakes import FakeServer, Fault, relevance
from tests.fakes.helpers import DOCS, FAST, QUERY, TEST_KEY, rerank, spec
from tests.fakes.vendors_cloud import AWS_ACCESS_KEY_ID
from tests.fakes.vendors_selfhosted import logit

pytest_plugins = ["tests.fakes.fixtures"]  # fake servers: fake_servers, server, vendor, mode


def order(query: str = QUERY, docs: list[str] = DOCS) -> list[int]:
    return sorted(range(len(docs)), key=lambda i: (-relevance(query, docs[i]), i))


@pytest.fixture
def nvidia(fake_servers: dict[str, FakeServer]) -> FakeServer:
    fake = fake_servers["nvidia"]
    fake.reset()
    fake.api_key = TEST_KEY
    return fake


@pytest.fixture
def bedrock(fake_servers: dict[str, FakeServer]) -> FakeServer:
    fake = fake_servers["bedrock"]
    fake.reset()
    fake.api_key = TEST_KEY  # the secret access key the fake verifies signatures with
    return fake


def nvidia_spec(fake: FakeServer, **options: Any) -> str:
    return spec(fake, **options)


# ================================================================== NVIDIA


def test_nvidia_request_is_the_nim_ranking_call(nvidia: FakeServer) -> None:
    Reranker(nvidia_spec(nvidia), api_key=TEST_KEY).rerank(QUERY, DOCS)
    [req] = nvidia.requests
    assert (req.method, req.path) == ("POST", "/v1/ranking")
    assert req.headers["authorization"] == f"Bearer {TEST_KEY}"
    assert req.body == {"model": "nvidia/llama-3.2-nv-rerankqa-1b-v2", "query": {"text": QUERY},
                        "passages": [{"text": d} for d in DOCS]}  # no truncate unless asked: the server's default


@pytest.mark.parametrize("truncate", ["END", "NONE"])
def test_nvidia_truncate_is_forwarded(nvidia: FakeServer, truncate: str) -> None:
    Reranker(nvidia_spec(nvidia, truncate=truncate), api_key=TEST_KEY).rerank(QUERY, DOCS[:2])
    assert nvidia.requests[0].body["truncate"] == truncate


def test_nvidia_truncate_none_lets_the_server_reject_and_end_lets_it_cut(nvidia: FakeServer) -> None:
    nvidia.max_tokens = 4
    docs = ["cat dog one two three four", "a cat"]
    with pytest.raises(BadRequestError, match="exceeds maximum allowed token size 4"):
        Reranker(nvidia_spec(nvidia, truncate="NONE", long_docs="truncate"), api_key=TEST_KEY).rerank(QUERY, docs)
    result = Reranker(nvidia_spec(nvidia, truncate="END", long_docs="truncate"), api_key=TEST_KEY).rerank(QUERY, docs)
    assert len(result) == 2 and nvidia.requests[-1].cut == 1


def test_nvidia_bad_truncate_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="truncate"):
        Reranker("nvidia:nvidia/llama-3.2-nv-rerankqa-1b-v2?truncate=START", api_key=TEST_KEY)


def test_nvidia_logits_go_through_one_sigmoid(nvidia: FakeServer, mode: str) -> None:
    result = rerank(Reranker(nvidia_spec(nvidia), api_key=TEST_KEY), mode)  # the fake answers raw logits
    assert [d.index for d in result] == order()
    for doc in result:
        raw = logit(relevance(QUERY, doc.text))
        assert doc.raw_score == raw  # the server's value, kept
        assert doc.score == pytest.approx(sigmoid(raw))  # mapped once
        assert doc.score == pytest.approx(relevance(QUERY, doc.text))
    assert min(d.raw_score for d in result) < 0 and min(d.score for d in result) < 0.5  # sigmoid(sigmoid(x)) > 0.5


def test_nvidia_activation_identity_for_a_server_returning_unit_scores(nvidia: FakeServer) -> None:
    nvidia.unit_scores = True  # a server set up to answer [0, 1] scores: identity maps nothing
    result = Reranker(nvidia_spec(nvidia, activation="identity"), api_key=TEST_KEY).rerank(QUERY, DOCS)
    assert [d.score for d in result] == [d.raw_score for d in result]
    assert [d.score for d in result] == sorted((relevance(QUERY, d) for d in DOCS), reverse=True)


def test_nvidia_identity_on_real_logits_is_a_typed_error(nvidia: FakeServer) -> None:
    """A wrong activation=identity never passes logits off as [0, 1] scores."""
    with pytest.raises(BadResponseError, match=r"outside \[0, 1\]"):
        Reranker(nvidia_spec(nvidia, activation="identity"), api_key=TEST_KEY).rerank(QUERY, DOCS)


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/ranking"])
def test_nvidia_self_hosted_base_url_forms(nvidia: FakeServer, suffix: str) -> None:
    nvidia.api_key = None  # a NIM container without auth
    default_registry().close()
    result = Reranker(f"nvidia:nvidia/llama-3.2-nv-rerankqa-1b-v2?base_url={nvidia.url}{suffix}&max_retries=0"
                      ).rerank(QUERY, DOCS)
    assert [d.index for d in result] == order()
    assert nvidia.requests[0].path == "/v1/ranking"
    assert "authorization" not in nvidia.requests[0].headers  # no key given, none sent


@pytest.mark.parametrize(
    ("model", "url"),
    [("nvidia/llama-3.2-nv-rerankqa-1b-v2",
      "https://ai.api.nvidia.com/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking"),
     ("nvidia/llama-nemotron-rerank-1b-v2",
      "https://ai.api.nvidia.com/v1/retrieval/nvidia/llama-nemotron-rerank-1b-v2/reranking"),
     ("nv-rerank-qa-mistral-4b:1", "https://ai.api.nvidia.com/v1/retrieval/nvidia/reranking")],
)
def test_nvidia_hosted_routes(model: str, url: str) -> None:
    assert hosted_url(model) == url
    backend = NvidiaBackend(parse_spec(f"nvidia:{model}"), api_key=TEST_KEY)
    assert backend.url == url


def test_nvidia_ranking_url_forms() -> None:
    assert ranking_url("http://nim:8000") == "http://nim:8000/v1/ranking"
    assert ranking_url("http://nim:8000/v1/") == "http://nim:8000/v1/ranking"
    assert ranking_url("https://ai.api.nvidia.com/v1/retrieval/x/y/reranking").endswith("/y/reranking")


def test_nvidia_hosted_endpoint_needs_a_key() -> None:
    default_registry().close()
    with pytest.raises(AuthenticationError, match="NVIDIA_API_KEY"):
        Reranker("nvidia:nvidia/llama-3.2-nv-rerankqa-1b-v2").rerank(QUERY, DOCS)


def test_nvidia_key_from_the_environment(nvidia: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NVIDIA_API_KEY", TEST_KEY)
    default_registry().close()
    Reranker(nvidia_spec(nvidia)).rerank(QUERY, DOCS)
    assert nvidia.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"


def test_nvidia_queued_request_is_polled_within_the_attempt(nvidia: FakeServer, mode: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """NVIDIA Cloud Functions may answer 202 + NVCF-REQID; the result is fetched from its status route."""
    monkeypatch.setattr("swaprank.backends.nvidia.NVCF_STATUS_URL", nvidia.url + "/v2/nvcf/pexec/status/{request_id}")
    monkeypatch.setattr("swaprank.backends.nvidia.POLL_INTERVAL", 0.01)
    nvidia.queue = 1
    result = rerank(Reranker(nvidia_spec(nvidia), api_key=TEST_KEY), mode)
    assert [d.index for d in result] == order()
    assert len(nvidia.requests) == 1  # polled, not re-sent
    assert nvidia.gets == [f"/v2/nvcf/pexec/status/{nvidia.requests[0].request_id}"]


# ================================================================== Bedrock


def bedrock_spec(fake: FakeServer, model: str = "amazon.rerank-v1:0", **options: Any) -> str:
    opts = {"base_url": fake.url, "region": "us-west-2", **FAST, **options}
    return f"bedrock:{model}?" + "&".join(f"{k}={v}" for k, v in opts.items())


def expected_body(model_arn_: str, docs: list[str] = DOCS, query: str = QUERY) -> dict[str, Any]:
    return {
        "queries": [{"type": "TEXT", "textQuery": {"text": query}}],
        "sources": [{"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": d}}}
                    for d in docs],
        "rerankingConfiguration": {"type": "BEDROCK_RERANKING_MODEL", "bedrockRerankingConfiguration": {
            "numberOfResults": len(docs), "modelConfiguration": {"modelArn": model_arn_}}},
    }


def test_bedrock_request_is_the_signed_rerank_call(bedrock: FakeServer, mode: str) -> None:
    result = rerank(Reranker(bedrock_spec(bedrock)), mode)
    assert [d.index for d in result] == order()
    assert [d.score for d in result] == [d.raw_score for d in result]  # relevanceScore is on [0, 1] already
    [req] = bedrock.requests
    assert (req.method, req.path) == ("POST", "/rerank")
    assert req.body == expected_body("arn:aws:bedrock:us-west-2::foundation-model/amazon.rerank-v1:0")
    assert re.fullmatch(rf"AWS4-HMAC-SHA256 Credential={AWS_ACCESS_KEY_ID}/\d{{8}}/us-west-2/bedrock/aws4_request, "
                        r"SignedHeaders=[a-z0-9;-]+, Signature=[0-9a-f]{64}", req.headers["authorization"])
    assert "x-amz-date" in req.headers
    assert bedrock.sent_key(req.headers) == TEST_KEY  # the fake recomputed the signature with the secret
    assert result.usage is None  # Bedrock reports no usage


def test_bedrock_cohere_model_and_full_arn(bedrock: FakeServer) -> None:
    Reranker(bedrock_spec(bedrock, "cohere.rerank-v3-5:0")).rerank(QUERY, DOCS[:3])
    arn = "arn:aws:bedrock:us-west-2::foundation-model/cohere.rerank-v3-5:0"
    assert bedrock.requests[0].body == expected_body(arn, DOCS[:3])
    own = "arn:aws:bedrock:eu-central-1::foundation-model/amazon.rerank-v1:0"
    Reranker(bedrock_spec(bedrock, own)).rerank(QUERY, DOCS[:3])
    assert bedrock.requests[1].body == expected_body(own, DOCS[:3])


@pytest.mark.parametrize(("env", "region"), [
    ({"AWS_REGION": "eu-central-1"}, "eu-central-1"),
    ({"AWS_DEFAULT_REGION": "ap-northeast-1"}, "ap-northeast-1"),
    ({"AWS_REGION": "ca-central-1", "AWS_DEFAULT_REGION": "us-east-1"}, "ca-central-1"),  # AWS_REGION first
])
def test_bedrock_region_from_the_environment(bedrock: FakeServer, monkeypatch: pytest.MonkeyPatch,
                                             env: dict[str, str], region: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    default_registry().close()
    Reranker(f"bedrock:amazon.rerank-v1:0?base_url={bedrock.url}&max_retries=0").rerank(QUERY, DOCS[:2])
    [req] = bedrock.requests
    assert f"/{region}/bedrock/aws4_request" in req.headers["authorization"]  # signed for that region
    arn = req.body["rerankingConfiguration"]["bedrockRerankingConfiguration"]["modelConfiguration"]["modelArn"]
    assert arn == f"arn:aws:bedrock:{region}::foundation-model/amazon.rerank-v1:0"


def test_bedrock_option_region_wins_and_partitions_follow_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    backend = BedrockBackend(parse_spec("bedrock:amazon.rerank-v1:0?region=us-west-2"))
    assert backend.model_arn == "arn:aws:bedrock:us-west-2::foundation-model/amazon.rerank-v1:0"
    china = BedrockBackend(parse_spec("bedrock:amazon.rerank-v1:0?region=cn-north-1"))
    assert china.model_arn.startswith("arn:aws-cn:bedrock:cn-north-1::")


@pytest.mark.parametrize("options", ["region=us west 2", "region=us-west-2&base_url=not a url"])
def test_bedrock_malformed_region_or_endpoint_is_a_config_error(options: str) -> None:
    with pytest.raises(ConfigError, match="bedrock"):
        BedrockBackend(parse_spec(f"bedrock:amazon.rerank-v1:0?{options}"))


def test_bedrock_without_a_region_is_a_config_error() -> None:
    default_registry().close()
    with pytest.raises(ConfigError, match="AWS_REGION"):
        Reranker("bedrock:amazon.rerank-v1:0").rerank(QUERY, DOCS)


@pytest.mark.parametrize("model", ["rerank-v3.5", "foundation-model/amazon.rerank-v1:0"])
def test_bedrock_bad_model_id_is_a_config_error(model: str) -> None:
    with pytest.raises(ConfigError, match="model id"):
        model_arn(model, "us-west-2")


def test_bedrock_unknown_profile_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no-such-profile"):
        BedrockBackend(parse_spec("bedrock:amazon.rerank-v1:0?region=us-west-2&profile=no-such-profile"))


def test_bedrock_without_credentials_is_an_authentication_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    default_registry().close()
    with pytest.raises(AuthenticationError, match="no AWS credentials") as info:
        Reranker("bedrock:amazon.rerank-v1:0?region=us-west-2").rerank(QUERY, DOCS)
    assert info.value.vendor == "bedrock"


def test_bedrock_throttling_is_retried_then_a_rate_limit_error(bedrock: FakeServer, mode: str) -> None:
    bedrock.script(Fault.rate_limited(), Fault.rate_limited())
    assert [d.index for d in rerank(Reranker(bedrock_spec(bedrock)), mode)] == order()
    assert [r.status for r in bedrock.requests] == [429, 429, 200]
    bedrock.reset()
    bedrock.api_key = TEST_KEY
    bedrock.script(*[Fault.rate_limited()] * 3)
    with pytest.raises(RateLimitError, match="ThrottlingException: rate limit exceeded") as info:
        rerank(Reranker(bedrock_spec(bedrock, max_retries=2)), mode)
    assert (info.value.status, info.value.attempts) == (429, 3)
    assert info.value.request_id == bedrock.requests[-1].request_id  # from x-amzn-RequestId
    assert len(bedrock.requests) == 3


@pytest.mark.parametrize("status", [429, 500, 503])
def test_bedrock_sdk_retries_are_off(bedrock: FakeServer, status: int) -> None:
    """botocore would retry these itself; with max_retries=0 exactly one request must go out."""
    bedrock.script(*[Fault.status_code(status)] * 5)
    with pytest.raises(RateLimitError if status == 429 else BackendUnavailableError) as info:
        Reranker(bedrock_spec(bedrock, max_retries=0)).rerank(QUERY, DOCS)
    assert (info.value.status, info.value.attempts) == (status, 1)
    assert len(bedrock.requests) == 1


def test_bedrock_validation_error_is_a_bad_request(bedrock: FakeServer) -> None:
    bedrock.script(Fault.status_code(400))
    with pytest.raises(BadRequestError, match="ValidationException: upstream failure 400") as info:
        Reranker(bedrock_spec(bedrock)).rerank(QUERY, DOCS)
    assert info.value.attempts == 1 and len(bedrock.requests) == 1


def test_bedrock_empty_text_is_a_bad_request_not_sent(bedrock: FakeServer) -> None:
    """The service model wants texts of 1+ characters; botocore refuses before sending: not retried."""
    with pytest.raises(BadRequestError, match="min length: 1") as info:
        Reranker(bedrock_spec(bedrock)).rerank(QUERY, ["", "a cat"])
    assert info.value.attempts == 1 and bedrock.requests == []


def test_bedrock_splits_at_1000_sources_by_default(bedrock: FakeServer) -> None:
    bedrock.max_docs = 1000  # the service model's RerankSourcesList maximum
    docs = [f"note {i} about a cat" for i in range(1001)]
    result = Reranker(bedrock_spec(bedrock)).rerank(QUERY, docs)
    assert sorted(len(r.documents) for r in bedrock.requests) == [1, 1000]
    assert sorted(d.index for d in result) == list(range(1001))


def test_bedrock_follows_next_token_pages(bedrock: FakeServer) -> None:
    bedrock.page_size = 3
    result = Reranker(bedrock_spec(bedrock)).rerank(QUERY, DOCS)
    assert [d.index for d in result] == order()
    assert [r.body.get("nextToken") for r in bedrock.requests] == [None, "page-3", "page-6"]
    assert all(r.body["sources"] == bedrock.requests[0].body["sources"] for r in bedrock.requests)


SESSION_TOKEN = "FwoGZXIvYXdzEFAKE-session-token-swaprank-0123456789"


def test_bedrock_credentials_never_shown(bedrock: FakeServer, mode: str, monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> None:
    """Secret key and session token: not in errors, tracebacks, reprs, pickles, nor botocore's DEBUG logs."""
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    caplog.set_level(logging.DEBUG)  # botocore logs signed headers and response bodies at DEBUG
    default_registry().close()
    echo = Fault.json_body({"message": f"bad token {SESSION_TOKEN} for secret {TEST_KEY}"}, status=403)
    bedrock.script(echo)
    rr = Reranker(bedrock_spec(bedrock))
    with pytest.raises(AuthenticationError) as info:
        rerank(rr, mode)
    assert "bad token *** for secret ***" in str(info.value)
    result = rerank(rr, mode)  # and a successful call
    assert bedrock.requests[-1].headers["x-amz-security-token"] == SESSION_TOKEN  # it was really sent (and signed)
    assert bedrock.sent_key(bedrock.requests[-1].headers) == TEST_KEY
    backend = registry.default_registry().acquire(parse_spec(bedrock_spec(bedrock)))
    error = info.value
    texts = [str(error), repr(error), "".join(traceback.format_exception(error)), repr(pickle.dumps(error)),
             repr(rr), str(result), repr(backend), caplog.text, *[r.getMessage() for r in caplog.records],
             *capsys.readouterr()]
    assert any("Authorization" in t or "authorization" in t for t in texts[7:]), "botocore DEBUG logs were not seen"
    for text in texts:
        assert SESSION_TOKEN not in text and TEST_KEY not in text, text[:300]


def test_bedrock_and_cohere_chain_routes_one_key_to_cohere(bedrock: FakeServer,
                                                           fake_servers: dict[str, FakeServer]) -> None:
    """Bedrock takes no api_key: the single key of 'bedrock | cohere' is Cohere's, and only Cohere sees it."""
    cohere = fake_servers["cohere"]
    cohere.reset()
    cohere.api_key = TEST_KEY
    bedrock.script(*[Fault.server_error(503)] * 3)
    chain = f"{bedrock_spec(bedrock)} | {spec(cohere)}"
    result = Reranker(chain, api_key=TEST_KEY).rerank(QUERY, DOCS)
    assert result.model.startswith("cohere:")
    assert cohere.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert all(TEST_KEY not in str(r.headers) for r in bedrock.requests)  # signed, the secret never sent
    assert len(bedrock.requests) == 3


def test_bedrock_async_calls_run_concurrently_off_the_loop(bedrock: FakeServer) -> None:
    bedrock.latency = 0.15
    docs = [f"cat note {i}" for i in range(12)]
    rr = Reranker(bedrock_spec(bedrock, max_docs_per_request=3, max_concurrency=4))

    async def main() -> list[int]:
        ticks_during_requests = 0

        async def ticker() -> None:
            nonlocal ticks_during_requests
            while True:
                await asyncio.sleep(0.01)
                if bedrock._inflight:  # the server is answering a boto3 call right now
                    ticks_during_requests += 1

        task = asyncio.create_task(ticker())
        result = await rr.arerank("cat", docs)
        task.cancel()
        # The loop kept running while boto3 blocked its worker threads: a blocked loop could not tick
        # while a request was in flight at all (counted by state, not by a wall-clock budget).
        assert ticks_during_requests >= 1
        return [d.index for d in result]

    assert sorted(asyncio.run(main())) == list(range(12))
    assert bedrock.max_inflight == 4
