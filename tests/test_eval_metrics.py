"""Metric wiring: hand-computed nDCG/MRR/Recall, through pytrec_eval and through the whole BM25 path."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from swaprank.eval.first_stage import bm25
from swaprank.eval.loader import load_beir
from swaprank.eval.metrics import evaluate, latency_summary, per_query, recall_at

# Three queries; BM25 (stopwords removed) ranks them as the comments say:
#   q1 "zebra"       -> [d1]        d1 relevant          nDCG@10 = 1,           RR = 1
#   q2 "lion tiger"  -> [d2, d3]    d3 relevant          nDCG@10 = 1/log2(3),   RR = 1/2
#   q3 "whale"       -> [d4]        d5 relevant (no term in common, never retrieved): 0
TINY_CORPUS = {
    "d1": ("Zebra", "zebra stripes savanna"),
    "d2": ("Lion tiger", "lion tiger jungle"),
    "d3": ("Lion", "lion pride grassland"),
    "d4": ("Whale", "whale ocean"),
    "d5": ("Dolphin", "dolphin sea"),
    "d6": ("Eagle", "eagle sky"),
}
TINY_QUERIES = {"q1": "zebra", "q2": "lion and the tiger", "q3": "whale"}
TINY_QRELS = {"q1": {"d1": 1}, "q2": {"d3": 1}, "q3": {"d5": 1}}
TINY_NDCG = (1.0 + 1.0 / math.log2(3) + 0.0) / 3


def write_tiny_beir(folder: Path) -> Path:
    """The 3-query dataset above in BEIR format (qrels with CRLF and a header, like SciFact's)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": d, "title": t, "text": x}) + "\n" for d, (t, x) in TINY_CORPUS.items()))
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in TINY_QUERIES.items()))
    (folder / "qrels").mkdir(exist_ok=True)
    judged = [f"{q}\t{d}\t{r}" for q, docs in TINY_QRELS.items() for d, r in docs.items()]
    lines = ["query-id\tcorpus-id\tscore", *judged]
    (folder / "qrels" / "test.tsv").write_bytes(("\r\n".join(lines) + "\r\n").encode())
    return folder


def eval_row(spec: str, tmp_path: Path) -> dict[str, Any]:
    """``swaprank eval`` of ``spec`` reranking BM25's top 2 on the tiny dataset: its row of the JSON
    report, after checking the command succeeded and the model scored documents without an error."""
    from swaprank.cli import main

    out = tmp_path / "out"
    assert main(["eval", "--data", str(write_tiny_beir(tmp_path / "tiny")), "--candidates", "2", "--model", spec,
                 "--out", str(out), "--no-progress"]) == 0
    rows = json.loads((out / "tiny-test.json").read_text())["rows"]
    row: dict[str, Any] = next(r for r in rows if r.get("model"))  # the reranked row (the others are first stages)
    assert row["docs_scored"] > 0 and not row.get("error")
    return row


def test_hand_computed_metrics_with_graded_relevance() -> None:
    qrels = {"a": {"d1": 1}, "b": {"d4": 2, "d5": 1}, "c": {"d7": 1}}
    rankings = {"a": ["d2", "d1", "d3"], "b": ["d4", "d6", "d5"], "c": ["d8", "d9"]}
    scores = per_query(qrels, rankings)
    assert scores["a"]["ndcg@10"] == pytest.approx(1 / math.log2(3))
    # DCG = 2/log2(2) + 1/log2(4) = 2.5; ideal = 2/log2(2) + 1/log2(3)
    assert scores["b"]["ndcg@10"] == pytest.approx(2.5 / (2 + 1 / math.log2(3)))
    assert scores["c"] == {"ndcg@10": 0.0, "mrr@10": 0.0, "recall@10": 0.0, "recall@100": 0.0}
    assert (scores["a"]["mrr@10"], scores["b"]["mrr@10"]) == (0.5, 1.0)
    means = evaluate(qrels, rankings)
    assert means["ndcg@10"] == pytest.approx((1 / math.log2(3) + 2.5 / (2 + 1 / math.log2(3))) / 3)
    assert means["mrr@10"] == pytest.approx(0.5)
    assert means["recall@10"] == pytest.approx(2 / 3)


