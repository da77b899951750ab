"""The colbert: backend on a tiny random ColBERT model: real loading, tokenizer, encoding and MaxSim.

The tiny model's scores mean nothing, so every score here is checked against a MaxSim computed by
hand (torch, in this file) from the token embeddings the same model returns through
sentence-transformers directly: that is what "the machinery is right" means.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from sentence_transformers import MultiVectorEncoder

from swaprank import BackendUnavailableError, ConfigError, Reranker
from swaprank.backends import registry
from swaprank.backends.colbert import ColBERTBackend, text_key, to_unit
from swaprank.config import parse_spec
from swaprank.windows import expand
from tests import scripted_backend
from tests.assets import build_tiny_colbert

QUERY = "does vitamin d reduce the risk of bone fractures"
DOCS = [
    "Vitamin D supplementation and fracture risk in older adults.",
    "A randomized trial of calcium in postmenopausal women.",
    "Sourdough bread needs a long, slow rise.",
    "Bone mineral density measured by dual-energy x-ray absorptiometry.",
]
# ~160 tokens: several windows of the tiny model's 45 document tokens, fewer than max_windows
LONG_DOC = " ".join(f"filler sentence number {i} about unrelated matters." for i in range(20))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_colbert(tmp_path_factory.mktemp("tiny-colbert"))


@pytest.fixture(scope="module")
def direct(model_dir: Path) -> MultiVectorEncoder:
    return MultiVectorEncoder(str(model_dir), device="cpu")


@pytest.fixture(autouse=True)
def _fresh_backends() -> Iterator[None]:
    """Each test gets its own backend (and so an empty document cache)."""
    scripted_backend.install()
    registry.default_registry().close()
    yield
    registry.default_registry().close()


def reference(model: MultiVectorEncoder, query: str, docs: list[str]) -> tuple[list[float], int]:
    """MaxSim by hand: normalise the model's own token embeddings, sum each query token's best cosine."""
    q = torch.nn.functional.normalize(model.encode_query([query])[0], dim=-1)
    raws = []
    for d in model.encode_document(docs):
        d = torch.nn.functional.normalize(d, dim=-1)
        raws.append(float((q @ d.T).max(dim=1).values.sum()))
    return raws, int(q.shape[0])


def backend(spec: str) -> ColBERTBackend:
    built = registry.default_registry().acquire(parse_spec(spec))
    assert isinstance(built, ColBERTBackend)
    return built


def count_document_encodes(b: ColBERTBackend, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every text that reaches the model's document encoder, in order."""
    seen: list[str] = []
    original = b._model.encode_document

    def spy(texts: list[str], **kwargs: Any) -> Any:
        seen.extend(texts)
        return original(texts, **kwargs)

    monkeypatch.setattr(b._model, "encode_document", spy)
    return seen


# ------------------------------------------------------------------ scores


def test_scores_are_maxsim_of_normalised_token_embeddings(model_dir: Path, direct: MultiVectorEncoder) -> None:
    result = Reranker(f"colbert:{model_dir}?device=cpu").rerank(QUERY, DOCS)
    raws, query_tokens = reference(direct, QUERY, DOCS)
    assert query_tokens > 1
    by_index = {r.index: r for r in result}
    for i, raw in enumerate(raws):
        assert by_index[i].raw_score == pytest.approx(raw, abs=1e-4)
        assert by_index[i].score == pytest.approx((raw / query_tokens + 1) / 2, abs=1e-5)
        assert type(by_index[i].score) is float and 0.0 <= by_index[i].score <= 1.0
    assert [r.index for r in result] == sorted(range(len(DOCS)), key=lambda i: -raws[i])
    assert result.model_name == f"colbert:{model_dir}"


def test_the_model_embeddings_are_not_unit_vectors_so_normalising_matters(direct: MultiVectorEncoder) -> None:
    # Guards the test above: if the tiny model already returned unit vectors, it could not tell
    # whether the backend normalises.
    norms = direct.encode_document([DOCS[0]])[0].norm(dim=-1)
    assert not torch.allclose(norms, torch.ones_like(norms), atol=1e-2)


