"""``llm:``: listwise and pointwise reranking over an OpenAI-compatible chat endpoint.

Driven through the real ``openai`` SDK against ``tests.fakes.llm.FakeChat`` on 127.0.0.1 (its
answers follow the shared word-overlap ``relevance``; their quality is not a claim), plus the
answer parsers on their own, since a chat model's answers are where things go wrong.
"""

from __future__ import annotations

import asyncio
import logging
import math
import pickle
import traceback
from collections.abc import Iterator
from typing import Any

import pytest

from swaprank import (
    AuthenticationError,
    BackendUnavailableError,
    BadResponseError,
    ConfigError,
    RateLimitError,
    Reranker,
    RerankResult,
)
from swaprank.backends import registry
from swaprank.backends.llm import (
    listwise_windows,
    parse_grade,
    parse_permutation,
    position_scores,
    yes_probability,
)
from tests.fakes import FakeCohere, Fault, relevance
from tests.fakes.helpers import DOCS, QUERY, TEST_KEY
from tests.fakes.llm import FakeChat, completion, yes_no_logprobs

pytest.importorskip("openai")

FAST = {"timeout": "5", "max_retries": "2", "backoff": "0.01", "max_backoff": "0.05", "deadline": "20"}
N = len(DOCS)


@pytest.fixture(scope="module")
def chat_server() -> Iterator[FakeChat]:
    server = FakeChat().start()
    yield server
    server.stop()


@pytest.fixture
def chat(chat_server: FakeChat) -> Iterator[FakeChat]:
    chat_server.reset()
    chat_server.api_key = None
    registry.default_registry().close()  # a live backend remembers whether the server returns logprobs
    yield chat_server
    assert not chat_server.errors, "the fake server itself failed:\n" + "\n".join(chat_server.errors)