def test_list_order_is_kept_even_when_ids_sort_the_other_way() -> None:
    # trec_eval sorts by score and breaks ties by doc id; our rankings must never tie.
    assert per_query({"q": {"z": 1}}, {"q": ["z", "a"]})["q"]["mrr@10"] == 1.0
    assert per_query({"q": {"a": 1}}, {"q": ["z", "a"]})["q"]["mrr@10"] == 0.5


def test_mrr_is_cut_at_10_and_recall_at_100_sees_further() -> None:
    ranking = [f"x{i}" for i in range(10)] + ["rel"]
    scores = per_query({"q": {"rel": 1}}, {"q": ranking})["q"]
    assert scores["mrr@10"] == 0.0  # trec_eval's plain recip_rank would say 1/11
    assert scores["recall@10"] == 0.0 and scores["recall@100"] == 1.0
    assert recall_at({"q": {"rel": 1}}, {"q": ranking}, 11) == 1.0
    assert recall_at({"q": {"rel": 1}}, {"q": ranking}, 10) == 0.0


def test_queries_missing_from_the_run_count_as_zero() -> None:
    means = evaluate({"a": {"d1": 1}, "b": {"d2": 1}}, {"a": ["d1"]})
    assert means["ndcg@10"] == 0.5


def test_duplicate_documents_in_a_ranking_are_an_error() -> None:
    with pytest.raises(ValueError, match="twice"):
        per_query({"a": {"d1": 1}}, {"a": ["d1", "d1"]})


def test_bm25_on_the_hand_made_dataset_gives_the_hand_computed_ndcg(tmp_path: Path) -> None:
    data = load_beir(write_tiny_beir(tmp_path))
    ranking = bm25(data, 100)
    ranked = {q: [d for d, _ in ranking[q]] for q in data.query_ids}
    assert ranked == {"q1": ["d1"], "q2": ["d2", "d3"], "q3": ["d4"]}  # zero-score documents are not retrieved
    means = evaluate(data.qrels, ranked)
    assert means["ndcg@10"] == pytest.approx(TINY_NDCG)
    assert means["mrr@10"] == pytest.approx(0.5)
    assert means["recall@100"] == pytest.approx(2 / 3)


def test_latency_summary() -> None:
    summary = latency_summary([0.1] * 19 + [1.0], docs=200)
    assert summary["median_ms"] == pytest.approx(100.0)
    assert summary["p95_ms"] == pytest.approx(100.0)  # nearest rank: the 19th of 20
    assert summary["docs_per_s"] == pytest.approx(200 / 2.9)
    assert latency_summary([], docs=0) == {"median_ms": None, "p95_ms": None, "docs_per_s": None}


@pytest.mark.quality
def test_scifact_bm25_lands_within_001_of_the_beir_paper(scifact: Path) -> None:
    data = load_beir(scifact, "test")
    ranking = bm25(data, 100)
    means = evaluate(data.qrels, {q: [d for d, _ in ranking[q]] for q in data.query_ids})
    assert means["ndcg@10"] == pytest.approx(0.665, abs=0.01)  # BEIR paper (Thakur et al., 2021), Elasticsearch
    assert means["ndcg@10"] == pytest.approx(0.6617, abs=5e-4)  # bm25s defaults, English stopwords, no stemming
    assert means["recall@100"] == pytest.approx(0.8759, abs=5e-4)


def test_paired_p_value() -> None:
    from swaprank.eval.metrics import paired_p_value

    assert paired_p_value([0.5, 0.2], [0.5, 0.2]) == 1.0
    better = [1.0] * 30
    worse = [0.0] * 30
    assert paired_p_value(better, worse) < 0.001  # 30 wins out of 30: 2/2^30 under the null
    # one win and one equal-size loss: the mean difference is 0
    assert paired_p_value([1.0, 0.0], [0.0, 1.0]) == 1.0
    # one +1 among 3 queries: every sign flip gives |mean| = 1/3, so the data carry no evidence
    assert paired_p_value([1.0, 0.0, 0.0], [0.0, 0.0, 0.0]) == pytest.approx(1.0, abs=0.02)
    with pytest.raises(ValueError, match="equal lengths"):
        paired_p_value([1.0], [1.0, 0.0])
