"""Where do buried documents lose nDCG? Pool the per-window scores of a bench_long_docs run again.

Reads the SQLite score store that ``bench_long_docs.py --score-store`` filled (no model call for a
window already scored), rebuilds the same windows the Reranker cut (``swaprank.windows.expand``
with the backend's own ``windowing()``), and ranks the same BM25 candidates several ways:

  short          the original abstracts, best window (the reference)
  short-top2     the original abstracts, mean of the two best windows
  max            buried documents, best window (the default policy)
  top2 / mean    buried documents, mean of the two best windows / of all windows
  oracle         buried documents, best window among those holding the original's first or last
                 80 characters: what a perfect "where is the evidence" guess would give

    unshare -n bash -c 'ip link set lo up; NNCF_CI=1 .venv/bin/python benchmarks/analyze_long_docs_store.py \
        --score-store benchmarks/results/long_docs_scores.sqlite'
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_long_docs import ScoreStore, build_long  # noqa: E402
from tests.assets import real_model_path, scifact_path  # noqa: E402

from swaprank import Reranker  # noqa: E402
from swaprank.eval.first_stage import bm25  # noqa: E402
from swaprank.eval.loader import load_beir  # noqa: E402
from swaprank.eval.metrics import evaluate, per_query  # noqa: E402
from swaprank.windows import expand  # noqa: E402

Run = dict[str, dict[str, float]]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--score-store", required=True)
    parser.add_argument("--runtime", default="runtime=openvino&precision=bf16")
    parser.add_argument("--candidates", type=int, default=30)
    args = parser.parse_args()
    model = real_model_path()
    data = scifact_path()
    if model is None or data is None:
        print("needs the shared model and SciFact (../shared)", file=sys.stderr)
        return 2
    from tokenizers import Tokenizer

    dataset = load_beir(data, "test")
    ranking = bm25(dataset, args.candidates)
    tokenizer = Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    buried = build_long(dataset, ranking, tokenizer, 520, 1, 13)  # bench_long_docs' defaults
    reranker = Reranker(f"cross-encoder:{model}?{args.runtime}")
    windowing = reranker._backend(reranker.specs[0]).windowing()
    db = sqlite3.connect(args.score_store)

    def scores(query: str, texts: list[str]) -> list[list[float]]:
        expansion = expand(query, texts, windowing)
        out: list[list[float]] = [[] for _ in texts]
        for owner, text in zip(expansion.owners, expansion.texts, strict=True):
            row = db.execute("SELECT raw FROM scores WHERE key = ?", (ScoreStore.key(model, query, text),)).fetchone()
            if row is None:
                raise SystemExit("a window is missing from the store: run bench_long_docs.py with it first")
            out[owner].append(row[0])
        return out

    def top2(values: list[float]) -> float:
        best = sorted(values, reverse=True)[:2]
        return sum(best) / len(best)

    runs: dict[str, Run] = {name: {} for name in ("short", "short-top2", "max", "top2", "mean", "oracle")}
    for q in dataset.query_ids:
        query = dataset.queries[q]
        hits = [d for d, _ in ranking.get(q, [])]
        for run in runs.values():
            run[q] = {}
        originals = [dataset.doc_text(d) for d in hits]
        texts = [buried[(q, d)][0] for d in hits]
        expansion = expand(query, texts, windowing)
        windows: list[list[str]] = [[] for _ in hits]
        for owner, text in zip(expansion.owners, expansion.texts, strict=True):
            windows[owner].append(text)
        for d, short, long, cut, original in zip(hits, scores(query, originals), scores(query, texts), windows,
                                                 originals, strict=True):
            runs["short"][q][d], runs["short-top2"][q][d] = max(short), top2(short)
            runs["max"][q][d], runs["top2"][q][d], runs["mean"][q][d] = max(long), top2(long), sum(long) / len(long)
            holding = [s for s, w in zip(long, cut, strict=True) if original[:80] in w or original[-80:] in w]
            runs["oracle"][q][d] = max(holding) if holding else min(long)

    def rankings(run: Run) -> dict[str, list[str | None]]:
        return {q: list(sorted(r, key=lambda d: -r[d])) for q, r in run.items()}

    reference = evaluate(dataset.qrels, rankings(runs["short"]))["ndcg@10"]
    for name, run in runs.items():
        value = evaluate(dataset.qrels, rankings(run))["ndcg@10"]
        print(f"{name:11s} nDCG@10 {value:.4f}  {100 * value / reference:5.1f}% of short")
    short_pq = per_query(dataset.qrels, rankings(runs["short"]))
    long_pq = per_query(dataset.qrels, rankings(runs["max"]))
    losses = [short_pq[q]["ndcg@10"] - long_pq[q]["ndcg@10"] for q in short_pq]
    heavy = [x for x in losses if x > 0.3]
    print(f"{len(heavy)} queries lose more than 0.3 nDCG@10 (together {sum(heavy) / len(losses):.4f} of the mean), "
          f"{sum(1 for x in losses if x < -0.05)} gain more than 0.05; mean loss {sum(losses) / len(losses):.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
