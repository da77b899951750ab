"""The evaluation loop: first stages, then every model x first stage x depth (x fusion) through Reranker.

Rows are plain data (``Row``) so the report can be written at any point, including after Ctrl-C:
an interrupted run keeps every finished row and the finished queries of the current one.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from swaprank import Reranker
from swaprank.eval import metrics
from swaprank.eval.first_stage import Ranking
from swaprank.eval.loader import BeirDataset
from swaprank.types import Document, SwapRankError


@dataclass
class Row:
    """One configuration's results; ``model is None`` marks a first-stage baseline."""

    first_stage: str
    model: str | None = None
    candidates: int | None = None
    fuse: str | None = None
    queries: int = 0
    metrics: dict[str, float] = field(default_factory=dict)
    ceiling: float | None = None  # first-stage Recall@candidates: the best a reranker can reach
    latency: dict[str, float | None] | None = None
    docs_scored: int = 0
    truncated: int = 0
    windowed: int = 0
    wins: int | None = None  # queries whose nDCG@10 beats the first stage's
    losses: int | None = None
    p_value: float | None = None  # paired randomization test of nDCG@10 against the first stage
    partial: bool = False
    error: str | None = None
    note: str | None = None
    per_query_ndcg: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.model is None:
            return self.first_stage
        text = f"{self.first_stage} > {short_model(self.model)} top-{self.candidates}"
        return text + (" +rrf" if self.fuse else "")

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label, "first_stage": self.first_stage, "model": self.model,
            "candidates": self.candidates, "fuse": self.fuse, "queries": self.queries,
            "metrics": self.metrics, "ceiling_recall_at_candidates": self.ceiling,
            "latency": self.latency, "docs_scored": self.docs_scored, "truncated": self.truncated,
            "windowed": self.windowed,
            "wins_vs_first_stage": self.wins, "losses_vs_first_stage": self.losses,
            "p_value_vs_first_stage": self.p_value,
            "partial": self.partial, "error": self.error, "note": self.note,
            "per_query_ndcg@10": self.per_query_ndcg,
        }


def short_model(model: str) -> str:
    """``cross-encoder:../x/minilm?opt=1`` -> ``cross-encoder:minilm?opt=1`` for tables and charts."""
    parts = []
    for spec in model.split("|"):
        backend, _, rest = spec.strip().partition(":")
        name, sep, options = rest.partition("?")
        name = name.rstrip("/\\")
        if "/" in name and backend in ("cross-encoder", "ce"):
            name = name.replace("\\", "/").rsplit("/", 1)[-1]
        parts.append(f"{backend}:{name}{sep}{options}")
    return " | ".join(parts)


def _score_rows(row: Row, dataset: BeirDataset, ranked: dict[str, list[str]], baseline: Row | None) -> None:
    qrels = {q: dataset.qrels[q] for q in ranked}
    per_query = metrics.per_query(qrels, ranked)
    row.queries = len(ranked)
    row.metrics = {name: statistics.fmean(s[name] for s in per_query.values()) for name in metrics.METRICS} \
        if per_query else {}
    row.per_query_ndcg = {q: s["ndcg@10"] for q, s in per_query.items()}
    if baseline is not None and baseline.per_query_ndcg:
        row.wins = sum(v > baseline.per_query_ndcg[q] + 1e-12 for q, v in row.per_query_ndcg.items())
        row.losses = sum(v < baseline.per_query_ndcg[q] - 1e-12 for q, v in row.per_query_ndcg.items())
        queries = list(row.per_query_ndcg)
        row.p_value = metrics.paired_p_value([row.per_query_ndcg[q] for q in queries],
                                             [baseline.per_query_ndcg[q] for q in queries])


def baseline_row(name: str, dataset: BeirDataset, ranking: Ranking) -> Row:
    row = Row(first_stage=name)
    _score_rows(row, dataset, {q: [d for d, _ in ranking[q]] for q in dataset.query_ids}, None)
    return row


Progress = Callable[[int], None]


