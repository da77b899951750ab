"""Long documents on every backend: window geometry, the model's limit, and servers with limits.

The geometry is checked exhaustively on token positions (no model needed), then on the tiny
model's real tokenizer (what the model sees), then end to end against fake servers that reject or
cut over-long pairs the way vLLM, TEI, Voyage and Cohere do.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swaprank import BadRequestError, ConfigError, Reranker
from swaprank.backends import registry
from swaprank.backends.cross_encoder import CrossEncoderBackend
from swaprank.backends.limits import LengthLimits
from swaprank.backends.registry import default_registry
from swaprank.config import parse_spec
from swaprank.eval.loader import load_beir
from swaprank.windows import CharCounter, Limit, Windowing, WindowPolicy, expand, local_tokenizer, window_spans
from tests.fakes import FakeServer, relevance
from tests.fakes.helpers import TEST_KEY, rerank, spec

pytest_plugins = ["tests.fakes.fixtures"]

QUERY = "does vitamin d reduce the risk of bone fractures"
WORDS = [
    "cell", "protein", "study", "patients", "analysis", "expression", "levels", "results", "increased",
    "significant", "model", "data", "function", "response", "mice", "treatment", "gene", "risk",
]


def filler(words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(words))


# ----------------------------------------------------------------------------- geometry


@given(n=st.integers(1, 3000), budget=st.integers(16, 600), data=st.data())
def test_any_passage_of_half_a_window_lies_whole_in_some_window(n: int, budget: int, data: st.DataObject) -> None:
    spans = window_spans(n, budget, WindowPolicy(half=True))
    assert spans[0][0] == 0 and spans[-1][1] == n  # covers the document end to end
    assert all(0 <= a < b <= n and b - a <= budget for a, b in spans)  # no window over the budget
    length = min(n, budget // 2 + 1)
    start = data.draw(st.integers(0, n - length))
    assert any(a <= start and start + length <= b for a, b in spans), (start, length, spans)


def test_a_fixed_overlap_covers_the_document_and_max_windows_counts_the_cut() -> None:
    spans = window_spans(1000, 100, WindowPolicy(half=False))  # 32 tokens shared, the last window may be short
    assert spans[0] == (0, 100) and spans[1] == (68, 168) and spans[-1][1] == 1000
    assert all(b[0] == a[1] - 32 for a, b in itertools.pairwise(spans))
    assert window_spans(1000, 100, WindowPolicy(overlap=10, half=False))[1] == (90, 190)
    counter = CharCounter()
    long_text = filler(2000, 0)
    expansion = expand("q", [long_text, "short"], Windowing(counter, Limit(200), WindowPolicy(max_windows=3)))
    assert expansion.windows == [3, 1] and expansion.cut == [True, False]
    assert expansion.owners == [0, 0, 0, 1] and expansion.texts[-1] == "short"
    assert expansion.texts[0] == long_text[: len(expansion.texts[0])]  # the kept windows are the first ones


def test_truncate_mode_counts_without_splitting_and_unknown_limits_count_nothing() -> None:
    long_text = filler(500, 1)
    truncate = expand("q", [long_text, "short"], Windowing(CharCounter(), Limit(100), WindowPolicy(mode="truncate")))
    assert truncate.texts == [long_text, "short"] and truncate.cut == [True, False] and truncate.windowed == 0
    unknown = expand("q", [long_text], None)
    assert unknown.texts == [long_text] and unknown.cut == [False] and not unknown.measured


def test_char_estimate_never_undercounts_the_real_tokenizer(real_model: str, scifact: Path) -> None:
    """On English prose (all of SciFact) and CJK text; the measured ratio is in benchmarks/RESULTS.md."""
    exact = local_tokenizer(real_model, required=True)
    assert exact is not None and exact.exact
    dataset = load_beir(scifact, "test")
    texts = [dataset.doc_text(d) for d in dataset.corpus] + ["维生素D与骨折风险的关系", filler(300, 2)]
    estimated = CharCounter().offsets(texts)
    real = exact.offsets(texts)
    short = [t[:60] for t, e, r in zip(texts, estimated, real, strict=True) if len(e) < len(r)]
    assert not short, short


def test_a_tokenizer_that_cannot_be_found_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tokenizer='/nonexistent'"):
        local_tokenizer("/nonexistent", required=True)
    assert local_tokenizer("no-such-org/no-such-model", required=False) is None  # not cached, no network


# ----------------------------------------------------------------------------- the local model's limit


def test_every_window_fits_the_model_and_keeps_the_whole_query(tiny_spec: str, tiny_model_dir: Path) -> None:
    backend = registry.default_registry().acquire(parse_spec(f"{tiny_spec}?half_window_overlap=true&max_windows=64"))
    assert isinstance(backend, CrossEncoderBackend) and backend.tokenizer is not None
    windowing = backend.windowing()
    assert windowing is not None and windowing.limit.tokens == 128
    exact = local_tokenizer(str(tiny_model_dir), required=True)
    assert exact is not None
    query_tokens = len(exact.offsets([QUERY])[0])
    room = 128 - query_tokens - exact.special_tokens - windowing.limit.margin
    window = room // 2  # the default window: half of what the model reads
    planted = "vitamin d supplementation lowered hip fracture risk in elderly women by a third"
    planted_tokens = len(exact.offsets([planted])[0])
    assert planted_tokens <= window // 2  # so the guarantee applies: whole in some window, wherever it sits
    for position in range(0, 420, 7):  # the planted passage at every offset, including across window edges
        words = filler(position, 3).split()
        doc = " ".join([*words, planted, *filler(250, 4).split()])
        expansion = expand(QUERY, [doc], windowing)
        assert expansion.windowed == 1 and not expansion.truncated
        # half-size windows (re-tokenizing a cut edge may add a word piece or two)
        assert max(len(exact.offsets([w])[0]) for w in expansion.texts) <= window + 2
        assert any(planted in w for w in expansion.texts), position
        for encoding in backend.tokenizer.encode([(QUERY, w) for w in expansion.texts]):
            assert len(encoding.ids) <= 128
            assert encoding.type_ids.count(0) == query_tokens + 2  # [CLS] query [SEP]: the query was not cut
    # and the real tokenizer, untruncated, agrees that no window exceeds the model's limit
    for w in expansion.texts:
        assert len(exact.offsets([w])[0]) + query_tokens + exact.special_tokens <= 128


@pytest.mark.parametrize("query_id", ["3", "5", "13", "42"])
def test_planted_answer_past_the_window_is_found(real_model: str, scifact: Path, query_id: str) -> None:
    """The real stand-in model: a relevant SciFact abstract buried behind three unrelated ones
    (past token 512), against two candidates built the same way around unrelated abstracts."""
    dataset = load_beir(scifact, "test")
    relevant = next(iter(dataset.qrels[query_id]))
    others = [d for d in random.Random(0).sample(list(dataset.corpus), 8) if d not in dataset.qrels[query_id]]
    lead, tail = " ".join(dataset.doc_text(d) for d in others[:3]), dataset.doc_text(others[3])
    docs = [f"{lead} {dataset.doc_text(d)} {tail}" for d in (relevant, others[4], others[5])]
    query = dataset.queries[query_id]
    windowed = Reranker(f"cross-encoder:{real_model}").rerank(query, docs)
    fixed = Reranker(f"cross-encoder:{real_model}?half_window_overlap=false").rerank(query, docs)
    truncated = Reranker(f"cross-encoder:{real_model}?long_docs=truncate").rerank(query, docs)
    assert windowed[0].index == 0 and windowed[0].score > 2 * max(r.score for r in truncated)
    assert windowed.windowed == 3 and windowed.truncated == 0 and min(r.windows for r in windowed) >= 3
    assert fixed[0].index == 0 and fixed[0].score > 2 * max(r.score for r in truncated)
    assert min(r.windows for r in windowed) > min(r.windows for r in fixed)
    assert truncated.truncated == 3 and max(r.score for r in truncated) < 0.1  # the answer is never seen


# ----------------------------------------------------------------------------- servers with limits

LIMIT = 60  # whitespace tokens per pair the fake servers accept
ANSWER = "cat dog cat dog friends"


def long_docs() -> list[str]:
    """Three documents far over the limit; the first hides the answer in its middle."""
    return [filler(50, 5) + " " + ANSWER + " " + filler(50, 6), filler(110, 7), "a cat naps", filler(105, 8)]


def expect_full_ranking(result: list, docs: list[str]) -> None:
    assert sorted(r.index for r in result) == list(range(len(docs)))
    assert result[0].index == 0  # the windowed answer beats every cut-free but irrelevant document


@pytest.mark.parametrize("vendor", ["jina", "tei"])
def test_a_server_that_rejects_long_pairs_still_returns_a_full_ranking(server: FakeServer, mode: str) -> None:
    server.max_tokens = LIMIT
    docs = long_docs()
    options = {"max_length": LIMIT} if server.vendor == "jina" else {"truncate": False}
    result = rerank(Reranker(spec(server, **options), api_key=TEST_KEY), mode, "cat dog", docs, top_n=None)
    expect_full_ranking(result, docs)
    assert result.windowed == 3 and result.truncated == 0
    assert result[0].windows > 1 and result[0].score == pytest.approx(relevance("cat dog", ANSWER), abs=0.02)
    sent = [d for r in server.requests for d in r.documents]
    assert all(len(d.split()) + 2 <= LIMIT for d in sent)  # no window was over the server's limit
    assert all(r.status == 200 for r in server.requests)
    assert result.usage is not None and result.usage.total_tokens == sum(len(d.split()) + 2 for d in sent)
    if server.vendor == "tei":
        assert len(server.gets) <= 1  # the limit came from the server's /info, asked once per backend


@pytest.mark.parametrize("vendor", ["jina"])
def test_without_a_known_limit_the_rejection_is_a_typed_error(server: FakeServer) -> None:
    server.max_tokens = LIMIT
    rr = Reranker(spec(server).replace("jina-reranker-v2-base-multilingual", "my-vllm-model"), api_key=TEST_KEY)
    with pytest.raises(BadRequestError, match="maximum context length is 60 tokens"):
        rr.rerank("cat dog", long_docs())


@pytest.mark.parametrize("vendor", ["jina"])
def test_vllm_truncate_prompt_tokens_is_forwarded(server: FakeServer) -> None:
    server.max_tokens = LIMIT
    rr = Reranker(spec(server, truncate_prompt_tokens=LIMIT, long_docs="truncate").replace(
        "jina-reranker-v2-base-multilingual", "my-vllm-model"), api_key=TEST_KEY)
    result = rr.rerank("cat dog", long_docs())
    assert len(result) == 4 and server.requests[0].body["truncate_prompt_tokens"] == LIMIT
    assert server.requests[0].cut == 3  # the server cut them, as asked


@pytest.mark.parametrize("vendor", ["cohere", "voyage", "tei"])
def test_vendor_truncation_knobs_reach_the_wire(server: FakeServer) -> None:
    knob = {"cohere": ("max_tokens_per_doc", 512), "voyage": ("truncation", False), "tei": ("truncate", True)}
    name, value = knob[server.vendor]
    Reranker(spec(server, **{name: value}), api_key=TEST_KEY).rerank("cat dog", ["a cat", "a dog"])
    assert server.requests[0].body[name] == value


@pytest.mark.parametrize("vendor", ["cohere"])
def test_cohere_windows_past_max_tokens_per_doc_instead_of_a_silent_cut(server: FakeServer) -> None:
    server.max_tokens = LIMIT  # the fake cuts silently, as Cohere does past max_tokens_per_doc
    docs = long_docs()
    windowed = Reranker(spec(server, max_tokens_per_doc=LIMIT - 2), api_key=TEST_KEY).rerank("cat dog", docs)
    expect_full_ranking(windowed, docs)
    assert windowed.windowed == 3 and all(r.cut == 0 for r in server.requests)
    server.reset()
    server.max_tokens = LIMIT
    cut = Reranker(spec(server, max_tokens_per_doc=LIMIT - 2, long_docs="truncate"), api_key=TEST_KEY).rerank(
        "cat dog", docs)
    assert cut.truncated == 3 and server.requests[0].cut == 3  # counted on our side, cut on theirs


@pytest.mark.parametrize("vendor", ["tei"])
def test_tei_without_info_sends_documents_whole_and_says_so(server: FakeServer, monkeypatch: pytest.MonkeyPatch,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(type(server), "get", lambda self, path: None)  # an old server or a proxy: /info is 404
    default_registry().close()  # a TEI backend built by an earlier test for this server already knows /info
    with caplog.at_level("WARNING", logger="swaprank"):
        result = Reranker(spec(server)).rerank("cat dog", ["a cat", "a dog"])
    assert len(result) == 2 and result.windowed == 0
    assert "tei /info unavailable" in caplog.text and "set max_length" in caplog.text


@pytest.mark.parametrize("vendor", ["jina"])
def test_a_local_tokenizer_counts_tokens_for_a_server(server: FakeServer, tiny_model_dir: Path) -> None:
    rr = Reranker(spec(server, max_length=64, tokenizer=str(tiny_model_dir)), api_key=TEST_KEY)
    backend = rr._backend(rr.specs[0])
    assert isinstance(backend, LengthLimits)
    windowing = backend.windowing()
    assert windowing is not None and windowing.counter.exact and windowing.limit.margin == 2
    with pytest.raises(ConfigError, match="tokenizer="):
        Reranker(spec(server, tokenizer="/nonexistent/tok"), api_key=TEST_KEY).warmup()


# ----------------------------------------------------------------------------- what the adapters show

LONG = " ".join(f"filler sentence number {i} about unrelated matters." for i in range(60))  # > 128 tokens


def test_langchain_documents_say_which_were_windowed_or_cut(tiny_spec: str) -> None:
    from langchain_core.documents import Document as LCDocument

    from swaprank.langchain import RerankCompressor

    docs = [LCDocument(page_content="a short note", metadata={"k": 1}), LCDocument(page_content=LONG)]
    out = {d.page_content: d.metadata for d in RerankCompressor(model=tiny_spec, top_n=None).compress_documents(
        docs, QUERY)}
    assert out[LONG]["rerank_windows"] >= 3 and "rerank_truncated" not in out[LONG]
    assert out["a short note"] == {"k": 1, "relevance_score": out["a short note"]["relevance_score"],
                                   "rerank_model": tiny_spec}  # nothing added to a document that fit
    capped = RerankCompressor(model=f"{tiny_spec}?max_windows=2", top_n=None).compress_documents(docs, QUERY)
    cut = next(d for d in capped if d.page_content == LONG).metadata
    assert cut["rerank_windows"] == 2 and cut["rerank_truncated"] is True


def test_llama_index_nodes_say_it_outside_the_llm_text(tiny_spec: str) -> None:
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode

    from swaprank.llama_index import RerankPostprocessor

    nodes = [NodeWithScore(node=TextNode(text=LONG, id_="long"), score=0.1),
             NodeWithScore(node=TextNode(text="a short note", id_="short"), score=0.2)]
    out = RerankPostprocessor(model=f"{tiny_spec}?long_docs=truncate", top_n=None).postprocess_nodes(
        nodes, QueryBundle(QUERY))
    by_id = {n.node.node_id: n.node for n in out}
    assert by_id["long"].metadata == {"rerank_truncated": True} and by_id["short"].metadata == {}
    assert "rerank_truncated" not in by_id["long"].get_content(metadata_mode=MetadataMode.LLM)
    windowed = RerankPostprocessor(model=tiny_spec, top_n=None).postprocess_nodes(nodes, QueryBundle(QUERY))
    assert next(n for n in windowed if n.node.node_id == "long").node.metadata["rerank_windows"] >= 3
