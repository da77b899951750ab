"""Fine-tune all-MiniLM-L6-v2's encoder into a SciFact reranker with ``swaprank finetune``, then measure it
on SciFact test with ``swaprank eval`` against the shared stand-in's numbers.

Two commands, both run as subprocesses so what is measured is exactly what a user runs:

1. ``swaprank finetune`` on SciFact **train** only (a held-out tenth of train, carved with seed 0,
   selects the best checkpoint; test qrels are never read), time budget ``--max-minutes``;
2. ``swaprank eval --split test --first-stage bm25 --candidates 30,100`` with the model at its
   training window and ``long_docs=truncate`` (the stand-in's RESULTS.md setting: 224 tokens, truncated).

Run it on a quiet machine and without network::

    unshare -n bash -c 'ip link set lo up; \\
        .venv/bin/python benchmarks/bench_finetune.py --run-dir ../finetune-runs/final --max-minutes 55 --bf16'

(55 minutes of training leave room for the teacher's one-time corpus encoding, about 4 minutes here.)

The model stays in ``--run-dir`` (outside the repo); benchmarks/results/ gets bench_finetune.json and
bench_finetune.png (the training report's chart). Targets (issue 15): BM25 top-30 reranked nDCG@10 >= 0.6724
(the stand-in) and BM25 top-100 reranked >= 0.6617 (BM25 alone). ``--skip-train`` re-evaluates an
existing run directory.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.assets import bi_encoder_path, missing_asset_hint, scifact_path  # noqa: E402

from swaprank.finetune.report import model_spec  # noqa: E402

STAND_IN_TOP30 = 0.6724  # ../shared/models/minilm-l6-scifact-ce/RESULTS.md, max_length 224, truncated
BM25_ALONE = 0.6617

# The best target run so far (RESULTS.md section 5, run r7): listwise with the bi-encoder teacher.
DEFAULTS: dict[str, Any] = {"loss": "listnet", "teacher": "dense", "teacher_margin": 3.0, "learning_rate": 4e-5,
                            "batch_size": 2, "negatives": 15, "sampling": "mixed", "max_length": 224,
                            "epochs": 1.9, "eval_steps": 150, "eval_candidates": 30}


def _run(command: list[str]) -> float:
    print("$ " + shlex.join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return round(time.perf_counter() - started, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=scifact_path(), help="SciFact BEIR folder")
    parser.add_argument("--base", default=bi_encoder_path(), help="encoder to start from (default: all-MiniLM-L6-v2)")
    parser.add_argument("--run-dir", type=Path, required=True, help="where the model goes (keep it out of the repo)")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="training budget (evaluation is extra)")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--skip-train", action="store_true", help="only evaluate an existing --run-dir")
    parser.add_argument("--bf16", action="store_true", help="train with bf16 autocast")
    parser.add_argument("--candidates", default="30,100", help="BM25 depths reranked on test (default: 30,100)")
    for key, value in DEFAULTS.items():
        parser.add_argument("--" + key.replace("_", "-"), type=type(value), default=value)
    args = parser.parse_args(argv)
    if args.data is None:
        print(missing_asset_hint("data"), file=sys.stderr)
        return 2
    exe = str(Path(sys.executable).with_name("swaprank"))
    finetune = [exe, "finetune", "--data", str(args.data), "--base", str(args.base), "--out", str(args.run_dir),
                "--first-stage", "bm25", "--max-minutes", f"{args.max_minutes:g}", "--seed", "0"]
    for key in DEFAULTS:
        if key.startswith("teacher") and args.teacher == "none":  # --teacher none: labels only (run r6)
            continue
        finetune += ["--" + key.replace("_", "-"), str(getattr(args, key))]
    if args.bf16:
        finetune.append("--bf16")
    timings: dict[str, float] = {}
    if not args.skip_train:
        timings["finetune_seconds"] = _run(finetune)
    report = json.loads((args.run_dir / "finetune_report.json").read_text(encoding="utf-8"))
    max_length = report["settings"]["max_length"]
    spec = model_spec(args.run_dir, max_length)  # the report's own spec: the same window and truncation
    eval_dir = args.run_dir.parent / (args.run_dir.name + "-test-eval")
    name = "scifact-test-finetuned"
    evaluate = [exe, "eval", "--data", str(args.data), "--split", "test", "--first-stage", "bm25",
                "--candidates", args.candidates, "--model", spec, "--out", str(eval_dir), "--name", name,
                "--no-progress"]
    timings["eval_seconds"] = _run(evaluate)
    rows = json.loads((eval_dir / f"{name}.json").read_text(encoding="utf-8"))["rows"]
    bm25 = next(r for r in rows if r["model"] is None)
    by_depth = {r["candidates"]: r for r in rows if r["model"] is not None and not r["fuse"]}

    def row(r: dict[str, Any]) -> dict[str, Any]:
        return {"queries": r["queries"], "ndcg@10": r["metrics"]["ndcg@10"], "mrr@10": r["metrics"]["mrr@10"],
                "recall@10": r["metrics"]["recall@10"], "p_value_vs_bm25": r.get("p_value_vs_first_stage"),
                "wins_losses_vs_bm25": [r.get("wins_vs_first_stage"), r.get("losses_vs_first_stage")]}

    top30 = row(by_depth[30]) if 30 in by_depth else None
    top100 = row(by_depth[100]) if 100 in by_depth else None
    result = {
        "commands": {"finetune": shlex.join(finetune), "eval": shlex.join(evaluate)},
        "bm25": row(bm25), "top30": top30, "top100": top100,
        "other_depths": {str(d): row(r) for d, r in by_depth.items() if d not in (30, 100)},
        "targets": {"top30_vs_stand_in": STAND_IN_TOP30, "top100_vs_bm25": BM25_ALONE},
        "beats": {"top30": None if top30 is None else top30["ndcg@10"] >= STAND_IN_TOP30,
                  "top100": None if top100 is None else top100["ndcg@10"] >= BM25_ALONE},
        "training": report["training"], "held_out": report["held_out"], "mining": report["mining"],
        "data": report["data"], "settings": report["settings"], "timings": timings,
    }
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "bench_finetune.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    shutil.copyfile(args.run_dir / "finetune_report.png", args.results / "bench_finetune.png")
    print(json.dumps({k: result[k] for k in ("bm25", "top30", "top100", "beats")}, indent=2))
    print(f"training: stop {report['training']['stop_reason']} at step {report['training']['global_step']} of "
          f"{report['training']['max_steps']}, best held-out nDCG@10 {report['training']['best_metric']}")
    print(f"wrote {args.results / 'bench_finetune.json'}, {args.results / 'bench_finetune.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
