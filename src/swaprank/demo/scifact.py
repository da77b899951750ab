"""``swaprank demo`` part 2: what the reranker does on BEIR SciFact, counted by a fixed rule.

The negation example is one hand-written query; this part lets the data speak. The rule, printed
with the result: the first ``claims`` test claims in ``qrels/test.tsv`` order, BM25 (the same bm25s
first stage as ``swaprank eval``) retrieves the top ``candidates`` abstracts of the whole corpus,
the reranker reorders exactly those. Per claim we compare the rank of the first relevant abstract
before and after (up / down / unchanged / not retrieved, which sums to the number of claims), and
nDCG@10 over all claims with ``swaprank eval``'s evaluator, so the numbers agree with a real
``swaprank eval`` run on the same slice. The two examples shown are chosen by the same rule (the
largest rise and the largest fall), not by hand: a demo that only shows wins proves nothing.

Scoring is the slow part on a CPU (a MiniLM-L6 reads about 2,000 tokens a second per core), so by
default the reranker reads the title and the first ``doc_words`` words of each abstract; the
output says so, and ``--doc-words 0`` scores whole abstracts.
"""

from __future__ import annotations

import os
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ENV_DATA = "SWAPRANK_DATA"
SCIFACT_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip"
MOVES = ("up", "down", "unchanged", "not retrieved")


@dataclass(frozen=True)
class Claim:
    """One claim's outcome: ranks are 1-based positions of its first relevant abstract (None: not in the pool)."""

    query_id: str
    text: str
    relevant: frozenset[str]
    before: list[str]  # BM25's top-k, best first
    after: list[str]  # the same ids, reranked
    rank_before: int | None
    rank_after: int | None
    ndcg_before: float
    ndcg_after: float

    @property
    def move(self) -> str:
        if self.rank_before is None or self.rank_after is None:
            return "not retrieved"
        if self.rank_after < self.rank_before:
            return "up"
        return "down" if self.rank_after > self.rank_before else "unchanged"

    @property
    def places(self) -> int:
        """Places the first relevant abstract gained (negative: lost)."""
        if self.rank_before is None or self.rank_after is None:
            return 0
        return self.rank_before - self.rank_after


@dataclass(frozen=True)
class Outcome:
    claims: list[Claim]
    corpus_size: int
    pairs: int
    seconds: float  # wall clock
    cpu_seconds: float  # summed over threads: what the scoring costs whatever else the machine runs

    @property
    def counts(self) -> dict[str, int]:
        found = Counter(c.move for c in self.claims)
        return {move: found.get(move, 0) for move in MOVES}

    def mean(self, field: str) -> float:
        return sum(getattr(c, field) for c in self.claims) / len(self.claims)

    def largest(self, direction: int) -> Claim | None:
        """The claim that gained (direction=1) or lost (-1) the most places; ties: the earliest claim."""
        moved = [c for c in self.claims if c.places * direction > 0]
        return max(moved, key=lambda c: c.places * direction, default=None)


def data_folder(explicit: str | None) -> Path | None:
    """``--data``, else ``$SWAPRANK_DATA``; None when neither is set (the part is then skipped)."""
    value = explicit if explicit is not None else os.environ.get(ENV_DATA)
    return Path(value).expanduser() if value else None


def _first_relevant(ranking: list[str], relevant: frozenset[str]) -> int | None:
    return next((rank for rank, doc_id in enumerate(ranking, start=1) if doc_id in relevant), None)


def _cut(text: str, words: int) -> str:
    parts = text.split()
    return text if words <= 0 or len(parts) <= words else " ".join(parts[:words])


