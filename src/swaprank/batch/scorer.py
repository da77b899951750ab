"""The Ray Data callable class: one Reranker per actor, one batch of pairs in, scores out.

Pairs of a batch are grouped by query and sent through ``Reranker.rerank_many`` in one call, so a
local model scores all of them in its own length-sorted forward passes and every policy the
Reranker applies (windows for long documents, duplicate texts scored once, the [0, 1] mapping,
fallback chains) is the one ``Reranker(SPEC)`` applies: the scores are the Reranker's. Each
result's ``index`` maps it back to its row, so the output keeps the batch's row order.

It needs no Ray itself: called with an Arrow table, it returns one, which is how the tests check it.
"""

from __future__ import annotations

from typing import Any

from swaprank import Reranker

SCORE_COLUMNS = ("score", "raw_score")


class PairScorer:
    """Score a batch (an Arrow table with ``row``, ``query``, ``text``, ...) with the model ``spec``."""

    def __init__(self, spec: str, keep_text: bool = True) -> None:
        self.reranker = Reranker(spec)
        self.reranker.warmup()  # load the model when the actor starts, not inside the first batch
        self.keep_text = keep_text

    def __call__(self, batch: Any) -> Any:
        import pyarrow as pa

        queries = batch["query"].to_pylist()
        texts = batch["text"].to_pylist()
        groups: dict[str, list[int]] = {}
        for position, query in enumerate(queries):
            groups.setdefault(query, []).append(position)
        order = list(groups)
        results = self.reranker.rerank_many(order, [[texts[p] for p in groups[q]] for q in order])
        score = [0.0] * len(queries)
        raw = [0.0] * len(queries)
        for query, result in zip(order, results, strict=True):
            positions = groups[query]
            if len(result) != len(positions):  # a passthrough (every model failed) keeps rows but has no scores
                raise RuntimeError(f"the reranker returned {len(result)} scores for {len(positions)} pairs")
            for ranked in result:
                score[positions[ranked.index]] = ranked.score
                raw[positions[ranked.index]] = ranked.raw_score
        columns = {name: batch[name] for name in batch.column_names if self.keep_text or name != "text"}
        columns["score"] = pa.array(score, pa.float64())
        columns["raw_score"] = pa.array(raw, pa.float64())
        return pa.table(columns)
