"""The API key never leaves the client except in the Authorization header.

We scan every place a key could escape to: repr/str of the engine, backends, results and errors,
tracebacks (with their cause chains), pickles, log records and stdout/stderr, and both adapters'
serialisation. The faults include a vendor that echoes the key back in its error body.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import traceback
from typing import Any

import pytest
from pydantic import SecretStr

from swaprank import BackendError, ConfigError, Reranker, parse_spec
from swaprank.backends import registry
from tests.fakes import FakeServer, Fault
from tests.fakes.helpers import DOCS, QUERY, TEST_KEY, rerank, spec

pytest_plugins = ["tests.fakes.fixtures"]  # fake servers: fake_servers, server, vendor, mode

INSTRUCTION_FOLLOWING = {"voyage"}  # vendors whose model in tests.fakes.spec_for follows instructions


def assert_no_key(*things: Any) -> None:
    for thing in things:
        blob = thing if isinstance(thing, (str, bytes)) else repr(thing)
        needle = TEST_KEY.encode() if isinstance(blob, bytes) else TEST_KEY
        assert needle not in blob, f"API key leaked into: {blob[:300]!r}"


def error_texts(error: BaseException) -> list[Any]:
    return [str(error), repr(error), "".join(traceback.format_exception(error)), pickle.dumps(error)]


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger: swaprank, httpx, httpcore, the SDKs
    return caplog


def echo_key(server: FakeServer) -> Fault:
    """A 401 whose body quotes the key, in the vendor's own error shape."""
    return Fault.json_body(server.error_body(401, f"invalid api token {TEST_KEY}"), status=401)


@pytest.mark.parametrize("fault", ["echo", "rate_limited", "timeout", "drop", "malformed"])
def test_failures_never_carry_the_key(server: FakeServer, mode: str, fault: str, all_logs: pytest.LogCaptureFixture,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    server.api_key = None if server.vendor == "tei" else TEST_KEY
    faults = {
        "echo": [echo_key(server)],
        "rate_limited": [Fault.rate_limited()] * 2,
        "timeout": [Fault.slow(3.0)] * 2,
        "drop": [Fault.drop()] * 2,
        "malformed": [Fault.malformed_json()],
    }[fault]
    server.script(*faults)
    rr = Reranker(spec(server, timeout=0.5, max_retries=1), api_key=TEST_KEY)
    with pytest.raises(BackendError) as info:
        rerank(rr, mode)
    if fault == "echo":
        assert "invalid api token ***" in str(info.value)  # the vendor's message, key scrubbed
    assert_no_key(*error_texts(info.value), all_logs.text, *[r.getMessage() for r in all_logs.records])
    captured = capsys.readouterr()
    assert_no_key(captured.out, captured.err)
    assert server.sent_key(server.requests[0].headers) == TEST_KEY  # it was really sent


def test_passthrough_result_and_its_error_never_carry_the_key(server: FakeServer, mode: str) -> None:
    server.script(echo_key(server))
    rr = Reranker(spec(server), api_key=TEST_KEY, on_error="passthrough")
    result = rerank(rr, mode)
    assert result.passthrough is True
    assert result.error is not None
    assert_no_key(result, str(result), pickle.dumps(result), *error_texts(result.error))


def test_engine_and_backend_never_show_the_key(server: FakeServer, all_logs: pytest.LogCaptureFixture) -> None:
    rr = Reranker(spec(server), api_key=SecretStr(TEST_KEY))
    result = rr.rerank(QUERY, DOCS)
    backend = registry.default_registry().acquire(parse_spec(spec(server)), api_key=TEST_KEY)
    assert_no_key(rr, str(rr), result, pickle.dumps(rr), backend, str(backend), all_logs.text)


def test_llama_index_adapter_never_serialises_the_key(server: FakeServer) -> None:
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from swaprank.llama_index import RerankPostprocessor

    post = RerankPostprocessor(model=spec(server), top_n=3, api_key=TEST_KEY)
    nodes = [NodeWithScore(node=TextNode(text=t), score=0.1) for t in DOCS]
    out = post.postprocess_nodes(nodes, QueryBundle(QUERY))
    assert len(out) == 3
    restored = RerankPostprocessor.from_dict(post.to_dict())
    assert restored.api_key is None
    assert_no_key(post, str(post), post.to_dict(), post.to_json(), post.model_dump_json(), pickle.dumps(post))


def test_langchain_adapter_never_serialises_the_key(server: FakeServer) -> None:
    from langchain_core.documents import Document as LCDocument
    from langchain_core.load import dumpd, dumps

    from swaprank.langchain import RerankCompressor

    compressor = RerankCompressor(model=spec(server), top_n=3, api_key=TEST_KEY)
    out = asyncio.run(compressor.acompress_documents([LCDocument(page_content=t) for t in DOCS], QUERY))
    assert len(out) == 3
    assert_no_key(compressor, str(compressor), compressor.model_dump(), compressor.model_dump_json(),
                  dumps(compressor), dumpd(compressor), pickle.dumps(compressor))


def test_one_key_is_not_sent_to_another_vendor(fake_servers: dict[str, FakeServer]) -> None:
    cohere, tei = fake_servers["cohere"], fake_servers["tei"]
    for fake in (cohere, tei):
        fake.reset()
    cohere.api_key, tei.api_key = TEST_KEY, None
    cohere.script(Fault.status_code(400))
    try:
        result = Reranker(f"{spec(cohere)} | {spec(tei)}", api_key=TEST_KEY).rerank(QUERY, DOCS)
    except ConfigError:
        return  # refusing an ambiguous single key for a mixed chain is a fix too
    assert result.model.startswith("tei:")
    assert "authorization" not in tei.requests[0].headers


def test_instruction_is_forwarded_or_ignored_with_one_warning(server: FakeServer, caplog: pytest.LogCaptureFixture,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hosted backend accepts instruction= (one string for a whole chain). An instruction-
    following model gets it in its documented form (the fakes' voyage:rerank-2.5, see
    test_hosted_instructions); the others ignore it loudly, once, with the request unchanged."""
    from swaprank.backends import notices

    monkeypatch.setattr(notices, "_warned", set())
    registry.default_registry().close()
    model = spec(server, instruction="find%20the%20passage%20that%20answers")
    with caplog.at_level("WARNING", logger="swaprank"):
        result = rerank(Reranker(model, api_key=TEST_KEY), "sync")
        registry.default_registry().close()
        rerank(Reranker(model, api_key=TEST_KEY), "sync")  # a second backend of the same spec: no second warning
    assert len(result) == len(DOCS)
    warnings = [r.getMessage() for r in caplog.records if "ignores instruction=" in r.getMessage()]
    if server.vendor in INSTRUCTION_FOLLOWING:
        assert warnings == []
        assert server.requests[0].body["query"] == f"Instruction: find the passage that answers\nQuery: {QUERY}"
    else:
        assert len(warnings) == 1 and server.vendor in warnings[0]
        assert "find the passage" not in repr(server.requests[0].body)
