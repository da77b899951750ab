"""Fallback chains and passthrough with hosted backends.

When a hosted model fails after its retries, the next spec of the chain reranks the same input
and the result says which spec served it; when every spec fails, ``on_error="passthrough"``
keeps the input order, flagged. No input document is ever lost.
"""

from __future__ import annotations

import asyncio

import pytest

from swaprank import AuthenticationError, BackendUnavailableError, BadResponseError, Reranker, format_spec, parse_spec
from swaprank.backends.registry import default_registry
from tests.fakes import FakeServer, Fault, relevance
from tests.fakes.helpers import DOCS, QUERY, TEST_KEY, spec

pytest_plugins = ["tests.fakes.fixtures"]  # fake servers: fake_servers, server, vendor, mode


@pytest.fixture
def fakes(fake_servers: dict[str, FakeServer]) -> dict[str, FakeServer]:
    for name, fake in fake_servers.items():
        fake.reset()
        fake.api_key = None if name == "tei" else TEST_KEY
    return fake_servers


def run(rr: Reranker, mode: str, top_n: int | None = None) -> list:
    return rr.rerank(QUERY, DOCS, top_n=top_n) if mode == "sync" else asyncio.run(rr.arerank(QUERY, DOCS, top_n=top_n))


def canonical(text: str) -> str:
    return format_spec(parse_spec(text))


def test_failing_vendor_falls_back_to_the_next_spec(fakes: dict[str, FakeServer], mode: str) -> None:
    cohere, jina = fakes["cohere"], fakes["jina"]
    cohere.script(*[Fault.server_error(503)] * 3)
    chain = f"{spec(cohere)} | {spec(jina)}"
    result = run(Reranker(chain, api_key={"cohere": TEST_KEY, "jina": TEST_KEY}), mode)
    assert result.model == canonical(spec(jina))
    assert len(cohere.requests) == 3  # retried to the end of its budget first
    assert len(jina.requests) == 1
    assert sorted(d.index for d in result) == list(range(len(DOCS)))
    assert [d.score for d in result] == sorted((relevance(QUERY, d) for d in DOCS), reverse=True)
    assert result.passthrough is False


def test_unusable_answer_falls_back_too(fakes: dict[str, FakeServer], mode: str) -> None:
    voyage, tei = fakes["voyage"], fakes["tei"]
    voyage.script(Fault.wrong_count())
    result = run(Reranker(f"{spec(voyage)} | {spec(tei)}", api_key={"voyage": TEST_KEY}), mode)
    assert result.model == canonical(spec(tei))
    assert len(result) == len(DOCS)


def test_missing_key_falls_back(fakes: dict[str, FakeServer], mode: str) -> None:
    default_registry().close()
    tei = fakes["tei"]
    result = run(Reranker(f"cohere:rerank-v3.5 | {spec(tei)}"), mode)  # no CO_API_KEY in the test env
    assert result.model == canonical(spec(tei))
    assert len(tei.requests) == 1


def test_hosted_falls_back_to_a_local_cross_encoder(fakes: dict[str, FakeServer], tiny_spec: str, mode: str) -> None:
    cohere = fakes["cohere"]
    cohere.script(*[Fault.drop()] * 3)
    result = run(Reranker(f"{spec(cohere)} | {tiny_spec}", api_key=TEST_KEY), mode, top_n=3)
    assert result.model == canonical(tiny_spec)
    assert len(result) == 3
    assert all(0.0 <= d.score <= 1.0 for d in result)


def test_passthrough_keeps_the_input_order_when_all_fail(fakes: dict[str, FakeServer], mode: str) -> None:
    cohere, voyage = fakes["cohere"], fakes["voyage"]
    cohere.script(*[Fault.rate_limited()] * 3)
    voyage.script(*[Fault.server_error(500)] * 3)
    rr = Reranker(f"{spec(cohere)} | {spec(voyage)}", api_key={"cohere": TEST_KEY, "voyage": TEST_KEY},
                  on_error="passthrough")
    result = run(rr, mode)
    assert result.passthrough is True
    assert [d.index for d in result] == list(range(len(DOCS)))
    assert [d.text for d in result] == DOCS
    assert isinstance(result.error, BackendUnavailableError)
    assert (result.error.vendor, result.error.status, result.error.attempts) == ("voyage", 500, 3)


def test_passthrough_respects_top_n(fakes: dict[str, FakeServer], mode: str) -> None:
    jina = fakes["jina"]
    jina.script(Fault.malformed_json())
    result = run(Reranker(spec(jina), api_key=TEST_KEY, on_error="passthrough"), mode, top_n=3)
    assert result.passthrough is True
    assert [d.index for d in result] == [0, 1, 2]
    assert isinstance(result.error, BadResponseError)


def test_without_passthrough_the_last_error_is_raised(fakes: dict[str, FakeServer], mode: str) -> None:
    voyage, jina = fakes["voyage"], fakes["jina"]
    voyage.script(Fault.status_code(400))
    jina.api_key = "another-key"
    with pytest.raises(AuthenticationError) as info:
        run(Reranker(f"{spec(voyage)} | {spec(jina)}", api_key={"voyage": TEST_KEY, "jina": TEST_KEY}), mode)
    assert (info.value.vendor, info.value.status) == ("jina", 401)
    assert (len(voyage.requests), len(jina.requests)) == (1, 1)  # neither error is worth a retry