@pytest.fixture(params=["sync", "async"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def _no_openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def llm(server: FakeChat, options: str = "") -> str:
    """The config string for the fake, fast retries included; ``options`` ("a=1&b=2") override them."""
    given = dict(pair.split("=", 1) for pair in options.split("&") if pair)
    merged = {"base_url": f"{server.url}/v1", **FAST, **given}
    return "llm:fake-chat?" + "&".join(f"{k}={v}" for k, v in merged.items())


def run(rr: Reranker, mode: str, docs: list[str] = DOCS, query: str = QUERY,
        top_n: int | None = None) -> RerankResult:
    if mode == "sync":
        return rr.rerank(query, docs, top_n=top_n)
    return asyncio.run(rr.arerank(query, docs, top_n=top_n))


def by_relevance(docs: list[str] = DOCS, query: str = QUERY) -> list[int]:
    return sorted(range(len(docs)), key=lambda i: -relevance(query, docs[i]))


# ------------------------------------------------------------------ the parsers


def test_permutation_good_answer() -> None:
    result = parse_permutation("[3] > [1] > [2]", 3)
    assert result.order == [2, 0, 1]
    assert (result.ranked, result.missing, result.duplicates, result.out_of_range) == (3, 0, 0, 0)


def test_permutation_repairs_missing_duplicate_and_out_of_range_ids() -> None:
    result = parse_permutation("[4] > [2] > [4] > [9] > [0] > [2]", 5)
    # 4 and 2 ranked; the repeated 4 and 2, and 9 and 0 (out of 1..5) are skipped; 1, 3, 5 follow in input order.
    assert result.order == [3, 1, 0, 2, 4]
    assert (result.ranked, result.missing, result.duplicates, result.out_of_range) == (2, 3, 2, 2)


def test_permutation_reads_brackets_before_bare_numbers_and_skips_thinking() -> None:
    # "3 passages" and the numbers inside <think> must not be read as ids.
    answer = "<think>maybe [1] > [2] > [3]</think>Of the 3 passages: [2] > [3] > [1]"
    assert parse_permutation(answer, 3).order == [1, 2, 0]
    assert parse_permutation("2 > 3 > 1", 3).order == [1, 2, 0]  # no brackets: bare numbers
    assert parse_permutation("2, 1", 3).order == [1, 0, 2]


def test_permutation_without_any_id_keeps_every_document() -> None:
    result = parse_permutation("I cannot rank these passages.", 4)
    assert result.order == [0, 1, 2, 3] and result.ranked == 0


@pytest.mark.parametrize(("count", "size", "step", "expected"), [
    (1, 20, 10, [(0, 1)]),
    (20, 20, 10, [(0, 20)]),
    (25, 20, 10, [(5, 25), (0, 15)]),
    (100, 20, 10, [(80, 100), (70, 90), (60, 80), (50, 70), (40, 60), (30, 50), (20, 40), (10, 30), (0, 20)]),
    (8, 4, 2, [(4, 8), (2, 6), (0, 4)]),
    (7, 3, 2, [(4, 7), (2, 5), (0, 3)]),
])
def test_listwise_windows_run_back_to_front_and_end_at_the_top(
        count: int, size: int, step: int, expected: list[tuple[int, int]]) -> None:
    assert listwise_windows(count, size, step) == expected


def test_position_scores_are_rank_derived() -> None:
    assert position_scores([2, 0, 1]) == [2 / 3, 1 / 3, 1.0]
    assert position_scores([0]) == [1.0]


def test_yes_probability_from_logprobs() -> None:
    assert yes_probability(yes_no_logprobs(0.8)) == pytest.approx(0.8)
    # Normalised over yes/no only; spelling variants of one word add up; other tokens are ignored.
    variants = {"content": [{"token": "Yes", "logprob": math.log(0.5), "top_logprobs": [
        {"token": "Yes", "logprob": math.log(0.5)}, {"token": " yes", "logprob": math.log(0.1)},
        {"token": "NO.", "logprob": math.log(0.2)}, {"token": "Maybe", "logprob": math.log(0.2)}]}]}
    assert yes_probability(variants) == pytest.approx(0.6 / 0.8)
    # A leading markdown token: the next position is read.
    bold = {"content": [{"token": "**", "logprob": -0.01, "top_logprobs": [{"token": "**", "logprob": -0.01}]},
                        *yes_no_logprobs(0.3)["content"]]}
    assert yes_probability(bold) == pytest.approx(0.3)
    assert yes_probability(None) is None
    assert yes_probability({"content": [{"token": "Sure", "logprob": 0.0, "top_logprobs": []}]}) is None


def test_parse_grade() -> None:
    assert parse_grade("2") == pytest.approx(2 / 3)
    assert parse_grade("<think>0 or 1?</think> Grade: 3") == 1.0
    assert parse_grade("7") is None and parse_grade("relevant") is None


# ------------------------------------------------------------------ listwise


def test_listwise_one_window_ranks_every_document(chat: FakeChat, mode: str) -> None:
    result = run(Reranker(llm(chat)), mode)
    assert [d.index for d in result] == by_relevance()
    assert [d.score for d in result] == pytest.approx([(N - r) / N for r in range(N)])
    assert [d.raw_score for d in result] == [d.score for d in result]
    assert len(chat.requests) == 1
    body = chat.requests[0].body
    assert body["model"] == "fake-chat" and body["temperature"] == 0 and "logprobs" not in body
    assert chat.prompts[0].kind == "listwise" and chat.prompts[0].docs == DOCS
    assert result.usage is not None and result.usage.total_tokens == _billed(chat)


def _billed(server: FakeChat) -> int:
    # What the fake billed: whitespace tokens of the prompt plus the answer, per request.
    return sum(len(" ".join(m["content"] for m in r.body["messages"]).split()) for r in server.requests) + sum(
        len(" > ".join(f"[{i + 1}]" for i in range(len(p.docs))).split()) for p in server.prompts)


def test_listwise_sliding_windows_bring_the_best_to_the_top(chat: FakeChat, mode: str) -> None:
    result = run(Reranker(llm(chat, "window_size=4&step=2")), mode)
    assert sorted(d.index for d in result) == list(range(N))  # nothing dropped, nothing twice
    assert [d.index for d in result][:2] == by_relevance()[:2]  # window - step places are exact
    assert len(chat.requests) == 3  # windows (4, 8), (2, 6), (0, 4)
    first, second, last = (p.docs for p in chat.prompts)
    assert first == DOCS[4:8]
    best_of_back = sorted(DOCS[4:8], key=lambda d: -relevance(QUERY, d))[:2]
    assert second == DOCS[2:4] + best_of_back  # the window's winners moved forward with it
    assert {DOCS[i] for i in by_relevance()[:2]} <= set(last)
    assert result.usage is not None and result.usage.total_tokens == _billed(chat)


def test_listwise_repairs_the_models_answer(chat: FakeChat, mode: str) -> None:
    chat.rewrite = lambda prompt, answer: "Sure! The ranking is [3] > [3] > [12] > [1] > [0]"
    result = run(Reranker(llm(chat)), mode)
    assert [d.index for d in result] == [2, 0, 1, 3, 4, 5, 6, 7]
    assert len(chat.requests) == 1  # a repairable answer is not an error: no retry


def test_listwise_answer_without_ids_is_a_bad_response_and_falls_back(chat: FakeChat, mode: str) -> None:
    chat.rewrite = lambda prompt, answer: "I'm sorry, I can't help with that."
    with pytest.raises(BadResponseError, match="no usable ranking") as caught:
        run(Reranker(llm(chat)), mode)
    assert caught.value.vendor == "llm" and caught.value.status == 200 and caught.value.attempts == 1
    assert caught.value.usage is not None and caught.value.usage.total_tokens == _tokens_of(chat)


def _tokens_of(server: FakeChat) -> int:
    """What the fake billed for requests whose answers ``rewrite`` replaced."""
    assert server.rewrite is not None
    prompts = sum(len(" ".join(m["content"] for m in r.body["messages"]).split()) for r in server.requests)
    return prompts + sum(len(server.rewrite(p, "").split()) for p in server.prompts)


def test_listwise_scripted_answers_and_single_documents(chat: FakeChat) -> None:
    chat.script(Fault.json_body(completion("[2] > [1]", total_tokens=11)))
    result = Reranker(llm(chat)).rerank(QUERY, ["first", "second"])
    assert [d.text for d in result] == ["second", "first"] and [d.score for d in result] == [1.0, 0.5]
    assert result.usage is not None and result.usage.total_tokens == 11
    single = Reranker(llm(chat)).rerank(QUERY, ["alone"])
    assert [d.score for d in single] == [1.0] and len(chat.requests) == 1  # nothing to rank: no request


def test_listwise_threshold_and_top_n_apply_to_positions(chat: FakeChat, mode: str) -> None:
    half = run(Reranker(llm(chat), score_threshold=0.5), mode)
    # (n - r) / n >= 0.5 <=> r <= n / 2: the better half, and the document on the boundary.
    assert [d.index for d in half] == by_relevance()[: N // 2 + 1]
    top = run(Reranker(llm(chat)), mode, top_n=3)
    assert [d.index for d in top] == by_relevance()[:3]


def test_listwise_many_queries_rank_each_list_apart(chat: FakeChat, mode: str) -> None:
    rr = Reranker(llm(chat, "window_size=8&step=4"))
    queries, lists = ["cat dog", "revenue stock"], [DOCS, DOCS[2:]]
    results = (rr.rerank_many(queries, lists) if mode == "sync" else asyncio.run(rr.arerank_many(queries, lists)))
    assert [d.index for d in results[0]] == by_relevance(DOCS, "cat dog")
    assert [d.index for d in results[1]] == by_relevance(DOCS[2:], "revenue stock")
    assert len(chat.requests) == 2


def test_instruction_and_passage_cut(chat: FakeChat) -> None:
    long_doc = "cat " * 50 + "dog"
    result = Reranker(llm(chat, "instruction=Prefer%20pet%20care%20passages&max_words=10")).rerank(
        QUERY, [long_doc, *DOCS[:3]])
    prompt = chat.prompts[0]
    assert "Instruction: Prefer pet care passages" in prompt.text
    assert prompt.docs[0] == " ".join(["cat"] * 10)
    assert result.truncated == 1 and sorted(d.index for d in result) == [0, 1, 2, 3]


# ------------------------------------------------------------------ pointwise


def test_pointwise_logprobs(chat: FakeChat, mode: str) -> None:
    chat.latency = 0.05
    result = run(Reranker(llm(chat, "mode=pointwise&max_concurrency=3")), mode)
    assert [d.index for d in result] == by_relevance()
    expected = {i: min(max(relevance(QUERY, d), 1e-6), 1 - 1e-6) for i, d in enumerate(DOCS)}
    assert {d.index: d.score for d in result} == pytest.approx(expected)
    assert len(chat.requests) == N and all(p.kind == "yesno" and p.logprobs for p in chat.prompts)
    assert all(r.body["top_logprobs"] == 5 for r in chat.requests)
    assert 1 < chat.max_inflight <= 3  # concurrent, and bounded by max_concurrency
    assert result.usage is not None and result.usage.total_tokens == sum(
        len(" ".join(m["content"] for m in r.body["messages"]).split()) + 1 for r in chat.requests)


def test_pointwise_without_logprobs_asks_for_grades(chat: FakeChat, mode: str) -> None:
    chat.logprobs = False
    rr = Reranker(llm(chat, "mode=pointwise&max_concurrency=1"))
    result = run(rr, mode)
    grades = {i: round(3 * relevance(QUERY, d)) / 3 for i, d in enumerate(DOCS)}
    assert {d.index: d.score for d in result} == pytest.approx(grades)
    # The first answer had no logprobs: from then on, grades only (one extra request in all).
    assert [p.kind for p in chat.prompts] == ["yesno"] + ["graded"] * N
    chat.reset()
    chat.logprobs = False
    run(rr, mode)
    assert [p.kind for p in chat.prompts] == ["graded"] * N  # remembered by the live backend


def test_pointwise_logprobs_rejected_with_400_falls_back_to_grades(chat: FakeChat) -> None:
    chat.script(Fault.status_code(400))
    result = Reranker(llm(chat, "mode=pointwise&max_concurrency=1")).rerank(QUERY, DOCS[:2])
    assert [p.kind for p in chat.prompts] == ["graded", "graded"]  # the 400 was never parsed as a prompt
    assert len(chat.requests) == 3
    assert {d.index: d.score for d in result} == pytest.approx(
        {i: round(3 * relevance(QUERY, d)) / 3 for i, d in enumerate(DOCS[:2])})


def test_pointwise_forced_scoring(chat: FakeChat) -> None:
    Reranker(llm(chat, "mode=pointwise&scoring=graded")).rerank(QUERY, DOCS[:3])
    assert all(p.kind == "graded" and not p.logprobs for p in chat.prompts)
    chat.reset()
    chat.logprobs = False
    with pytest.raises(BadResponseError, match="without yes/no logprobs"):
        Reranker(llm(chat, "mode=pointwise&scoring=logprobs")).rerank(QUERY, DOCS[:3])
    chat.settle()


def test_pointwise_no_grade_is_a_bad_response(chat: FakeChat) -> None:
    chat.logprobs = False
    chat.rewrite = lambda prompt, answer: "very relevant" if prompt.kind == "graded" else answer
    with pytest.raises(BadResponseError, match="no grade"):
        Reranker(llm(chat, "mode=pointwise&max_concurrency=1")).rerank(QUERY, DOCS[:1])


def test_pointwise_yes_no_without_usable_logprobs_grades_that_document(chat: FakeChat) -> None:
    chat.script(Fault.json_body(completion("Maybe", logprobs={"content": [
        {"token": "Maybe", "logprob": 0.0, "top_logprobs": [{"token": "Maybe", "logprob": 0.0}]}]})))
    result = Reranker(llm(chat, "mode=pointwise&max_concurrency=1")).rerank(QUERY, DOCS[:2])
    kinds = [r.body["messages"][0]["content"] for r in chat.requests]
    assert len(chat.requests) == 3 and "single number" in kinds[1]  # only that one document was graded
    assert {d.index: d.score for d in result} == pytest.approx(
        {0: round(3 * relevance(QUERY, DOCS[0])) / 3, 1: relevance(QUERY, DOCS[1])})


# ------------------------------------------------------------------ retries, errors, keys


@pytest.mark.parametrize("llm_mode", ["listwise", "pointwise"])
def test_429_and_500_are_retried(chat: FakeChat, mode: str, llm_mode: str) -> None:
    chat.script(Fault.rate_limited(retry_after=0.01), Fault.server_error(500))
    result = run(Reranker(llm(chat, f"mode={llm_mode}&max_concurrency=1")), mode, docs=DOCS[:3])
    assert [d.index for d in result] == by_relevance(DOCS[:3])
    assert [r.status for r in chat.requests][:2] == [429, 500]
    assert len(chat.requests) == 2 + (1 if llm_mode == "listwise" else 3)


def test_exhausted_retries_raise_typed_errors(chat: FakeChat, mode: str) -> None:
    chat.script(*[Fault.rate_limited()] * 3)
    with pytest.raises(RateLimitError) as caught:
        run(Reranker(llm(chat)), mode)
    assert caught.value.attempts == 3 and caught.value.status == 429 and caught.value.vendor == "llm"
    chat.script(*[Fault.server_error(503)] * 3)
    with pytest.raises(BackendUnavailableError, match="upstream failure 503"):
        run(Reranker(llm(chat)), mode)


def test_a_failing_window_carries_what_earlier_windows_billed(chat: FakeChat) -> None:
    chat.script(Fault.json_body(completion("[1] > [2] > [3] > [4]", total_tokens=40)), Fault.server_error(500))
    with pytest.raises(BackendUnavailableError) as caught:
        Reranker(llm(chat, "window_size=4&step=2&max_retries=0")).rerank(QUERY, DOCS)
    assert len(chat.requests) == 2  # the second window failed, the pass stopped there
    assert caught.value.usage is not None and caught.value.usage.total_tokens == 40


def test_fallback_chain_serves_when_the_llm_fails(chat: FakeChat, mode: str) -> None:
    with FakeCohere(api_key=TEST_KEY) as cohere:
        chain = f"{llm(chat, 'max_retries=0')} | cohere:rerank-v3.5?base_url={cohere.url}"
        chat.script(Fault.server_error(500))
        result = run(Reranker(chain, api_key={"cohere": TEST_KEY}, top_n=3), mode)
        assert result.model_name == "cohere:rerank-v3.5" and len(cohere.requests) == 1
        assert [d.index for d in result] == by_relevance()[:3]
        # And when it works, the LLM serves and Cohere is not asked.
        ok = run(Reranker(chain, api_key={"cohere": TEST_KEY}, top_n=3), mode)
        assert ok.model_name == "llm:fake-chat" and len(cohere.requests) == 1


def test_a_local_cross_encoder_backs_up_the_llm(chat: FakeChat, mode: str, tiny_spec: str) -> None:
    """The issue's chain, ``llm:... | cross-encoder:...``: when the chat server fails, the local model
    ranks every candidate under the same policy (top_n) and the result names it."""
    chain = f"{llm(chat, 'max_retries=0')} | {tiny_spec}"
    chat.script(Fault.server_error(500))
    result = run(Reranker(chain, top_n=3), mode)
    assert result.model_name.startswith("cross-encoder:") and len(chat.requests) == 1
    local = Reranker(tiny_spec, top_n=3).rerank(QUERY, DOCS)
    assert [(d.index, d.score) for d in result] == [(d.index, d.score) for d in local]


def test_the_key_is_sent_and_never_leaks(chat: FakeChat, mode: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # every logger: swaprank, openai, httpx2
    chat.api_key = TEST_KEY
    rr = Reranker(llm(chat), api_key=TEST_KEY)
    run(rr, mode)
    assert chat.requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}"
    echo = Fault.json_body(chat.error_body(401, f"invalid api token {TEST_KEY}"), status=401)
    chat.script(echo)
    with pytest.raises(AuthenticationError) as caught:
        run(rr, mode)
    error = caught.value
    assert error.attempts == 1 and error.status == 401  # never retried
    blobs = [str(error), repr(error), "".join(traceback.format_exception(error)), repr(rr),
             repr(rr._backend(rr.specs[0])), caplog.text]
    assert all(TEST_KEY not in blob for blob in blobs)
    assert TEST_KEY.encode() not in pickle.dumps(rr)
    assert "***" in str(error)  # the vendor's echo is scrubbed, not dropped


def test_keys_from_env_and_self_hosted_servers_without_one(chat: FakeChat, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(AuthenticationError, match="OPENAI_API_KEY"):
        Reranker("llm:gpt-4o-mini").warmup()  # OpenAI itself: a key is required
    Reranker(llm(chat)).rerank(QUERY, DOCS[:2])
    assert chat.requests[-1].headers["authorization"] == "Bearer EMPTY"  # self-hosted: the placeholder
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    Reranker(llm(chat, "max_words=100")).rerank(QUERY, DOCS[:2])
    assert chat.requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}"


@pytest.mark.parametrize(("options", "message"), [
    ("mode=generative", "must be one of listwise, pointwise"),
    ("window_size=10&step=10", "step .10. must be smaller than window_size"),
    ("max_docs_per_request=5", "unknown option 'max_docs_per_request'"),
    ("scoring=vibes", "must be one of auto, logprobs, graded"),
])
def test_bad_options_are_config_errors(chat: FakeChat, options: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Reranker(llm(chat, options)).warmup()


def test_options_a_mode_ignores_are_warned_about(chat: FakeChat, caplog: pytest.LogCaptureFixture) -> None:
    Reranker(llm(chat, "mode=pointwise&window_size=30")).warmup()
    assert "ignores window_size in mode=pointwise" in caplog.text


# ------------------------------------------------------------------ adapters


def test_langchain_compressor(chat: FakeChat, mode: str) -> None:
    from langchain_core.documents import Document as LCDocument

    from swaprank.langchain import RerankCompressor

    compressor = RerankCompressor(model=llm(chat), top_n=3)
    docs = [LCDocument(page_content=t, id=f"d{i}") for i, t in enumerate(DOCS)]
    out: Any = (compressor.compress_documents(docs, QUERY) if mode == "sync"
                else asyncio.run(compressor.acompress_documents(docs, QUERY)))
    assert [d.id for d in out] == [f"d{i}" for i in by_relevance()[:3]]
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx([1.0, (N - 1) / N, (N - 2) / N])
    assert {d.metadata["rerank_model"] for d in out} == {"llm:fake-chat"}


def test_llama_index_postprocessor(chat: FakeChat, mode: str) -> None:
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    from swaprank.llama_index import RerankPostprocessor

    post = RerankPostprocessor(model=llm(chat, "mode=pointwise"), top_n=3)
    nodes = [NodeWithScore(node=TextNode(text=t, id_=f"n{i}"), score=0.5) for i, t in enumerate(DOCS)]
    query = QueryBundle(QUERY)
    out = post.postprocess_nodes(nodes, query) if mode == "sync" else asyncio.run(post.apostprocess_nodes(nodes, query))
    assert [n.node.node_id for n in out] == [f"n{i}" for i in by_relevance()[:3]]
    assert [n.score for n in out] == pytest.approx([relevance(QUERY, DOCS[i]) for i in by_relevance()[:3]])


def test_listwise_scores_bypass_the_score_cache_pointwise_ones_use_it(chat: FakeChat) -> None:
    listwise = Reranker(llm(chat), cache_size=100)
    listwise.rerank(QUERY, DOCS)
    # A position from the 8-document list is not a score in this 3-document list: rank them afresh.
    result = listwise.rerank(QUERY, DOCS[:3])
    assert [d.score for d in result] == pytest.approx([1.0, 2 / 3, 1 / 3]) and len(chat.requests) == 2
    cache = listwise.cache
    assert cache is not None and (cache.hits, cache.misses, len(cache)) == (0, N + 3, 0)  # all scored, none kept
    pointwise = Reranker(llm(chat, "mode=pointwise"), cache_size=100)
    pointwise.rerank(QUERY, DOCS)
    pointwise.rerank(QUERY, DOCS[:3])
    assert len(chat.requests) == 2 + N  # the second call was answered from the cache



def test_timeouts_and_dropped_connections_are_retried(chat: FakeChat, mode: str) -> None:
    chat.script(Fault.slow(3.0), Fault.drop())
    result = run(Reranker(llm(chat, "timeout=0.5")), mode, docs=DOCS[:3])
    assert [d.index for d in result] == by_relevance(DOCS[:3]) and len(chat.requests) == 3
    chat.settle()
    chat.script(Fault.slow(3.0), Fault.slow(3.0))
    with pytest.raises(BackendUnavailableError, match="timed out") as caught:
        run(Reranker(llm(chat, "timeout=0.3&max_retries=1")), mode, docs=DOCS[:3])
    assert caught.value.attempts == 2
    chat.settle()


@pytest.mark.parametrize(("fault", "message"), [
    (Fault.malformed_json(), "not valid JSON"),
    (Fault.json_body(completion(None)), "without message content"),
    (Fault.json_body({"choices": []}), "without message content"),
])
def test_unusable_bodies_are_bad_responses_never_retried(chat: FakeChat, mode: str, fault: Fault, message: str) -> None:
    chat.script(fault)
    with pytest.raises(BadResponseError, match=message) as caught:
        run(Reranker(llm(chat)), mode, docs=DOCS[:3])
    assert caught.value.attempts == 1 and len(chat.requests) == 1


def test_a_failing_query_carries_what_the_other_queries_billed(chat: FakeChat, mode: str) -> None:
    # Query one (3 documents) is answered; query two's window fails; concurrency 1 keeps the order.
    chat.script(Fault.json_body(completion("[1] > [2] > [3]", total_tokens=30)), Fault.server_error(500))
    rr = Reranker(llm(chat, "max_retries=0&max_concurrency=1"))
    queries, lists = ["cat", "dog"], [DOCS[:3], DOCS[3:6]]
    with pytest.raises(BackendUnavailableError) as caught:
        rr.rerank_many(queries, lists) if mode == "sync" else asyncio.run(rr.arerank_many(queries, lists))
    assert caught.value.usage is not None and caught.value.usage.total_tokens == 30


# ------------------------------------------------------------------ the CLI and swaprank eval


@pytest.mark.parametrize("mode_option", ["listwise", "pointwise"])
def test_cli_rerank_and_eval_run_an_llm(chat: FakeChat, mode_option: str, tmp_path: Any,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from swaprank.cli import main
    from tests.test_eval_metrics import eval_row

    spec = llm(chat, f"mode={mode_option}")
    assert main(["rerank", "--model", spec, "-q", QUERY, "--top-n", "3", *DOCS]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    best = sorted(range(N), key=lambda i: (-relevance(QUERY, DOCS[i]), i))[:3]
    assert [line["index"] for line in lines] == best  # the fake ranks by its relevance(); not a quality claim
    eval_row(spec, tmp_path)
