"""One call's work, validated and deduplicated, and how scores become ranked results.

``Plan.build`` checks the input and keeps, per query, its documents, where each one's text sits
among the unique texts sent to the backend, and its ``top_n``. ``Plan.finish`` turns the serving
backend's scores into ``RerankResult`` objects (order, fusion, threshold, top_n, counts, usage);
``Plan.fail`` is the passthrough answer when every backend of the chain failed.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING

from swaprank._engine.validation import DocumentInput, check_query, check_top_n, dedup, normalize_documents
from swaprank.backends.contract import Scores
from swaprank.redaction import redacted_spec
from swaprank.specs import BackendSpec
from swaprank.types import (
    BackendError,
    Document,
    InvalidInputError,
    RankedDocument,
    RequestTooLargeError,
    RerankResult,
    Usage,
)
from swaprank.windows import Expansion

if TYPE_CHECKING:
    from swaprank._engine.reranker import Reranker

logger = logging.getLogger("swaprank")

TopN = int | None | Sequence[int | None]  # one for every query, or one per query (rerank_many)


class Plan:
    """The validated, deduplicated work of one call, and how to turn scores into results."""

    def __init__(self, docs: list[list[Document]], positions: list[list[int]],
                 requests: list[tuple[str, list[str]]], slots: list[int | None], top_n: int | None,
                 top_ns: list[int | None]) -> None:
        self.docs = docs
        self.positions = positions
        self.requests = requests
        self.slots = slots  # per query: its index in ``requests``, or None when it had no documents
        self.top_n = top_n  # what traces show: the call's top_n (None when it varies by query)
        self.top_ns = top_ns  # per query
        self.errors: list[BaseException] = []  # the chain's failed backends, in order

    @property
    def failures(self) -> int:
        return len(self.errors)

    def _billed(self, served: Usage | None = None) -> Usage | None:
        """What this call cost: the serving backend's usage plus what failed attempts were billed."""
        return Usage.total([*(e.usage for e in self.errors if isinstance(e, BackendError)), served])

    @classmethod
    def build(cls, rr: Reranker, queries: Sequence[str], docs_per_query: Sequence[Iterable[DocumentInput]],
              top_n: TopN) -> Plan:
        if isinstance(queries, str):
            raise InvalidInputError("queries must be a list of strings, got a single str")
        queries = list(queries)
        docs_lists = list(docs_per_query)
        if len(queries) != len(docs_lists):
            raise InvalidInputError(
                f"got {len(queries)} queries but {len(docs_lists)} document lists; they must match"
            )
        if isinstance(top_n, Sequence) and not isinstance(top_n, str):
            if len(top_n) != len(queries):
                raise InvalidInputError(f"got {len(top_n)} top_n values for {len(queries)} queries; they must match")
            top_ns = [check_top_n(t) if t is not None else rr.top_n for t in top_n]
            top_n = top_ns[0] if len(set(top_ns)) == 1 else None
        else:
            top_n = check_top_n(top_n) if top_n is not None else rr.top_n
            top_ns = [top_n] * len(queries)
        single = len(queries) == 1
        docs: list[list[Document]] = []
        positions: list[list[int]] = []
        requests: list[tuple[str, list[str]]] = []
        slots: list[int | None] = []
        for q, (query, documents) in enumerate(zip(queries, docs_lists, strict=True)):
            check_query(query, "query" if single else f"queries[{q}]")
            normalized = normalize_documents(documents, "documents" if single else f"docs_per_query[{q}]")
            unique, pos = dedup([d.text for d in normalized], rr.dedup)
            docs.append(normalized)
            positions.append(pos)
            slots.append(len(requests) if normalized else None)
            if normalized:
                requests.append((query, unique))
        return cls(docs, positions, requests, slots, top_n, top_ns)

    def check_cost(self, expansions: Sequence[Expansion], limit: int | None) -> None:
        """Refuse, before any scoring, a query whose pairs and windows would make the model read more than
        ``limit`` tokens (``Reranker(max_model_tokens=...)``)."""
        if limit is None:
            return
        for slot, expansion in enumerate(expansions):
            if expansion.measured and expansion.tokens > limit:
                where = "the query" if len(self.docs) == 1 else f"queries[{self.slots.index(slot)}]"
                raise RequestTooLargeError(
                    f"{where} and its documents would have the model read {expansion.tokens} tokens (every pair "
                    f"and window counted), over this Reranker's max_model_tokens={limit}: send fewer or shorter "
                    "documents, or split the request", needed=expansion.tokens, limit=limit)

    def finish(self, rr: Reranker, spec: BackendSpec | None, scores: list[Scores] | None,
               expansions: Sequence[Expansion] = (), label: str = "") -> list[RerankResult]:
        model = redacted_spec(spec) if spec is not None else ""
        if spec is not None and self.errors:
            logger.warning("swaprank: served by fallback %s after %d failure(s)", model, len(self.errors))
        results = []
        for docs, positions, slot, top_n in zip(self.docs, self.positions, self.slots, self.top_ns, strict=True):
            if slot is None or scores is None or spec is None:
                results.append(RerankResult([], model=model, model_name=label))
                continue
            checked = scores[slot]
            expansion = expansions[slot] if expansions else None
            ranked = [
                RankedDocument(index=i, score=checked.normalized[u], raw_score=checked.raw[u],
                               text=d.text, id=d.id, metadata=dict(d.metadata),
                               windows=expansion.windows[u] if expansion else 1,
                               truncated=expansion.cut[u] if expansion else False)
                for i, (d, u) in enumerate(zip(docs, positions, strict=True))
            ]
            ranked = _threshold(_order(ranked, rr.fuse, rr.rrf_k), rr.score_threshold, rr.min_results)
            # Counted over every input document (duplicates included), before top_n and thresholds.
            windowed = sum(1 for u in positions if expansion and expansion.windows[u] > 1)
            measured = expansion is not None and expansion.measured
            cut = sum(1 for u in positions if expansion.cut[u]) if measured and expansion else checked.truncated
            # The call's cost (failed attempts included) is reported once, on the first query's result.
            usage = self._billed(checked.usage) if slot == 0 else checked.usage
            results.append(RerankResult(ranked[:top_n], model=model, model_name=label, usage=usage,
                                        truncated=cut, windowed=windowed,
                                        query_truncated=expansion.query_cut if expansion else False))
        return results

    def fail(self, rr: Reranker) -> list[RerankResult]:
        last = self.errors[-1]
        if rr.on_error == "raise":
            raise last
        logger.error("swaprank: every model failed (%s); returning documents in input order", last)
        results: list[RerankResult] = []
        for docs, top_n in zip(self.docs, self.top_ns, strict=True):
            kept = [
                RankedDocument(index=i, score=0.0, raw_score=math.nan, text=d.text, id=d.id,
                               metadata=dict(d.metadata))
                for i, d in enumerate(docs)
            ]
            billed = self._billed() if not results else None
            results.append(RerankResult(kept[:top_n], passthrough=True, error=last, usage=billed))
        return results