def test_mapping_is_affine_in_the_mean_best_cosine() -> None:
    assert to_unit(8.0, 8) == 1.0  # every query token has an identical document token
    assert to_unit(0.0, 8) == 0.5
    assert to_unit(-8.0, 8) == 0.0
    assert to_unit(4.0, 8) == pytest.approx(0.75)
    assert to_unit(4.0, 16) == pytest.approx(0.625)  # the same MaxSim means less for a longer query
    assert to_unit(-3.0, 8) < to_unit(-2.9, 8)  # negative means stay ordered (no clip)
    assert to_unit(8.0 + 1e-6, 8) == 1.0  # float rounding past a perfect match stays on [0, 1]


def test_threshold_keeps_documents_whose_mean_best_cosine_reaches_2t_minus_1(
        model_dir: Path, direct: MultiVectorEncoder) -> None:
    raws, n = reference(direct, QUERY, DOCS)
    means = sorted(raw / n for raw in raws)
    cut = (means[1] + means[2]) / 2  # between the second and third document
    threshold = (cut + 1) / 2
    kept = Reranker(f"colbert:{model_dir}", score_threshold=threshold).rerank(QUERY, DOCS)
    assert sorted(r.index for r in kept) == sorted(i for i, raw in enumerate(raws) if raw / n >= cut)
    assert len(kept) == 2


def test_query_expansion_tokens_count_as_query_tokens(tmp_path: Path) -> None:
    expanded_dir = build_tiny_colbert(tmp_path / "expanded", query_expansion=16)
    model = MultiVectorEncoder(str(expanded_dir), device="cpu")
    raws, n = reference(model, "bone fractures", DOCS)
    assert n == 16  # 2 words + [CLS] [Q] [SEP], padded with [MASK] to 16 vectors
    scores = ColBERTBackend(parse_spec(f"colbert:{expanded_dir}")).score("bone fractures", DOCS)
    assert scores.raw == pytest.approx(raws, abs=1e-4)
    assert scores.normalized == pytest.approx([(raw / 16 + 1) / 2 for raw in raws], abs=1e-5)
    with pytest.raises(ConfigError, match="pads every query to"):
        ColBERTBackend(parse_spec(f"colbert:{expanded_dir}?query_length=8"))


# ------------------------------------------------------------------ document cache


