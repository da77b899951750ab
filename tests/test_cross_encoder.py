"""The local cross-encoder backend on a tiny random BERT: real loading, tokenizer and forward pass.

The tiny model's scores mean nothing, so these tests compare swaprank against the same model
called directly through sentence-transformers, which is what "the machinery is right" means.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import threading
from pathlib import Path

import numpy as np
import pytest
from sentence_transformers import CrossEncoder

from swaprank import BackendUnavailableError, ConfigError, Reranker
from swaprank.backends import registry
from swaprank.backends.cross_encoder import CrossEncoderBackend
from swaprank.config import parse_spec
from swaprank.windows import Expansion, expand
from tests.assets import build_tiny_cross_encoder

QUERY = "does vitamin d reduce the risk of bone fractures"
DOCS = [
    "Vitamin D supplementation and fracture risk in older adults.",
    "A randomized trial of calcium in postmenopausal women.",
    "Sourdough bread needs a long, slow rise.",
    "Bone mineral density measured by dual-energy x-ray absorptiometry.",
    "Vitamin D supplementation and fracture risk in older adults.",
]
# ~300 words: longer than the tiny model's 128-token window
LONG_DOC = " ".join(f"filler sentence number {i} about unrelated matters." for i in range(60))


def direct_logits(model_dir: Path, pairs: list[tuple[str, str]]) -> np.ndarray:
    model = CrossEncoder(str(model_dir), device="cpu")
    return model.predict(pairs, show_progress_bar=False)


def test_scores_match_direct_predict_and_are_sigmoid_of_logits(tiny_spec: str, tiny_model_dir: Path) -> None:
    result = Reranker(tiny_spec).rerank(QUERY, DOCS)
    logits = direct_logits(tiny_model_dir, [(QUERY, d) for d in DOCS])
    by_index = {r.index: r for r in result}
    for i, logit in enumerate(logits):
        assert by_index[i].raw_score == pytest.approx(float(logit), abs=1e-5)
        assert by_index[i].score == pytest.approx(1 / (1 + math.exp(-float(logit))), abs=1e-6)
        assert type(by_index[i].score) is float and 0.0 <= by_index[i].score <= 1.0
    expected_order = sorted(range(len(DOCS)), key=lambda i: (-round(float(logits[i]), 4), i))
    assert [r.index for r in result] == expected_order
    assert by_index[0].score == by_index[4].score  # duplicates share one score


def test_model_that_outputs_probabilities_is_not_squashed_twice(tmp_path: Path) -> None:
    prob_dir = build_tiny_cross_encoder(tmp_path / "prob", outputs_logits=False)
    result = Reranker(f"cross-encoder:{prob_dir}").rerank(QUERY, DOCS[:3])
    probabilities = CrossEncoder(str(prob_dir), device="cpu").predict([(QUERY, d) for d in DOCS[:3]])
    by_index = {r.index: r for r in result}
    for i, p in enumerate(probabilities):
        assert by_index[i].raw_score == pytest.approx(float(p), abs=1e-6)
        assert by_index[i].score == by_index[i].raw_score


def test_batch_size_and_dtype_options_do_not_change_the_ranking(tiny_spec: str) -> None:
    base = Reranker(tiny_spec).rerank(QUERY, DOCS)
    small_batches = Reranker(f"{tiny_spec}?batch_size=1").rerank(QUERY, DOCS)
    assert [r.index for r in small_batches] == [r.index for r in base]
    assert [r.score for r in small_batches] == pytest.approx([r.score for r in base], abs=1e-5)
    bf16 = Reranker(f"{tiny_spec}?dtype=bfloat16").rerank(QUERY, DOCS)
    assert len(bf16) == len(DOCS) and all(type(r.score) is float for r in bf16)


def windows_of(spec: str, query: str, docs: list[str]) -> Expansion:
    backend = registry.default_registry().acquire(parse_spec(spec))
    assert isinstance(backend, CrossEncoderBackend)
    return expand(query, docs, backend.windowing())


def test_long_document_is_windowed_and_scored_by_its_best_window(tiny_spec: str, tiny_model_dir: Path) -> None:
    expansion = windows_of(tiny_spec, QUERY, [DOCS[0], LONG_DOC])
    assert expansion.truncated == 0 and expansion.windowed == 1
    assert expansion.owners.count(0) == 1 and expansion.owners.count(1) >= 3
    windows = [t for t, o in zip(expansion.texts, expansion.owners, strict=True) if o == 1]
    # windows are real slices of the document that overlap and cover it end to end
    assert all(w in LONG_DOC for w in windows)
    assert LONG_DOC.startswith(windows[0]) and LONG_DOC.endswith(windows[-1])
    assert all(LONG_DOC.index(b) < LONG_DOC.index(a) + len(a) for a, b in itertools.pairwise(windows))
    fixed = windows_of(f"{tiny_spec}?half_window_overlap=false&window_overlap=8", QUERY, [LONG_DOC])
    assert len(fixed.texts) < len(windows) and LONG_DOC.endswith(fixed.texts[-1])  # about half the windows

    result = Reranker(tiny_spec).rerank(QUERY, [DOCS[0], LONG_DOC])
    window_logits = direct_logits(tiny_model_dir, [(QUERY, w) for w in windows])
    long_hit = next(r for r in result if r.index == 1)
    assert long_hit.raw_score == pytest.approx(float(max(window_logits)), abs=1e-5)
    assert long_hit.windows == len(windows) and not long_hit.truncated
    assert next(r for r in result if r.index == 0).windows == 1
    assert result.truncated == 0 and result.windowed == 1


def test_mean_aggregate_averages_the_windows(tiny_spec: str, tiny_model_dir: Path) -> None:
    expansion = windows_of(tiny_spec, QUERY, [LONG_DOC])
    logits = direct_logits(tiny_model_dir, [(QUERY, w) for w in expansion.texts])
    probabilities = 1 / (1 + np.exp(-logits.astype(np.float64)))
    hit = Reranker(f"{tiny_spec}?aggregate=mean").rerank(QUERY, [LONG_DOC])[0]
    assert hit.raw_score == pytest.approx(float(np.mean(logits)), abs=1e-5)
    assert hit.score == pytest.approx(float(np.mean(probabilities)), abs=1e-5)


def test_truncate_mode_matches_plain_predict_and_counts_the_cut(tiny_spec: str, tiny_model_dir: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="swaprank"):
        result = Reranker(f"{tiny_spec}?long_docs=truncate").rerank(QUERY, [DOCS[0], LONG_DOC])
    logits = direct_logits(tiny_model_dir, [(QUERY, DOCS[0]), (QUERY, LONG_DOC)])
    assert {r.index: r.raw_score for r in result} == pytest.approx({0: float(logits[0]), 1: float(logits[1])},
                                                                   abs=1e-5)
    assert result.truncated == 1 and result.windowed == 0
    assert [r.truncated for r in sorted(result, key=lambda r: r.index)] == [False, True]
    assert "of 2 documents, 0 were windowed (0 windows of 128 tokens per pair) and 1 cut" in caplog.text


def test_max_windows_caps_cost_and_counts_truncation(tiny_spec: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="swaprank"):
        result = Reranker(f"{tiny_spec}?max_windows=2").rerank(QUERY, [LONG_DOC, DOCS[0]])
    assert result.truncated == 1 and result.windowed == 1 and len(result) == 2
    long_hit = next(r for r in result if r.index == 0)
    assert long_hit.windows == 2 and long_hit.truncated
    assert caplog.text.count("were windowed") == 1  # once per call, not per document


def test_rerank_many_batches_across_queries_with_identical_results(tiny_spec: str) -> None:
    rr = Reranker(tiny_spec)
    queries = [QUERY, "bread baking", "x-ray density"]
    docs = [DOCS, DOCS[:2], [LONG_DOC, DOCS[3]]]
    many = rr.rerank_many(queries, docs)
    for query, doc_list, batched in zip(queries, docs, many, strict=True):
        single = rr.rerank(query, doc_list)
        assert [r.index for r in batched] == [r.index for r in single]
        assert [r.score for r in batched] == pytest.approx([r.score for r in single], abs=1e-6)


def test_concurrent_threads_and_async_calls_are_safe(tiny_spec: str) -> None:
    rr = Reranker(tiny_spec)
    expected = [r.index for r in rr.rerank(QUERY, DOCS)]
    seen: list[list[int]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(3):
                seen.append([r.index for r in rr.rerank(QUERY, DOCS)])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and seen == [expected] * 12

    async def many() -> list[list[int]]:
        results = await asyncio.gather(*(rr.arerank(QUERY, DOCS) for _ in range(4)))
        return [[r.index for r in res] for res in results]

    assert asyncio.run(many()) == [expected] * 4


def test_same_spec_shares_one_loaded_model(tiny_spec: str) -> None:
    a, b = Reranker(tiny_spec), Reranker(f"ce:{tiny_spec.split(':', 1)[1]}")
    a.warmup()
    b.warmup()
    assert a._backend(a.specs[0]) is b._backend(b.specs[0])


def test_missing_local_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cross-encoder model directory does not exist"):
        Reranker(f"cross-encoder:{tmp_path}/nope").rerank(QUERY, DOCS)


def test_unreachable_hub_model_is_a_typed_error_with_a_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendUnavailableError, match="offline, point the spec at a local directory") as info:
        Reranker("cross-encoder:swaprank-test/definitely-not-cached").rerank(QUERY, DOCS)
    assert info.value.vendor == "cross-encoder"


def test_unreachable_hub_model_falls_back_to_the_local_one(tiny_spec: str) -> None:
    result = Reranker(f"cross-encoder:swaprank-test/not-cached | {tiny_spec}").rerank(QUERY, DOCS)
    assert result.model == parse_spec(tiny_spec).__str__() and len(result) == len(DOCS)
