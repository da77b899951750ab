"""No API key, URL credential or internal endpoint in anything swaprank shows or hands on.

A URL with userinfo (``http://alice:pw@host``) and an API key are planted in a fallback chain; a
call retries, falls back and succeeds, another fails for good; then every output channel is
searched: reprs, serialized adapters, results, document and node metadata, log records at DEBUG,
exceptions with their causes, LlamaIndex events, LangChain run metadata and OpenTelemetry spans.
Logs and exceptions may name the endpoint (an operator needs it), with its credentials masked;
user data and traces carry ``backend:model`` only, no URL at all.
"""

from __future__ import annotations

import logging
import traceback
from contextlib import ExitStack
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.documents import Document as LCDocument
from llama_index.core.schema import NodeWithScore, TextNode

from swaprank import Reranker
from swaprank.backends.registry import default_registry
from swaprank.langchain import RerankCompressor
from swaprank.llama_index import RerankPostprocessor
from swaprank.redaction import redact_url, redacted_spec
from tests.fakes import FakeServer, Fault
from tests.fakes.helpers import DOCS, QUERY, TEST_KEY, spec
from tests.llama_events import recording
from tests.otel_support import spans  # noqa: F401 - fixture

pytest_plugins = ["tests.fakes.fixtures"]

USER, PASSWORD = "alice-user", "s3cret-pw-9f2"
SECRETS = (USER, PASSWORD, TEST_KEY)


def with_userinfo(url: str) -> str:
    return url.replace("http://", f"http://{USER}:{PASSWORD}@")


class Runs(BaseCallbackHandler):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def on_retriever_start(self, serialized: Any, query: str, **kwargs: Any) -> None:
        self.seen.append(repr(kwargs.get("metadata")) + repr(serialized))

    def on_retriever_end(self, documents: Any, **kwargs: Any) -> None:
        self.seen.append(repr(documents))


def span_text(exporter: Any) -> list[str]:
    out = []
    for span in exporter.get_finished_spans():
        out.append(span.name + repr(dict(span.attributes)) + repr(span.status.description))
        out.extend(repr(dict(e.attributes)) for e in span.events)
    return out


def test_url_credentials_and_keys_never_leave_the_config(fake_servers: dict[str, FakeServer],
                                                         caplog: pytest.LogCaptureFixture,
                                                         spans: Any) -> None:  # noqa: F811
    tei, cohere, jina = fake_servers["tei"], fake_servers["cohere"], fake_servers["jina"]
    for fake in (tei, cohere, jina):
        fake.reset()
    cohere.api_key, jina.api_key = TEST_KEY, None  # jina: a self-hosted server behind basic auth
    default_registry().close()
    tei_spec = spec(tei).replace("tei:http://", f"tei:http://{USER}:{PASSWORD}@")
    jina_spec = spec(jina).replace("base_url=http://", f"base_url=http://{USER}:{PASSWORD}@")
    # TEI and Cohere fail (retried, logged), the chain falls back to the self-hosted Jina-compatible server.
    chain = f"{tei_spec} | {spec(cohere)} | {jina_spec}"
    keys = {"cohere": TEST_KEY}

    def outage() -> None:
        tei.script(*[Fault.server_error(503)] * 3)
        cohere.script(*[Fault.server_error(503)] * 3)

    runs = Runs()
    stack = ExitStack()
    events = stack.enter_context(recording(only_rerank=False))  # every LlamaIndex event, not only rerank's
    shown: list[str] = []
    caplog.set_level(logging.DEBUG)
    try:
        outage()
        rr = Reranker(chain, api_key=keys, top_n=3)
        result = rr.rerank(QUERY, DOCS)
        assert result.model_name == "jina:jina-reranker-v2-base-multilingual" and len(result) == 3
        shown += [repr(rr), repr(result), result.model, result.model_name]

        compressor = RerankCompressor(model=chain, api_key=keys, top_n=3)
        outage()
        docs = compressor.compress_documents([LCDocument(page_content=t) for t in DOCS], QUERY, callbacks=[runs])
        shown += [repr(compressor), str(compressor), compressor.model_dump_json(), repr(docs)]
        assert all(d.metadata["rerank_model"] == "jina:jina-reranker-v2-base-multilingual" for d in docs)

        post = RerankPostprocessor(model=chain, api_key=keys, top_n=3)
        outage()
        nodes = post.postprocess_nodes([NodeWithScore(node=TextNode(text=t)) for t in DOCS], query_str=QUERY)
        shown += [repr(post), post.to_json(), repr(nodes)]

        outage()
        with pytest.raises(Exception) as failure:
            Reranker(f"{tei_spec} | {spec(cohere)}", api_key=keys).rerank(QUERY, DOCS)
        shown += ["".join(traceback.format_exception(failure.value)), repr(failure.value)]
    finally:
        stack.close()
        tei.settle()
        cohere.settle()
    logs = [record.getMessage() for record in caplog.records]
    assert any("retrying" in line for line in logs) and any("falling back" in line for line in logs)
    user_data = [repr(e.model_dump()) for e in events.events] + runs.seen + span_text(spans)
    user_data += [repr(d.metadata) for d in docs] + [repr(n.node.metadata) for n in nodes]
    assert user_data and span_text(spans)
    for channel in (shown, logs, user_data):
        for text in channel:
            for secret in SECRETS:
                assert secret not in text, f"{secret!r} leaked into: {text[:300]}"
    for text in user_data:  # no endpoint at all where data and traces go
        assert "127.0.0.1" not in text and "http://" not in text, text[:300]
    # Operators still see which endpoint failed, with the credentials masked.
    assert any("http://***@127.0.0.1" in line for line in logs)


def test_redaction_helpers() -> None:
    assert redact_url("https://u:p@h.example:8443/v1?api_key=k&x=1") == "https://***@h.example:8443/v1?api_key=***&x=1"
    assert redact_url("http://h:8080") == "http://h:8080"
    from swaprank.config import parse_spec

    masked = redacted_spec(parse_spec("jina:m?base_url=http%3A%2F%2Fu%3Ap%40h%3A1&timeout=3"))
    assert masked == "jina:m?base_url=http://***@h:1&timeout=3.0"