def measure(folder: Path, model: str, *, claims: int, candidates: int, doc_words: int) -> Outcome:
    """Run the rule on ``folder`` (a BEIR SciFact folder) with ``model``; raises DatasetError on bad files."""
    from swaprank import Document, Reranker
    from swaprank.eval import load_beir
    from swaprank.eval.first_stage import bm25
    from swaprank.eval.metrics import per_query

    dataset = load_beir(folder, "test").head(claims)
    pools = {q: [doc_id for doc_id, _ in ranked] for q, ranked in bm25(dataset, candidates).items()}
    query_ids = list(dataset.query_ids)
    docs = [[Document(_cut(dataset.doc_text(d), doc_words), id=d) for d in pools[q]] for q in query_ids]
    reranker = Reranker(model)
    start, cpu_start = time.perf_counter(), time.process_time()
    results = reranker.rerank_many([dataset.queries[q] for q in query_ids], docs)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    reranked = {q: [pools[q][hit.index] for hit in result] for q, result in zip(query_ids, results, strict=True)}
    ndcg_before = per_query(dataset.qrels, pools)
    ndcg_after = per_query(dataset.qrels, reranked)
    out = []
    for q in query_ids:
        relevant = frozenset(d for d, grade in dataset.qrels[q].items() if grade > 0)
        out.append(Claim(
            query_id=q, text=dataset.queries[q], relevant=relevant, before=pools[q], after=reranked[q],
            rank_before=_first_relevant(pools[q], relevant), rank_after=_first_relevant(reranked[q], relevant),
            ndcg_before=ndcg_before[q]["ndcg@10"], ndcg_after=ndcg_after[q]["ndcg@10"],
        ))
    return Outcome(out, corpus_size=len(dataset.corpus), pairs=sum(len(d) for d in docs), seconds=seconds,
                   cpu_seconds=cpu_seconds)


def _titles(folder: Path, ids: set[str]) -> dict[str, str]:
    from swaprank.eval.loader import load_corpus

    corpus = load_corpus(folder / "corpus.jsonl")
    return {d: corpus[d][0] for d in ids}


def _rank(value: int | None) -> str:
    return f"#{value}" if value is not None else "-"


def report(outcome: Outcome, folder: Path, *, candidates: int, doc_words: int) -> None:
    n = len(outcome.claims)
    k = candidates
    rule = (f"rule: the first {n} claims of qrels/test.tsv (in file order); BM25 (bm25s, title + text) retrieves "
            f"the top {k} of all {outcome.corpus_size:,} abstracts for each; the reranker reorders those {k}, reading "
            + (f"the title and first {doc_words} words of each abstract (--doc-words 0: whole abstracts, slower)."
               if doc_words > 0 else "whole abstracts."))
    print("\n" + textwrap.fill(rule, width=100, subsequent_indent="      "))
    print(f"scored {outcome.pairs} (claim, abstract) pairs in {outcome.seconds:.1f} s "
          f"({outcome.cpu_seconds:.1f} s of CPU time)")
    print(f"\nwhere the first relevant abstract moved, per claim (ranks within BM25's top {k}):")
    labels = {"up": "moved up", "down": "moved down", "unchanged": "unchanged",
              "not retrieved": f"not in BM25's top {k} (no reranker can help)"}
    counts = outcome.counts
    for move in MOVES:
        print(f"  {labels[move]:<46}{counts[move]:>4}")
    print(f"  {'total':<46}{sum(counts.values()):>4}")
    before, after = outcome.mean("ndcg_before"), outcome.mean("ndcg_after")
    print(f"\nnDCG@10 over the {n} claims: BM25 {before:.4f} -> reranked {after:.4f} ({after - before:+.4f})")
    rise, fall = outcome.largest(1), outcome.largest(-1)
    titles = _titles(folder, {d for c in (rise, fall) if c for d in c.after})
    for label, claim in (("largest rise", rise), ("largest fall", fall)):
        rule = "gains" if claim is rise else "loses"
        print(f"\n{label} (rule: the claim whose first relevant abstract {rule} the most places; ties: the earliest)")
        if claim is None:
            print("  none: no claim's relevant abstract " + ("moved up" if claim is rise else "moved down"))
            continue
        print(f"  claim {claim.query_id}: {claim.text}")
        print(f"  first relevant abstract: {_rank(claim.rank_before)} after BM25 -> {_rank(claim.rank_after)} "
              f"after reranking (nDCG@10 {claim.ndcg_before:.3f} -> {claim.ndcg_after:.3f})")
        print("  reranked top 3 (✓ = judged relevant):")
        for rank, doc_id in enumerate(claim.after[:3], start=1):
            mark = "✓" if doc_id in claim.relevant else " "
            title = titles.get(doc_id, "")
            print(f"    {rank}. {mark} {title[:90]}{'...' if len(title) > 90 else ''} "
                  f"(BM25 #{claim.before.index(doc_id) + 1})")


def explain_missing() -> None:
    print(f"\n(SciFact part skipped: set {ENV_DATA} or pass --data to a BEIR SciFact folder to see what the "
          f"reranker does on 50 scientific claims. Get it with: curl -LO {SCIFACT_URL} && unzip scifact.zip, "
          f"then {ENV_DATA}=$PWD/scifact.)")
