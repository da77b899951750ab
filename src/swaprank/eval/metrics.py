"""IR metrics through pytrec_eval (trec_eval), the evaluator BEIR itself uses.

Why not ranx: its first ``evaluate`` in a fresh process JIT-compiles numba kernels for 30-40 s on
this 2-core machine (5 s with a warm ``NUMBA_CACHE_DIR``), which alone would eat most of the CI
smoke test; pytrec_eval is a compiled extension that answers in milliseconds, and sharing BEIR's
evaluator makes our BM25 number directly comparable to the paper's.

Rankings are passed as best-first lists and turned into strictly decreasing scores, because
trec_eval re-sorts by score and breaks ties by document id, which would silently reorder ties.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

METRICS = ("ndcg@10", "mrr@10", "recall@10", "recall@100")


def _as_run(ranked: Sequence[str], depth: int | None = None) -> dict[str, float]:
    ids = list(ranked)[:depth] if depth is not None else list(ranked)
    if len(set(ids)) != len(ids):
        raise ValueError("a ranking lists the same document twice")
    n = len(ids)
    return {doc_id: float(n - rank) for rank, doc_id in enumerate(ids)}


def per_query(
    qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]]
) -> dict[str, dict[str, float]]:
    """Each metric of ``METRICS`` for every query of ``qrels`` (a query absent from ``rankings`` scores 0).

    MRR@10 is trec_eval's ``recip_rank`` over the top 10 only, as BEIR computes it.
    """
    import pytrec_eval

    qrels_dict = {q: {d: int(r) for d, r in docs.items()} for q, docs in qrels.items()}
    run = {q: _as_run(rankings[q]) for q in qrels_dict if rankings.get(q)}
    top10 = {q: _as_run(rankings[q], 10) for q in run}
    main = pytrec_eval.RelevanceEvaluator(qrels_dict, {"ndcg_cut.10", "recall.10,100"}).evaluate(run) if run else {}
    mrr = pytrec_eval.RelevanceEvaluator(qrels_dict, {"recip_rank"}).evaluate(top10) if run else {}
    out: dict[str, dict[str, float]] = {}
    for q in qrels_dict:
        m = main.get(q, {})
        out[q] = {
            "ndcg@10": float(m.get("ndcg_cut_10", 0.0)),
            "mrr@10": float(mrr.get(q, {}).get("recip_rank", 0.0)),
            "recall@10": float(m.get("recall_10", 0.0)),
            "recall@100": float(m.get("recall_100", 0.0)),
        }
    return out


def evaluate(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]]) -> dict[str, float]:
    """Means over the queries of ``qrels`` (pass the qrels of exactly the queries you ran)."""
    scores = per_query(qrels, rankings)
    if not scores:
        return {name: 0.0 for name in METRICS}
    return {name: statistics.fmean(s[name] for s in scores.values()) for name in METRICS}


def recall_at(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]], k: int) -> float:
    """Mean Recall@k for any k (the reranker's ceiling at its candidate depth)."""
    values = []
    for q, judged in qrels.items():
        relevant = {d for d, r in judged.items() if r > 0}
        if not relevant:
            values.append(0.0)
            continue
        top = set(list(rankings.get(q, []))[:k])
        values.append(len(relevant & top) / len(relevant))
    return statistics.fmean(values) if values else 0.0


def latency_summary(seconds: Sequence[float], docs: int) -> dict[str, float | None]:
    """Median and p95 per-query latency (ms) and documents scored per second."""
    if not seconds:
        return {"median_ms": None, "p95_ms": None, "docs_per_s": None}
    ordered = sorted(seconds)
    p95_index = max(0, math.ceil(0.95 * len(ordered)) - 1)  # nearest-rank percentile
    total = sum(ordered)
    return {
        "median_ms": 1000.0 * statistics.median(ordered),
        "p95_ms": 1000.0 * ordered[p95_index],
        "docs_per_s": docs / total if total > 0 else None,
    }


def paired_p_value(a: Sequence[float], b: Sequence[float], trials: int = 10_000, seed: int = 0) -> float:
    """Two-sided paired randomization (sign-flip) test of mean(a) vs mean(b) over the same queries.

    A +0.01 nDCG@10 on 300 queries is often noise; the p-value says how often randomly swapping
    each query's two scores gives a mean difference at least as large as the observed one.
    """
    import numpy as np

    if len(a) != len(b):
        raise ValueError(f"paired test needs equal lengths, got {len(a)} and {len(b)}")
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    observed = abs(diff.mean()) if len(diff) else 0.0
    if observed == 0.0:
        return 1.0
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(trials, len(diff)))
    extreme = np.count_nonzero(np.abs((signs * diff).mean(axis=1)) >= observed - 1e-12)
    return float((extreme + 1) / (trials + 1))
