"""``swaprank bench``: reranking latency of one or more config strings on the same candidates.

The candidates are a BEIR dataset's BM25 top-N, so the documents have realistic lengths. Models
run interleaved query by query (rotating which goes first), so background load and drift spread
over all of them; compare the ratios, not only the absolute times. For the comparison with the
frameworks' own rerankers see ``benchmarks/bench_local.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from swaprank.config import parse_chain
from swaprank.types import SwapRankError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="a BEIR folder (candidates come from BM25)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", action="append", required=True, metavar="CONFIG", help="config string; repeatable")
    parser.add_argument("--untrusted-model", action="store_true",
                        help="parse every --model as an untrusted config string: options that run code, read local "
                             "files or send a key elsewhere are refused (docs/design.md, 'Security')")
    parser.add_argument("--queries", type=int, default=5, help="timed queries (default: 5)")
    parser.add_argument("--candidates", type=int, default=100, help="documents per query (default: 100)")
    parser.add_argument("--out", type=Path, default=None, help="also write the results as JSON here")


def run(args: argparse.Namespace) -> int:
    from swaprank import Document, Reranker
    from swaprank.eval.first_stage import bm25
    from swaprank.eval.loader import load_beir
    from swaprank.eval.metrics import latency_summary
    from swaprank.eval.runner import short_model

    try:
        if args.queries <= 0 or args.candidates <= 0:
            raise SwapRankError("--queries and --candidates must be positive")
        for model in args.model:
            parse_chain(model, trusted=not args.untrusted_model)
        dataset = load_beir(args.data, args.split).head(args.queries)
    except (SwapRankError, OSError) as exc:
        print(f"swaprank bench: error: {exc}", file=sys.stderr)
        return 2
    ranking = bm25(dataset, args.candidates)
    work = [(dataset.queries[q], [Document(dataset.doc_text(d), id=d) for d, _ in ranking[q]])
            for q in dataset.query_ids]
    rerankers = [Reranker(model) for model in args.model]
    seconds: list[list[float]] = [[] for _ in rerankers]
    try:
        for reranker in rerankers:  # load and run one small untimed call: the first forward pass is slow
            reranker.warmup()
            reranker.rerank(work[0][0], work[0][1][:4])
        for n, (query, docs) in enumerate(work):
            for i in [(n + j) % len(rerankers) for j in range(len(rerankers))]:
                start = time.perf_counter()
                rerankers[i].rerank(query, docs)
                seconds[i].append(time.perf_counter() - start)
    except KeyboardInterrupt:
        print("interrupted: reporting the finished queries", file=sys.stderr)
    except SwapRankError as exc:
        print(f"swaprank bench: error: {exc}", file=sys.stderr)
        return 1
    rows: list[dict[str, Any]] = []
    for model, times in zip(args.model, seconds, strict=True):
        scored = sum(len(pool) for _, pool in work[: len(times)])
        rows.append({"model": model, "queries": len(times), **latency_summary(times, scored)})
    base = rows[0]["median_ms"]
    print(f"{len(work)} queries x {args.candidates} BM25 candidates from {args.data}")
    print(f"{'model':<50} {'queries':>7} {'median ms':>10} {'p95 ms':>9} {'docs/s':>8} {'x first':>8}")
    for row in rows:
        ratio = row["median_ms"] / base if row["median_ms"] and base else None
        row["ratio_to_first"] = ratio
        shown = "-" if ratio is None else f"{ratio:.3f}"
        print(f"{short_model(row['model'])[:50]:<50} {row['queries']:>7} {row['median_ms'] or 0:>10.0f} "
              f"{row['p95_ms'] or 0:>9.0f} {row['docs_per_s'] or 0:>8.1f} {shown:>8}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"data": str(args.data), "candidates": args.candidates, "rows": rows}
        args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0
