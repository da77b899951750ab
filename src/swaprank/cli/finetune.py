"""``swaprank finetune``: adapt a cross-encoder to your corpus with hard negatives from your own first stage.

Example::

    swaprank finetune --data ../shared/data/beir/scifact --base cross-encoder:/path/to/model \\
        --out runs/scifact-ce --first-stage bm25 --max-minutes 60

``--out`` ends up holding a normal cross-encoder (``cross-encoder:runs/scifact-ce`` loads it; ``swaprank
export`` builds its fast CPU path) plus ``finetune_report.json`` / ``.png``. Rerunning the same command
continues from the last checkpoint. Ctrl-C stops at once; the checkpoints written so far are kept.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from swaprank.eval.first_stage import FIRST_STAGES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from swaprank.finetune.training import LOSSES, TrainConfig

    d = TrainConfig()
    parser.add_argument("--data", required=True, type=Path,
                        help="a BEIR folder (corpus.jsonl, queries.jsonl, qrels/train.tsv, optional qrels/dev.tsv) "
                             "or a JSONL file of {\"query\": ..., \"positive\": ...} pairs")
    parser.add_argument("--base", required=True,
                        help="the model to start from: a cross-encoder directory or 'cross-encoder:' spec, or an "
                             "encoder directory (e.g. a BERT or sentence-transformers bi-encoder) that gets a new head")
    parser.add_argument("--out", required=True, type=Path,
                        help="run directory: checkpoints, then the fine-tuned model and its report (rerun to resume)")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="with a pairs file: a BEIR corpus.jsonl to mine negatives from (default: the positives)")
    parser.add_argument("--first-stage", choices=FIRST_STAGES, default="bm25",
                        help="the retriever whose candidates become hard negatives and get reranked (default: bm25)")
    parser.add_argument("--dense-model", default=None, help="bi-encoder for dense/hybrid (default: all-MiniLM-L6-v2)")
    parser.add_argument("--dev-fraction", type=float, default=0.1,
                        help="without qrels/dev.tsv, hold out this fraction of train queries (default: 0.1)")
    parser.add_argument("--mine-depth", type=int, default=100,
                        help="mine negatives from the first stage's top N (default: 100)")
    parser.add_argument("--range-min", type=int, default=0, help="skip the first stage's top N ranks when mining")
    parser.add_argument("--relative-margin", type=float, default=None,
                        help="drop a candidate scoring above (1 - m) x the best positive's first-stage score "
                             "(likely an unjudged relevant document), e.g. 0.05")
    parser.add_argument("--absolute-margin", type=float, default=None,
                        help="drop a candidate scoring above the best positive's first-stage score minus m")
    parser.add_argument("--negatives", type=int, default=d.negatives, help=f"hard negatives per query (default: "
                                                                           f"{d.negatives})")
    parser.add_argument("--sampling", choices=["mixed", "top", "random"], default=d.sampling,
                        help="which eligible negatives: top ranks, uniform, or half each (default: mixed)")
    parser.add_argument("--loss", choices=LOSSES, default=d.loss,
                        help="lambda (listwise LambdaLoss), listnet, or bce (pairwise binary cross-entropy)")
    parser.add_argument("--learning-rate", type=float, default=d.learning_rate)
    parser.add_argument("--batch-size", type=int, default=d.batch_size,
                        help="queries per step (each with its positives and negatives) (default: %(default)s)")
    parser.add_argument("--epochs", type=float, default=d.epochs, help="passes over the training queries")
    parser.add_argument("--max-length", type=int, default=d.max_length, help="tokens per (query, document) pair")
    parser.add_argument("--eval-steps", type=int, default=d.eval_steps,
                        help="evaluate on the held-out split (and checkpoint) every N steps")
    parser.add_argument("--eval-candidates", type=int, default=d.eval_candidates,
                        help="first-stage candidates reranked for the held-out evaluation (default: %(default)s)")
    parser.add_argument("--patience", type=int, default=None,
                        help="stop after N evaluations without a better held-out nDCG@10 (default: never)")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="training time budget: stop at a step boundary, evaluate, save, keep the best")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--bf16", action="store_true",
                        help="bf16 autocast while training (faster on CPUs with AVX512-BF16/AMX; weights stay fp32)")
    parser.add_argument("--teacher", default=None,
                        help="soft listwise labels from a bi-encoder's cosines (with --loss listnet): a "
                             "sentence-transformers directory, or 'dense' for the dense first stage's model; "
                             "positives stay on top (see --teacher-margin)")
    parser.add_argument("--teacher-temperature", type=float, default=d.teacher_temperature,
                        help="teacher logit = cosine / T (default: %(default)s, all-MiniLM-L6-v2's training scale)")
    parser.add_argument("--teacher-margin", type=float, default=d.teacher_margin,
                        help="a positive's target logit is at least the best negative's plus this "
                             "(default: %(default)s)")
    parser.add_argument("--no-report", action="store_true", help="skip the before/after evaluation")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from swaprank.finetune.mining import MarginRule
    from swaprank.finetune.pipeline import RunOptions
    from swaprank.finetune.pipeline import run as run_finetune
    from swaprank.finetune.report import REPORT_JSON, REPORT_PNG
    from swaprank.finetune.training import TrainConfig

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    rule = MarginRule(absolute_margin=args.absolute_margin, relative_margin=args.relative_margin,
                      range_min=args.range_min, depth=args.mine_depth)
    config = TrainConfig(loss=args.loss, learning_rate=args.learning_rate, batch_size=args.batch_size,
                         negatives=args.negatives, sampling=args.sampling, max_length=args.max_length,
                         epochs=args.epochs, eval_steps=args.eval_steps, eval_candidates=args.eval_candidates,
                         patience=args.patience, max_minutes=args.max_minutes, seed=args.seed,
                         bf16=args.bf16, teacher=args.teacher, teacher_temperature=args.teacher_temperature,
                         teacher_margin=args.teacher_margin, progress=not args.no_progress)
    options = RunOptions(data=args.data, base=args.base, out=args.out, first_stage=args.first_stage,
                         corpus=args.corpus, dev_fraction=args.dev_fraction, rule=rule, train=config,
                         dense_model=args.dense_model, report=not args.no_report)
    payload = run_finetune(options)
    training = payload["training"]
    summary = {"model": payload["model"], "stop_reason": training["stop_reason"],
               "global_step": training["global_step"], "best_held_out_ndcg@10": training["best_metric"]}
    held = payload.get("held_out")
    if held:
        summary.update({"held_out_before_ndcg@10": held["before"]["ndcg@10"],
                        "held_out_after_ndcg@10": held["after"]["ndcg@10"],
                        "held_out_p_value": held["p_value_after_vs_before"]})
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out / REPORT_JSON}, {args.out / REPORT_PNG}; load it as cross-encoder:{args.out}")
    return 0
