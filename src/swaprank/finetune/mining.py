"""Hard negatives from the user's own first stage, with sentence-transformers' false-negative margin rule.

A first stage's top candidates that are not judged relevant are the mistakes the reranker must learn
to fix, but on sparsely judged corpora some of them are relevant and simply unjudged. The margin rule
is the one ``sentence_transformers.util.mine_hard_negatives`` documents, applied to first-stage scores
(BM25, cosine or RRF) instead of a bi-encoder's, because the negatives must come from the pipeline's
own retriever:

* ``absolute_margin`` m: a candidate is dropped when ``score > positive_score - m`` (m = 0: a negative
  must score no higher than the positive);
* ``relative_margin`` r: a candidate is dropped when ``score > positive_score * (1 - r)`` (r = 0.05:
  it must score at least 5 % below the positive).

``positive_score`` is the best first-stage score among the query's judged positives found in the
ranking. When the first stage retrieved none of them, their score is unknown and the rule is skipped
for that query (counted in ``MiningStats.no_positive_retrieved``). Judged positives are never negatives,
whatever their rank. ``range_min`` skips the first ranks outright (ST's other guard).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from swaprank.eval.first_stage import Ranking
from swaprank.finetune.errors import FinetuneError


@dataclass(frozen=True)
class MarginRule:
    """Which first-stage candidates are too close to a positive to be trusted as negatives."""

    absolute_margin: float | None = None
    relative_margin: float | None = None
    range_min: int = 0  # skip this many top ranks entirely
    depth: int = 100  # consider candidates up to this rank (ST's range_max)

    def __post_init__(self) -> None:
        if self.relative_margin is not None and not 0.0 <= self.relative_margin < 1.0:
            raise FinetuneError(f"relative_margin must be in [0, 1), got {self.relative_margin}")
        if self.range_min < 0 or self.depth <= self.range_min:
            raise FinetuneError(f"need 0 <= range_min < depth, got range_min={self.range_min}, depth={self.depth}")

    def too_close(self, score: float, positive_score: float | None) -> bool:
        if positive_score is None:
            return False
        if self.absolute_margin is not None and score > positive_score - self.absolute_margin:
            return True
        return self.relative_margin is not None and score > positive_score * (1.0 - self.relative_margin)


@dataclass
class MiningStats:
    queries: int = 0
    candidates_seen: int = 0
    positives_excluded: int = 0
    dropped_by_margin: int = 0
    no_positive_retrieved: int = 0
    queries_without_negatives: int = 0
    negatives_kept: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass
class Mined:
    """Per query: every eligible hard negative best-first, and what the rule removed (for the report)."""

    negatives: dict[str, list[str]] = field(default_factory=dict)
    dropped: dict[str, list[str]] = field(default_factory=dict)
    stats: MiningStats = field(default_factory=MiningStats)

    def as_dict(self) -> dict[str, Any]:
        return {"negatives": self.negatives, "dropped": self.dropped, "stats": self.stats.as_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Mined:
        return cls(negatives={q: list(v) for q, v in data["negatives"].items()},
                   dropped={q: list(v) for q, v in data["dropped"].items()}, stats=MiningStats(**data["stats"]))


def mine(qrels: Mapping[str, Mapping[str, int]], ranking: Ranking, rule: MarginRule) -> Mined:
    """Eligible hard negatives for every query of ``qrels`` from its first-stage ``ranking``."""
    out = Mined()
    for q, judged in qrels.items():
        positives = {d for d, r in judged.items() if r > 0}
        candidates = ranking.get(q, [])[: rule.depth]
        scores = [s for d, s in candidates if d in positives]
        positive_score = max(scores) if scores else None
        out.stats.queries += 1
        if positive_score is None:
            out.stats.no_positive_retrieved += 1
        kept: list[str] = []
        dropped: list[str] = []
        for rank, (doc_id, score) in enumerate(candidates):
            out.stats.candidates_seen += 1
            if doc_id in positives or doc_id in judged:  # judged (even 0) docs keep their label, not ours
                out.stats.positives_excluded += doc_id in positives
                continue
            if rank < rule.range_min:
                continue
            if rule.too_close(score, positive_score):
                dropped.append(doc_id)
                continue
            kept.append(doc_id)
        out.negatives[q] = kept
        out.dropped[q] = dropped
        out.stats.dropped_by_margin += len(dropped)
        out.stats.negatives_kept += len(kept)
        out.stats.queries_without_negatives += not kept
    return out


def sample_negatives(eligible: Sequence[str], n: int, rng: random.Random, strategy: str = "mixed") -> list[str]:
    """``n`` negatives from one query's eligible list (best-first).

    ``top``: the ``n`` highest-ranked (ST's "top"); ``random``: uniform over the list (ST's "random");
    ``mixed``: half from the top ranks, half uniformly from the rest, so a model reranking a deep
    candidate pool also sees the easy-looking deep ranks it must keep down.
    """
    if n <= 0 or not eligible:
        return []
    if len(eligible) <= n:
        return list(eligible)
    if strategy == "top":
        return list(eligible[:n])
    if strategy == "random":
        return rng.sample(list(eligible), n)
    if strategy != "mixed":
        raise FinetuneError(f"unknown negative sampling {strategy!r}; choose from top, random, mixed")
    head = (n + 1) // 2
    return list(eligible[:head]) + rng.sample(list(eligible[head:]), n - head)
