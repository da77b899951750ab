"""Long documents: does ``long_docs=window`` recover evidence buried past the model's window?

Builds the long-document variant of SciFact test: for every query, every BM25 top-`--candidates`
candidate (relevant or not) is rebuilt as ``other abstracts + original text + other abstracts``.
The filler is whole SciFact abstracts that are not relevant to the query (and not the candidate
itself), drawn with a fixed seed per (query, document); the leading filler is at least
`--lead-tokens` tokens (default 520, model tokenizer), so the original always starts past the
512-token window; the trailing filler is at least `--tail-tokens` (default 1: one whole abstract).
Parts are joined with a single space: no paragraph marks a window could snap to.

Then, on the same queries and candidates, nDCG@10 of:
  short-<variant>   the original documents (the reference: what the model reaches when nothing is buried)
  long-<variant>    the rebuilt documents
for each `--variant` (a query string of options appended to `--model`, e.g. "long_docs=truncate").
The headline is long-window / short-window: the share of the short-document quality recovered.
Also timed: window vs truncate on the original documents (what windowing costs when documents
are ordinary SciFact abstracts, a few of which exceed 512 tokens).

    .venv/bin/python benchmarks/bench_long_docs.py --queries 20
    .venv/bin/python benchmarks/bench_long_docs.py            # all 300 test queries

Writes benchmarks/results/bench_long_docs.json (gitignored) and prints a table.

``--score-store FILE`` keeps every (query, window) score the model computed in a SQLite file: a
run that is killed resumes where it stopped, and a rerun with other pooling (or a geometry that
shares windows) scores only what is new. Timings are then meaningless (cached pairs cost nothing);
nDCG is identical (the scores are the model's own, stored as computed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.assets import missing_asset_hint, real_model_path, scifact_path  # noqa: E402

from swaprank import Reranker  # noqa: E402
from swaprank.eval.first_stage import Ranking, bm25  # noqa: E402
from swaprank.eval.loader import BeirDataset, load_beir  # noqa: E402
from swaprank.eval.metrics import evaluate, paired_p_value, per_query  # noqa: E402


def build_long(dataset: BeirDataset, ranking: Ranking, tokenizer: Any, lead_tokens: int, tail_tokens: int,
               seed: int) -> dict[tuple[str, str], tuple[str, int]]:
    """(query id, doc id) -> the rebuilt document, and where its original starts (in tokens)."""
    doc_ids = list(dataset.corpus)
    lengths: dict[str, int] = {}

    def length(doc_id: str) -> int:
        if doc_id not in lengths:
            lengths[doc_id] = len(tokenizer.encode(dataset.doc_text(doc_id), add_special_tokens=False).ids)
        return lengths[doc_id]

    def filler(rng: random.Random, banned: set[str], tokens: int) -> list[str]:
        parts: list[str] = []
        total = 0
        while total < tokens:
            pick = rng.choice(doc_ids)
            if pick in banned:
                continue
            banned.add(pick)
            parts.append(dataset.doc_text(pick))
            total += length(pick) + 1
        return parts

    rebuilt = {}
    for q, hits in ranking.items():
        relevant = set(dataset.qrels.get(q, {}))
        for doc_id, _ in hits:
            rng = random.Random(f"{seed}:{q}:{doc_id}")
            banned = relevant | {doc_id}
            lead = filler(rng, banned, lead_tokens)
            tail = filler(rng, banned, tail_tokens)
            text = " ".join([*lead, dataset.doc_text(doc_id), *tail])
            start = len(tokenizer.encode(" ".join(lead), add_special_tokens=False).ids)
            rebuilt[(q, doc_id)] = (text, start)
    return rebuilt


class ScoreStore:
    """(model, query, text) -> (raw, normalized) on disk, wrapped around a backend's ``score_many``."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, raw REAL, normalized REAL)")
        self._lock = threading.Lock()

    @staticmethod
    def key(model: str, query: str, text: str) -> str:
        return hashlib.sha256("\x00".join((model, query, text)).encode()).hexdigest()

    def wrap(self, backend: Any, model: str) -> None:
        from swaprank.backends.contract import Scores

        score_many = backend.score_many

        def cached(requests: list[tuple[str, list[str]]]) -> list[Any]:
            with self._lock:
                known = {}
                for query, texts in requests:
                    for text in texts:
                        k = self.key(model, query, text)
                        row = self._db.execute("SELECT raw, normalized FROM scores WHERE key = ?", (k,)).fetchone()
                        if row is not None:
                            known[k] = row
            todo = [(q, [t for t in ts if self.key(model, q, t) not in known]) for q, ts in requests]
            todo = [(q, ts) for q, ts in todo if ts]
            fresh = score_many(todo) if todo else []
            with self._lock:
                for (query, texts), scores in zip(todo, fresh, strict=True):
                    for text, raw, norm in zip(texts, scores.raw, scores.normalized, strict=True):
                        known[self.key(model, query, text)] = (raw, norm)
                        self._db.execute("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)",
                                         (self.key(model, query, text), raw, norm))
                self._db.commit()
            out = []
            for query, texts in requests:
                pairs = [known[self.key(model, query, t)] for t in texts]
                out.append(Scores(raw=[p[0] for p in pairs], normalized=[p[1] for p in pairs]))
            return out

        backend.score_many = cached