def test_a_repeated_document_is_encoded_once(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = backend(f"colbert:{model_dir}")
    seen = count_document_encodes(b, monkeypatch)
    rr = Reranker(f"colbert:{model_dir}")
    first = rr.rerank(QUERY, DOCS[:3])
    second = rr.rerank("calcium and bone density", DOCS[1:])
    assert sorted(seen) == sorted(DOCS)  # DOCS[1] and DOCS[2] came back and were not encoded again
    assert (b.cache.hits, b.cache.misses, len(b.cache)) == (2, 4, 4)
    again = rr.rerank(QUERY, DOCS[:3])
    assert len(seen) == len(DOCS)
    assert [(r.index, r.raw_score) for r in again] == [(r.index, r.raw_score) for r in first]
    # Cached embeddings score exactly as freshly encoded ones do.
    uncached = Reranker(f"colbert:{model_dir}?doc_cache=0").rerank("calcium and bone density", DOCS[1:])
    assert [(r.index, r.raw_score) for r in second] == [(r.index, pytest.approx(r.raw_score, abs=1e-6))
                                                         for r in uncached]


def test_doc_cache_is_a_bounded_lru(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = backend(f"colbert:{model_dir}?doc_cache=2")
    seen = count_document_encodes(b, monkeypatch)
    a, bb, c = DOCS[:3]
    for docs in ([a, bb], [a], [c], [a], [bb]):  # c evicts bb (a was used more recently), bb then evicts c
        b.score(QUERY, docs)
    assert seen == [a, bb, c, bb]
    assert len(b.cache) == 2
    assert b.cache.get(text_key(c)) is None
    assert b.cache.get(text_key(a)) is not None and b.cache.get(text_key(bb)) is not None


def test_doc_cache_zero_encodes_every_time_and_a_call_encodes_a_text_once(
        model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    b = backend(f"colbert:{model_dir}?doc_cache=0")
    seen = count_document_encodes(b, monkeypatch)
    b.score_many([(QUERY, DOCS[:2]), ("another query", [DOCS[1], DOCS[0]])])
    assert seen == DOCS[:2]  # shared by both queries of one call
    b.score(QUERY, DOCS[:2])
    assert seen == DOCS[:2] * 2 and len(b.cache) == 0


# ------------------------------------------------------------------ batching


def test_queries_batched_in_one_call_score_as_one_by_one(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    queries = [QUERY, "calcium trial", "how to bake sourdough bread at home"]
    docs = [DOCS, DOCS[1:], [DOCS[2], LONG_DOC[:120]]]
    b = backend(f"colbert:{model_dir}?batch_size=2")
    calls: list[int] = []
    original = b._model.encode_query

    def spy(texts: list[str], **kwargs: Any) -> Any:
        calls.append(len(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(b._model, "encode_query", spy)
    together = Reranker(f"colbert:{model_dir}?batch_size=2").rerank_many(queries, docs)
    assert calls == [3]  # every query in one encode call
    alone = ColBERTBackend(parse_spec(f"colbert:{model_dir}?batch_size=1&doc_cache=0"))
    for query, texts, result in zip(queries, docs, together, strict=True):
        expected = alone.score(query, texts)
        by_index = {r.index: r for r in result}
        assert [by_index[i].raw_score for i in range(len(texts))] == pytest.approx(expected.raw, abs=1e-4)
        assert [by_index[i].score for i in range(len(texts))] == pytest.approx(expected.normalized, abs=1e-5)


async def test_async_rerank_matches_sync(model_dir: Path) -> None:
    rr = Reranker(f"colbert:{model_dir}")
    sync = rr.rerank(QUERY, DOCS)
    result = await rr.arerank(QUERY, DOCS)
    assert [(r.index, r.score) for r in result] == [(r.index, r.score) for r in sync]


# ------------------------------------------------------------------ long documents


def test_long_document_is_windowed_and_scored_by_its_best_window(
        model_dir: Path, direct: MultiVectorEncoder) -> None:
    spec = f"colbert:{model_dir}"
    b = backend(spec)
    windowing = b.windowing()
    assert windowing is not None and windowing.limit.tokens == 48 - 3  # [CLS] [D] ... [SEP]
    assert not windowing.limit.includes_query  # the query is encoded apart
    expansion = expand(QUERY, [DOCS[0], LONG_DOC], windowing)
    assert expansion.windows[0] == 1 and 3 <= expansion.windows[1] <= 16
    window_texts = expansion.texts[1:]
    assert all(len(direct.tokenizer(t, add_special_tokens=False)["input_ids"]) <= 45 for t in window_texts)
    result = Reranker(spec).rerank(QUERY, [DOCS[0], LONG_DOC])
    assert result.windowed == 1 and result.truncated == 0
    long = next(r for r in result if r.index == 1)
    assert long.windows == expansion.windows[1] and not long.truncated
    raws, n = reference(direct, QUERY, window_texts)
    assert long.raw_score == pytest.approx(max(raws), abs=1e-4)
    assert long.score == pytest.approx((max(raws) / n + 1) / 2, abs=1e-5)


def test_truncate_mode_lets_the_model_cut_and_counts_it(model_dir: Path, direct: MultiVectorEncoder) -> None:
    result = Reranker(f"colbert:{model_dir}?long_docs=truncate").rerank(QUERY, [DOCS[0], LONG_DOC])
    assert result.windowed == 0 and result.truncated == 1
    long = next(r for r in result if r.index == 1)
    assert long.truncated and long.windows == 1
    raws, _ = reference(direct, QUERY, [LONG_DOC])  # the model reads its first 48 tokens
    assert long.raw_score == pytest.approx(raws[0], abs=1e-4)


def test_length_options_reach_the_model(model_dir: Path) -> None:
    windowing = backend(f"colbert:{model_dir}?document_length=32").windowing()
    assert windowing is not None and windowing.limit.tokens == 32 - 3
    scores = backend(f"colbert:{model_dir}?query_length=6").score(QUERY, DOCS[:1])
    query_vectors = scores.raw[0] / (2 * scores.normalized[0] - 1)  # the mapping, solved for the count
    assert query_vectors == pytest.approx(6, abs=1e-3)  # [CLS] [Q] + 3 words + [SEP]: the query was cut


# ------------------------------------------------------------------ policy and adapters


def test_top_n_and_fallback_chain(model_dir: Path, direct: MultiVectorEncoder,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    raws, _ = reference(direct, QUERY, DOCS)
    served = Reranker(f"scripted:a?fail=true | colbert:{model_dir}", top_n=2).rerank(QUERY, DOCS)
    assert served.model_name == f"colbert:{model_dir}"
    assert [r.index for r in served] == sorted(range(len(DOCS)), key=lambda i: -raws[i])[:2]

    b = backend(f"colbert:{model_dir}")

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("CUDA out of memory (simulated)")

    monkeypatch.setattr(b._model, "encode_query", broken)
    with pytest.raises(BackendUnavailableError, match=r"failed to score.*simulated"):
        b.score(QUERY, DOCS)
    fell_back = Reranker(f"colbert:{model_dir} | scripted", top_n=2).rerank(QUERY, DOCS)
    assert fell_back.model_name.startswith("scripted") and len(fell_back) == 2


def test_langchain_compressor(model_dir: Path, direct: MultiVectorEncoder) -> None:
    from langchain_core.documents import Document

    from swaprank.langchain import RerankCompressor

    raws, n = reference(direct, QUERY, DOCS)
    docs = [Document(id=f"d{i}", page_content=t) for i, t in enumerate(DOCS)]
    out = RerankCompressor(model=f"colbert:{model_dir}", top_n=3).compress_documents(docs, QUERY)
    order = sorted(range(len(DOCS)), key=lambda i: -raws[i])[:3]
    assert [d.id for d in out] == [f"d{i}" for i in order]
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx(
        [(raws[i] / n + 1) / 2 for i in order], abs=1e-5)


def test_llama_index_postprocessor(model_dir: Path, direct: MultiVectorEncoder) -> None:
    from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

    from swaprank.llama_index import RerankPostprocessor

    raws, n = reference(direct, QUERY, DOCS)
    nodes = [NodeWithScore(node=TextNode(id_=f"n{i}", text=t), score=1.0) for i, t in enumerate(DOCS)]
    pp = RerankPostprocessor(model=f"colbert:{model_dir}", top_n=2, metadata_mode=MetadataMode.NONE)
    out = pp.postprocess_nodes(nodes, query_str=QUERY)
    order = sorted(range(len(DOCS)), key=lambda i: -raws[i])[:2]
    assert [x.node.node_id for x in out] == [f"n{i}" for i in order]
    assert [x.score for x in out] == pytest.approx([(raws[i] / n + 1) / 2 for i in order], abs=1e-5)


def test_cli_rerank_and_eval(model_dir: Path, direct: MultiVectorEncoder, tmp_path: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    from swaprank.cli import main
    from tests.test_eval_metrics import eval_row

    spec = f"colbert:{model_dir}"
    assert main(["rerank", "--model", spec, "-q", QUERY, "--top-n", "2", *DOCS]) == 0
    printed = capsys.readouterr()
    lines = [json.loads(line) for line in printed.out.splitlines()]
    raws, _ = reference(direct, QUERY, DOCS)
    assert [line["index"] for line in lines] == sorted(range(len(DOCS)), key=lambda i: -raws[i])[:2]
    assert json.loads(printed.err.strip().splitlines()[-1])["model"] == spec

    eval_row(spec, tmp_path)


# ------------------------------------------------------------------ errors and imports


@pytest.mark.parametrize("options", ["doc_cache=-1", "batch_size=0", "document_length=2", "dtype=int8",
                                     "long_docs=split"])
def test_bad_options_are_config_errors(model_dir: Path, options: str) -> None:
    with pytest.raises(ConfigError):
        Reranker(f"colbert:{model_dir}?{options}")


def test_missing_directory_and_unloadable_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        ColBERTBackend(parse_spec(f"colbert:{tmp_path / 'nope'}"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendUnavailableError, match="could not load colbert model"):
        ColBERTBackend(parse_spec(f"colbert:{tmp_path / 'empty'}"))


def test_registered_and_importing_it_pulls_in_no_framework() -> None:
    assert "colbert" in registry.available_backends()
    code = ("import sys, swaprank.backends.colbert, swaprank.backends.registry as r; "
            "r.default_registry().registration('colbert'); "
            "bad = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
