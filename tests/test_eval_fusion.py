"""Reciprocal rank fusion: hand-computed scores, deterministic ties, and agreement with Reranker(fuse='rrf')."""

from __future__ import annotations

import pytest

from swaprank import Reranker
from swaprank.eval.fusion import rrf
from tests import scripted_backend


def test_scores_are_the_sum_of_reciprocal_ranks() -> None:
    fused = rrf([["a", "b", "c"], ["c", "a", "d"]], k=60)
    assert [item for item, _ in fused] == ["a", "c", "b", "d"]
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)  # missing from the second ranking: nothing from it
    assert scores["d"] == pytest.approx(1 / 63)


def test_k_changes_scores_and_can_change_order() -> None:
    # x is 1st and 10th; y is 4th and 4th. Small k rewards the single top rank, large k consistency.
    rankings = [["x", "p1", "p2", "y"], ["q1", "q2", "q3", "y", "q4", "q5", "q6", "q7", "q8", "x"]]
    assert next(i for i, _ in rrf(rankings, k=0)) == "x"  # 1/1 + 1/10 > 1/4 + 1/4
    assert next(i for i, _ in rrf(rankings, k=60)) == "y"  # 2/64 > 1/61 + 1/70


def test_ties_fall_back_to_the_first_ranking_order() -> None:
    assert [i for i, _ in rrf([["a", "b"], ["b", "a"]])] == ["a", "b"]
    assert [i for i, _ in rrf([["b", "a"], ["a", "b"]])] == ["b", "a"]
    # items only in the second ranking come after first-ranking items with equal scores
    assert [i for i, _ in rrf([["a"], ["z"]])] == ["a", "z"]


def test_bad_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="lists 'a' twice"):
        rrf([["a", "a"]])
    with pytest.raises(ValueError, match="non-negative int"):
        rrf([["a"]], k=-1)
    assert rrf([]) == [] and rrf([[], []]) == []


def test_reranker_fuse_rrf_orders_like_rrf_of_input_and_model_order() -> None:
    """The eval harness relies on Reranker(fuse='rrf') for --fuse; both RRFs must agree."""
    scripted_backend.install()
    docs = [f"doc{i} s={s}" for i, s in enumerate([0.1, 0.9, 0.5, 0.7, 0.2, 0.95, 0.3])]
    model_order = sorted(range(len(docs)), key=lambda i: -float(docs[i].split("s=")[1]))
    expected = [i for i, _ in rrf([list(range(len(docs))), model_order], k=60)]
    result = Reranker("scripted:default", fuse="rrf").rerank("query", docs)
    assert [r.index for r in result] == expected
    assert result[0].fused_score == pytest.approx(dict(rrf([list(range(len(docs))), model_order]))[expected[0]])
