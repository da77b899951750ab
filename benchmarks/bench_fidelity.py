"""Fidelity on all SciFact test queries: the same cross-encoder through CrossEncoder.predict,
swaprank's Reranker, its LlamaIndex postprocessor and its LangChain compressor.

The unit suite checks 8 queries (tests/test_fidelity.py); this script checks every query. Same
model, same BM25 candidates, so every path must give the same ranking and the same nDCG@10.

    .venv/bin/python benchmarks/bench_fidelity.py --candidates 30 --max-length 224

``--max-length 224`` is the setting of the model's own RESULTS.md, so the `predict` row also
reproduces its number. Writes benchmarks/results/bench_fidelity.json (gitignored); exit code 1 if
any path differs from predict.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from swaprank.eval.fidelity import PATHS, four_paths
from swaprank.eval.first_stage import bm25
from swaprank.eval.loader import load_beir
from swaprank.eval.metrics import evaluate

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # ../shared is resolved in one place for tests and benchmarks

from tests.assets import missing_asset_hint, real_model_path, scifact_path  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=real_model_path(), help="cross-encoder directory or hub id")
    parser.add_argument("--data", default=scifact_path(), help="BEIR folder")
    parser.add_argument("--split", default="test")
    parser.add_argument("--queries", type=int, default=None, help="first N queries (default: all)")
    parser.add_argument("--candidates", type=int, default=30, help="BM25 candidates per query")
    parser.add_argument("--max-length", type=int, default=None, help="token window (default: the model's)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_fidelity.json")
    args = parser.parse_args(argv)
    if args.model is None:
        parser.error(missing_asset_hint("model"))
    if args.data is None:
        parser.error(missing_asset_hint("data"))

    dataset = load_beir(args.data, args.split)
    if args.queries:
        dataset = dataset.head(args.queries)
    candidates = {q: [doc for doc, _ in hits] for q, hits in bm25(dataset, args.candidates).items()}

    start = time.perf_counter()
    rankings = four_paths(args.model, dataset, candidates, args.max_length)
    seconds = time.perf_counter() - start

    reference = rankings["predict"]
    rows: list[dict[str, Any]] = [{"path": "bm25", **evaluate(dataset.qrels, candidates)}]
    differing: dict[str, list[str]] = {}
    for path in PATHS:
        rows.append({"path": path, **evaluate(dataset.qrels, rankings[path])})
        differing[path] = [q for q in candidates if rankings[path][q] != reference[q]]

    print(f"{len(candidates)} queries x BM25 top-{args.candidates}, max_length {args.max_length or 'model default'}, "
          f"{seconds:.0f} s for all four paths")
    print(f"{'path':<12} {'nDCG@10':>8} {'MRR@10':>8} {'R@10':>8}  rankings differing from predict")
    for row in rows:
        diff = "-" if row["path"] == "bm25" else f"{len(differing[row['path']])}/{len(candidates)}"
        print(f"{row['path']:<12} {row['ndcg@10']:>8.4f} {row['mrr@10']:>8.4f} {row['recall@10']:>8.4f}  {diff}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "model": args.model, "data": str(args.data), "split": args.split, "queries": len(candidates),
        "candidates": args.candidates, "max_length": args.max_length, "seconds": round(seconds, 1),
        "rows": rows, "differing_from_predict": differing,
    }, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 1 if any(differing[path] for path in PATHS) else 0


if __name__ == "__main__":
    sys.exit(main())