class Evaluation:
    """Holds the finished rows; ``run_model`` appends as it goes so Ctrl-C loses nothing finished."""

    def __init__(self, dataset: BeirDataset, rankings: dict[str, Ranking]) -> None:
        self.dataset = dataset
        self.rankings = rankings
        self.rows: list[Row] = [baseline_row(name, dataset, ranking) for name, ranking in rankings.items()]

    def baseline(self, first_stage: str) -> Row:
        return next(r for r in self.rows if r.model is None and r.first_stage == first_stage)

    def planned_rows(self, models: Sequence[str], depths: Sequence[int], fuse: bool) -> int:
        return len(models) * len(self.rankings) * len(set(depths)) * (2 if fuse else 1)

    def run_model(self, model: str, first_stages: Sequence[str], depths: Sequence[int], fuse: bool,
                  progress: Progress | None = None, rrf_k: int = 60) -> None:
        """Every first stage x depth (x fusion) of one model, sharing the Reranker's score cache.

        A depth sweep reranks prefixes of one candidate list and a fused row reranks the same list
        again, so each (query, document) pair is scored once and replayed from ``Reranker.cache``;
        every row still goes through ``Reranker`` (validation, dedup, ordering, fusion), the code the
        adapters use. Only the first row sends every pair to the model, so only it reports latency.
        """
        ordered = sorted(set(depths), reverse=True)
        size = len(self.dataset.query_ids) * ordered[0] * max(1, len(first_stages)) + 1
        plain = Reranker(model, cache_size=size)
        fused = Reranker(model, fuse="rrf", rrf_k=rrf_k)
        fused.cache = plain.cache  # one cache, two orderings
        rerankers = [plain, fused] if fuse else [plain]
        warmed = False
        first = True
        for stage in first_stages:
            for depth in ordered:
                for reranker in rerankers:
                    row = Row(first_stage=stage, model=model, candidates=depth, fuse=reranker.fuse)
                    if not first:
                        row.note = "pairs seen in an earlier row came from the score cache (latency not measured)"
                    self.rows.append(row)
                    try:
                        if not warmed:
                            plain.warmup()
                            if any(s.backend == "cross-encoder" for s in plain.specs):
                                Reranker(model).rerank("warm-up query", ["warm-up document"])  # slow first pass
                            warmed = True
                        self._run_row(row, reranker, first, progress)
                    except SwapRankError as exc:
                        row.error = f"{type(exc).__name__}: {exc}"
                        if progress is not None:
                            progress(len(self.dataset.query_ids) - row.queries)
                        return
                    first = False

    def _run_row(self, row: Row, reranker: Reranker, measured: bool, progress: Progress | None) -> None:
        dataset, ranking, depth = self.dataset, self.rankings[row.first_stage], row.candidates or 0
        baseline = self.baseline(row.first_stage)
        ranked: dict[str, list[str]] = {}
        seconds: list[float] = []
        cache = reranker.cache
        misses0 = cache.misses if cache is not None else 0
        truncated = windowed = 0
        row.partial = True
        try:
            for q in dataset.query_ids:
                pool = ranking[q]
                docs = [Document(dataset.doc_text(d), id=d) for d, _ in pool[:depth]]
                start = time.perf_counter()
                result = reranker.rerank(dataset.queries[q], docs)
                elapsed = time.perf_counter() - start
                truncated += result.truncated
                windowed += result.windowed
                seconds.append(elapsed)
                # The reranker reorders its pool; the first stage's tail stays behind it (Recall@100 is unchanged).
                ranked[q] = [r.id for r in result if r.id is not None] + [d for d, _ in pool[depth:]]
                if progress is not None:
                    progress(1)
            row.partial = False
        finally:
            row.docs_scored = (cache.misses - misses0) if cache is not None else sum(
                min(depth, len(ranking[q])) for q in ranked)
            row.truncated = truncated
            row.windowed = windowed
            if ranked:
                _score_rows(row, dataset, ranked, baseline)
                pools = {q: [d for d, _ in ranking[q]] for q in ranked}
                row.ceiling = metrics.recall_at({q: dataset.qrels[q] for q in ranked}, pools, depth)
                if measured:
                    row.latency = metrics.latency_summary(seconds, row.docs_scored)
