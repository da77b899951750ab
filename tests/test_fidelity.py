"""Fidelity on real data: swaprank, both adapters and a direct ``CrossEncoder.predict`` agree.

The real MiniLM-L6 cross-encoder reranks BM25's top candidates for a slice of BEIR SciFact test
queries through four paths. Same model, same inputs: the rankings and nDCG@10 must be identical.
This proves the machinery adds nothing and loses nothing; it says nothing about model quality
(the full 300 queries run in benchmarks/bench_fidelity.py; quality numbers come from
``swaprank eval``, see benchmarks/RESULTS.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from swaprank import Reranker
from swaprank.eval.fidelity import PATHS, four_paths, swaprank_spec
from swaprank.eval.first_stage import bm25
from swaprank.eval.loader import BeirDataset, load_beir
from swaprank.eval.metrics import evaluate

pytestmark = [pytest.mark.quality, pytest.mark.slow]

QUERIES = 8
CANDIDATES = 15


@pytest.fixture(scope="module")
def setup(real_model: str, scifact: Path) -> tuple[BeirDataset, dict[str, list[str]], str]:
    dataset = load_beir(scifact, "test").head(QUERIES)
    candidates = {q: [doc for doc, _ in hits] for q, hits in bm25(dataset, CANDIDATES).items()}
    # truncate = exactly what CrossEncoder.predict does with an over-long pair
    return dataset, candidates, swaprank_spec(real_model)


def test_four_paths_give_the_same_ranking_and_ndcg(setup: tuple[BeirDataset, dict[str, list[str]], str],
                                                   real_model: str) -> None:
    dataset, candidates, _ = setup
    rankings = four_paths(real_model, dataset, candidates)

    assert set(rankings) == set(PATHS)
    expected = rankings["predict"]
    assert set(expected) == set(candidates)
    for q, docs in candidates.items():
        assert sorted(expected[q]) == sorted(docs)  # a permutation: nothing lost, nothing added
    for path in PATHS[1:]:
        assert rankings[path] == expected, path
    assert any(expected[q] != candidates[q] for q in candidates)  # the model did reorder something

    bm25_ndcg = evaluate(dataset.qrels, candidates)["ndcg@10"]
    ndcg = {path: evaluate(dataset.qrels, r)["ndcg@10"] for path, r in rankings.items()}
    assert len(set(ndcg.values())) == 1, ndcg
    print(f"\nSciFact test, first {QUERIES} queries, BM25 top-{CANDIDATES}: "
          f"nDCG@10 BM25 {bm25_ndcg:.4f} -> reranked {ndcg['predict']:.4f} (all four paths)")


def test_window_mode_scores_every_document_in_full(setup: tuple[BeirDataset, dict[str, list[str]], str],
                                                   real_model: str) -> None:
    """Default long_docs=window: nothing is cut, and documents that fit score exactly as in truncate mode."""
    dataset, candidates, spec = setup
    q = next(iter(candidates))
    docs = [dataset.doc_text(d) for d in candidates[q]]
    window = Reranker(f"cross-encoder:{real_model}").rerank(dataset.queries[q], docs)
    truncate = Reranker(spec).rerank(dataset.queries[q], docs)
    assert window.truncated == 0
    cut = truncate.truncated
    same = [w for w in window if len(w.text) < 1000]  # short abstracts fit the 512-token window
    by_index = {t.index: t.raw_score for t in truncate}
    assert same and all(w.raw_score == pytest.approx(by_index[w.index], abs=1e-4) for w in same)
    print(f"\nquery {q}: {cut} of {len(docs)} candidates exceed 512 tokens (cut in truncate mode, windowed by default)")
