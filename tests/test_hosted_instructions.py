"""``instruction=`` reaches instruction-following models behind plain rerank APIs in the form their
makers document (Voyage rerank-2.5, ZeroEntropy zerank-2: in the query; Qwen3-Reranker on vLLM: the
whole prompt template), and every other model warns once that it ignores it.

Each test reads what the vendor's exact-wire fake received, driven by the vendor's SDK or httpx.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swaprank import Reranker
from swaprank.backends import registry
from swaprank.backends.hosted.prompting import QWEN3_DEFAULT_INSTRUCTION
from tests.fakes import FakeServer, spec_for
from tests.fakes.helpers import DOCS, FAST, QUERY, TEST_KEY

pytest_plugins = ["tests.fakes.fixtures"]  # fake servers: fake_servers, server, vendor, mode

INSTRUCTION = "Prefer peer-reviewed clinical evidence"
QWEN3_SYSTEM = ("<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
                'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n')
QWEN3_SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


@pytest.fixture(autouse=True)
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    from swaprank.backends import notices

    monkeypatch.setattr(notices, "_warned", set())
    registry.default_registry().close()


def fake(fake_servers: dict[str, FakeServer], vendor: str) -> FakeServer:
    server = fake_servers[vendor]
    server.reset()
    server.api_key = TEST_KEY
    return server


def config(server: FakeServer, model: str, **options: object) -> str:
    """``spec_for`` with another model name: the fakes serve any model."""
    default = spec_for(server.vendor, server.url, **{**FAST, **options})
    backend, rest = default.split(":", 1)
    return f"{backend}:{model}?{rest.split('?', 1)[1]}"


def ignored(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "ignores instruction=" in r.getMessage()]


@pytest.mark.parametrize(("vendor", "model", "query"), [
    ("voyage", "rerank-2.5-lite", f"Instruction: {INSTRUCTION}\nQuery: {QUERY}"),
    ("zeroentropy", "zerank-2", f"<query>{QUERY}</query>\n<instruction>{INSTRUCTION}</instruction>"),
])
def test_instruction_following_models_get_it_in_the_query(fake_servers: dict[str, FakeServer], vendor: str,
                                                          model: str, query: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    server = fake(fake_servers, vendor)
    with caplog.at_level("WARNING", logger="swaprank"):
        result = Reranker(config(server, model, instruction=INSTRUCTION), api_key=TEST_KEY).rerank(QUERY, DOCS)
    assert ignored(caplog) == []
    assert [r.body["query"] for r in server.requests] == [query]
    assert server.requests[0].documents == DOCS  # documents go as they are
    assert sorted(d.index for d in result) == list(range(len(DOCS)))


@pytest.mark.parametrize(("vendor", "model", "reason"), [
    ("voyage", "rerank-2", "rerank-2 does not follow instructions"),
    ("zeroentropy", "zerank-1-small", "zerank-1-small does not follow instructions"),
    ("vllm", "BAAI/bge-reranker-v2-m3", "prompt_format=qwen3"),
])
def test_models_that_cannot_follow_warn_once_and_send_the_query_unchanged(
        fake_servers: dict[str, FakeServer], vendor: str, model: str, reason: str,
        caplog: pytest.LogCaptureFixture) -> None:
    server = fake(fake_servers, vendor)
    with caplog.at_level("WARNING", logger="swaprank"):
        Reranker(config(server, model, instruction=INSTRUCTION), api_key=TEST_KEY).rerank(QUERY, DOCS)
    warnings = ignored(caplog)
    assert len(warnings) == 1 and reason in warnings[0]
    assert server.requests[0].body["query"] == QUERY
    assert server.requests[0].documents == DOCS


def test_qwen3_reranker_on_vllm_gets_its_prompt_template(fake_servers: dict[str, FakeServer],
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """vLLM scores a Qwen3-Reranker on the yes/no logits of the chat prompt the client writes."""
    server = fake(fake_servers, "vllm")
    with caplog.at_level("WARNING", logger="swaprank"):
        result = Reranker(config(server, "Qwen/Qwen3-Reranker-0.6B", instruction=INSTRUCTION),
                          api_key=TEST_KEY).rerank(QUERY, DOCS)
    assert ignored(caplog) == []
    body = server.requests[0].body
    assert body["query"] == f"{QWEN3_SYSTEM}<Instruct>: {INSTRUCTION}\n<Query>: {QUERY}\n"
    assert body["documents"] == [f"<Document>: {doc}{QWEN3_SUFFIX}" for doc in DOCS]
    # The caller's documents come back as given, not as the prompt that was sent.
    assert {d.text for d in result} == set(DOCS)


@pytest.mark.parametrize(("model", "options", "templated"), [
    ("Qwen/Qwen3-Reranker-4B", {}, True),  # auto: the default instruction
    ("my-finetuned-reranker", {"prompt_format": "qwen3"}, True),  # a renamed Qwen3-Reranker
    ("Qwen/Qwen3-Reranker-4B", {"prompt_format": "none"}, False),  # already templated upstream
])
def test_vllm_prompt_format(fake_servers: dict[str, FakeServer], model: str, options: dict[str, str],
                            templated: bool) -> None:
    server = fake(fake_servers, "vllm")
    Reranker(config(server, model, **options), api_key=TEST_KEY).rerank(QUERY, DOCS)
    body = server.requests[0].body
    if templated:
        assert body["query"] == f"{QWEN3_SYSTEM}<Instruct>: {QWEN3_DEFAULT_INSTRUCTION}\n<Query>: {QUERY}\n"
        assert body["documents"][0] == f"<Document>: {DOCS[0]}{QWEN3_SUFFIX}"
    else:
        assert (body["query"], body["documents"]) == (QUERY, DOCS)


def test_windows_leave_room_for_the_template(fake_servers: dict[str, FakeServer], tmp_path: Path) -> None:
    """A long document is windowed so that each window plus the prompt template fits the server's
    window: the vLLM fake answers 400 (like vLLM) to any pair over max_tokens whitespace tokens, and a
    whitespace tokenizer makes the client count exactly what the fake counts, so a window that forgot
    the template's 46 tokens would be rejected."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    tokenizer = Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = WhitespaceSplit()
    tokenizer.save(str(tmp_path / "tokenizer.json"))
    server = fake(fake_servers, "vllm")
    server.max_tokens = 600
    long_doc = " ".join(f"word{i}" for i in range(1500))
    rr = Reranker(config(server, "Qwen/Qwen3-Reranker-0.6B", max_length=600, tokenizer=tmp_path / "tokenizer.json"),
                  api_key=TEST_KEY)
    result = rr.rerank(QUERY, [long_doc, DOCS[0]])
    assert (result.windowed, result.truncated) == (1, 0)
    assert all(r.status == 200 for r in server.requests)
    sent = server.requests[0].body["documents"]
    assert len(sent) > 3  # the long document went as several windows, each within the server's window
    assert max(len(body.split()) for body in sent) + len(server.requests[0].body["query"].split()) <= 600
    assert {d.text for d in result} == {long_doc, DOCS[0]}
