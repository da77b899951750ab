"""Reciprocal rank fusion (Cormack, Clarke & Buettcher, SIGIR 2009).

RRF needs only ranks, never scores, which is why it can fuse a BM25 ranking (unbounded scores) with
a dense ranking (cosines) or with a reranker's ranking without any calibration.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

K = TypeVar("K", bound=Hashable)

RRF_K = 60


def rrf(rankings: Sequence[Sequence[K]], k: int = RRF_K) -> list[tuple[K, float]]:
    """Fuse rankings (each best-first) into ``[(item, score), ...]`` sorted best-first.

    ``score = sum(1 / (k + rank))`` over the rankings that contain the item, ranks starting at 1;
    an item missing from a ranking gets nothing from it. Ties are broken deterministically by the
    first ranking that contains the item and the item's rank there, so with
    ``rankings = [first_stage, model]`` ties fall back to first-stage order (the same rule as the
    Reranker's ``fuse="rrf"``).
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 0:
        raise ValueError(f"rrf k must be a non-negative int, got {k!r}")
    scores: dict[K, float] = {}
    first_seen: dict[K, tuple[int, int]] = {}
    for which, ranking in enumerate(rankings):
        seen: set[K] = set()
        for rank, item in enumerate(ranking, start=1):
            if item in seen:
                raise ValueError(f"ranking {which} lists {item!r} twice")
            seen.add(item)
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
            first_seen.setdefault(item, (which, rank))
    return sorted(scores.items(), key=lambda pair: (-pair[1], first_seen[pair[0]]))