def run(spec: str, dataset: BeirDataset, ranking: Ranking, texts: Callable[[str, str], str],
        store: ScoreStore | None = None) -> dict[str, Any]:
    reranker = Reranker(spec)
    reranker.warmup()
    if store is not None:
        for backend_spec in reranker.specs:  # windows are cut by the Reranker; the store sees what is scored
            store.wrap(reranker._backend(backend_spec), backend_spec.model)
    rankings: dict[str, list[str | None]] = {}
    seconds: list[float] = []
    windowed = truncated = windows = 0
    for q in dataset.query_ids:
        hits = ranking.get(q, [])
        docs = [(texts(q, d), d) for d, _ in hits]
        start = time.perf_counter()
        result = reranker.rerank(dataset.queries[q], docs)
        seconds.append(time.perf_counter() - start)
        rankings[q] = [r.id for r in result]
        windowed += result.windowed
        truncated += result.truncated
        windows += sum(r.windows for r in result)
    return {"spec": spec, "rankings": rankings, "seconds": sum(seconds),
            "median_ms_per_query": 1000 * statistics.median(seconds) if seconds else 0.0,
            "windowed_docs": windowed, "truncated_docs": truncated, "pairs_scored": windows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="cross-encoder directory (default: the shared stand-in)")
    parser.add_argument("--runtime", default="runtime=openvino&precision=bf16",
                        help="options for every variant (default: OpenVINO bf16, lossless on SciFact: "
                             "benchmarks/RESULTS.md 2b; '' for exact fp32 torch)")
    parser.add_argument("--data", default=None)
    parser.add_argument("--queries", type=int, default=None, help="first N test queries (default: all 300)")
    parser.add_argument("--candidates", type=int, default=30)
    parser.add_argument("--lead-tokens", type=int, default=520)
    parser.add_argument("--tail-tokens", type=int, default=1)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--variant", action="append", default=None,
                        help="options per variant (repeatable); default: long_docs=window and long_docs=truncate")
    parser.add_argument("--kinds", default="short,long", help="which documents to rerank (short,long)")
    parser.add_argument("--score-store", default=None,
                        help="SQLite file of computed scores: resume a killed run, rescore nothing twice")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_long_docs.json"))
    args = parser.parse_args()

    model = args.model or real_model_path()
    data = Path(args.data) if args.data else scifact_path()
    if model is None or data is None:
        print(missing_asset_hint("model" if model is None else "data"), file=sys.stderr)
        return 2
    variants = args.variant or ["long_docs=window", "long_docs=truncate"]
    store = ScoreStore(args.score_store) if args.score_store else None
    dataset = load_beir(data, "test").head(args.queries)
    ranking = bm25(dataset, args.candidates)

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    long_docs = build_long(dataset, ranking, tokenizer, args.lead_tokens, args.tail_tokens, args.seed)
    starts = [start for _, start in long_docs.values()]
    lengths = [len(tokenizer.encode(text, add_special_tokens=False).ids) for text, _ in long_docs.values()]
    print(f"{len(dataset.query_ids)} queries, {len(long_docs)} rebuilt candidates: original starts at token "
          f"{min(starts)}..{max(starts)} (median {statistics.median(starts):.0f}); documents "
          f"{min(lengths)}..{max(lengths)} tokens (median {statistics.median(lengths):.0f})")

    def spec_for(variant: str) -> str:
        options = "&".join(o for o in (args.runtime, variant) if o)
        return f"cross-encoder:{model}" + (f"?{options}" if options else "")

    rows = {}
    for variant in variants:
        for kind, texts in (("short", lambda q, d: dataset.doc_text(d)), ("long", lambda q, d: long_docs[(q, d)][0])):
            if kind not in args.kinds.split(","):
                continue
            name = f"{kind}-{variant}"
            row = run(spec_for(variant), dataset, ranking, texts, store)
            row["metrics"] = evaluate(dataset.qrels, row["rankings"])
            row["per_query_ndcg@10"] = {q: m["ndcg@10"] for q, m in per_query(dataset.qrels, row["rankings"]).items()}
            rows[name] = row
            print(f"{name:40s} nDCG@10 {row['metrics']['ndcg@10']:.4f}  {row['seconds']:7.1f} s  "
                  f"windowed {row['windowed_docs']:5d}  cut {row['truncated_docs']:5d}  pairs {row['pairs_scored']}",
                  flush=True)

    summary: dict[str, Any] = {}
    if f"short-{variants[0]}" not in rows:  # --kinds long: the rows alone, no ratios
        variants = []
    else:
        reference = rows[f"short-{variants[0]}"]
    for variant in variants:
        long_row = rows[f"long-{variant}"]
        short_row = rows[f"short-{variant}"]
        recovered = long_row["metrics"]["ndcg@10"] / reference["metrics"]["ndcg@10"]
        pq_long = per_query(dataset.qrels, long_row["rankings"])
        pq_ref = per_query(dataset.qrels, reference["rankings"])
        qs = sorted(pq_ref)
        summary[variant] = {
            "short_ndcg@10": short_row["metrics"]["ndcg@10"], "long_ndcg@10": long_row["metrics"]["ndcg@10"],
            "recovered_vs_short_reference": recovered,
            "p_value_vs_short_reference": paired_p_value([pq_long[q]["ndcg@10"] for q in qs],
                                                         [pq_ref[q]["ndcg@10"] for q in qs]),
            "short_seconds": short_row["seconds"], "long_seconds": long_row["seconds"],
        }
        print(f"{variant:30s} recovers {100 * recovered:5.1f}% of short {variants[0]} "
              f"({long_row['metrics']['ndcg@10']:.4f} / {reference['metrics']['ndcg@10']:.4f})")
    if f"short-{'long_docs=window'}" in rows and "short-long_docs=truncate" in rows:
        cost = rows["short-long_docs=window"]["seconds"] / rows["short-long_docs=truncate"]["seconds"]
        summary["window_cost_on_original"] = cost
        print(f"windowing on the original SciFact: {cost:.3f}x the time of truncate")
    target = summary.get("long_docs=window", {}).get("recovered_vs_short_reference")
    if target is not None:
        print(f"TARGET long_docs=window recovers >= 90%: {'MET' if target >= 0.9 else 'MISSED'} ({100 * target:.1f}%)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "args": vars(args), "model": model, "queries": len(dataset.query_ids), "summary": summary,
        "rows": {k: {kk: vv for kk, vv in v.items() if kk != "rankings"} for k, v in rows.items()},
    }, indent=2))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