def _threshold(ranked: list[RankedDocument], threshold: float | None, minimum: int) -> list[RankedDocument]:
    """Drop documents under the threshold, but keep at least ``minimum`` of the best (the LLM is
    never left with an empty context because a query scored low everywhere)."""
    if threshold is None:
        return ranked
    kept = [r for r in ranked if r.score >= threshold]
    return kept if len(kept) >= minimum else ranked[:minimum]


def pool_windows(expansions: Sequence[Expansion], scores: list[Scores]) -> list[Scores]:
    """Per-window scores back to one score per document (max by default; see swaprank.windows)."""
    pooled = []
    for expansion, part in zip(expansions, scores, strict=True):
        raw, normalized = expansion.pool(part.raw, part.normalized)
        pooled.append(Scores(raw=raw, normalized=normalized, usage=part.usage, truncated=part.truncated))
    return pooled


def _order(ranked: list[RankedDocument], fuse: str | None, k: int) -> list[RankedDocument]:
    """Sort by score (raw score breaks float ties of saturated sigmoids; input order breaks the rest).

    With ``fuse="rrf"`` the model's rank and the first-stage rank (input order) are fused by
    reciprocal rank fusion, which recovers from a reranker that is weaker than the retriever on
    some queries (measured on SciFact in benchmarks/).
    """
    by_model = sorted(ranked, key=lambda r: (-r.score, -r.raw_score, r.index))
    if fuse != "rrf":
        return by_model
    model_rank = {r.index: rank for rank, r in enumerate(by_model, start=1)}
    fused = [
        _replace_fused(r, 1.0 / (k + r.index + 1) + 1.0 / (k + model_rank[r.index])) for r in ranked
    ]
    return sorted(fused, key=lambda r: (-(r.fused_score or 0.0), r.index))


def _replace_fused(doc: RankedDocument, value: float) -> RankedDocument:
    return replace(doc, fused_score=value)
