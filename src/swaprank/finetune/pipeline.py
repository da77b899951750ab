"""One fine-tuning run end to end: data -> first stage -> mining -> training -> model + report in ``out``.

``out`` holds everything a run needs to continue: ``run.json`` (the settings; a rerun with different
training settings is refused rather than silently mixing two runs), ``first_stage.json`` (the mined
candidates), ``checkpoints/`` (the trainer's, resumed from the last one), and at the end the best
model itself (a normal cross-encoder directory) with ``finetune_report.json`` / ``.png``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swaprank.eval.first_stage import FIRST_STAGES, Ranking, default_bi_encoder, run_first_stages
from swaprank.eval.loader import BeirDataset
from swaprank.finetune import report
from swaprank.finetune.data import Splits, load_splits
from swaprank.finetune.errors import FinetuneError
from swaprank.finetune.mining import MarginRule, mine
from swaprank.finetune.model import load_cross_encoder, resolve_base
from swaprank.finetune.teacher import bi_encoder_scores
from swaprank.finetune.training import HeldOutEvaluator, TrainConfig, curve, train

RUN_FILE = "run.json"
RANKING_FILE = "first_stage.json"
# Settings that may change between an interrupted run and its continuation.
_RESUMABLE = {"max_minutes", "progress", "patience"}


@dataclass(frozen=True)
class RunOptions:
    data: Path
    base: str
    out: Path
    first_stage: str = "bm25"
    corpus: Path | None = None
    dev_fraction: float = 0.1
    rule: MarginRule = field(default_factory=MarginRule)
    train: TrainConfig = field(default_factory=TrainConfig)
    dense_model: str | None = None
    report: bool = True


def _union(splits: Splits) -> BeirDataset:
    ids = tuple(dict.fromkeys((*splits.train.query_ids, *splits.dev.query_ids)))
    queries = {**splits.train.queries, **splits.dev.queries}
    qrels = {**splits.train.qrels, **splits.dev.qrels}
    return BeirDataset(path=splits.data_dir, split="train+dev", corpus=splits.train.corpus, queries=queries,
                       qrels=qrels, query_ids=ids)


def _rankings(options: RunOptions, splits: Splits) -> Ranking:
    path = options.out / RANKING_FILE
    key = {"first_stage": options.first_stage, "depth": options.rule.depth, "data": str(splits.data_dir)}
    if path.is_file():
        cached = json.loads(path.read_text(encoding="utf-8"))
        if cached.get("key") == key:
            return {q: [(d, float(s)) for d, s in pairs] for q, pairs in cached["ranking"].items()}
    union = _union(splits)
    ranking = run_first_stages(union, [options.first_stage], max(options.rule.depth, options.train.eval_candidates),
                               dense_model=options.dense_model, cache_dir=options.out / "cache")[options.first_stage]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"key": key, "ranking": ranking}), encoding="utf-8")
    tmp.replace(path)
    return ranking


def teacher_model(options: RunOptions) -> str:
    """``--teacher dense`` is the dense first stage's bi-encoder (``--dense-model`` or all-MiniLM-L6-v2)."""
    name = options.train.teacher
    if name == "dense":
        return options.dense_model or default_bi_encoder()
    if name is None or not Path(name).expanduser().is_dir():
        raise FinetuneError(f"--teacher {name}: not a directory; give a sentence-transformers bi-encoder directory "
                            "or 'dense' (the dense first stage's model)")
    return str(Path(name).expanduser())


def _check_resume(options: RunOptions, settings: dict[str, Any]) -> None:
    path = options.out / RUN_FILE
    if path.is_file():
        previous = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(k for k in set(previous) | set(settings)
                         if k not in _RESUMABLE and previous.get(k) != settings.get(k))
        if changed:
            raise FinetuneError(f"--out {options.out} holds a run with different settings ({', '.join(changed)}); "
                                "rerun with the same settings to continue it, or choose a new --out")
    options.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def run(options: RunOptions) -> dict[str, Any]:
    """Train (or continue), save the best model into ``options.out``, write the report; return its payload."""
    if options.first_stage not in FIRST_STAGES:
        raise FinetuneError(f"unknown first stage {options.first_stage!r}; choose from {', '.join(FIRST_STAGES)}")
    options.train.check()
    started = time.time()
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    splits = load_splits(options.data, workdir=out, corpus=options.corpus, dev_fraction=options.dev_fraction,
                         seed=options.train.seed)
    settings = {"data": str(options.data), "base": options.base, "first_stage": options.first_stage,
                "corpus": None if options.corpus is None else str(options.corpus),
                "dev_fraction": options.dev_fraction, "rule": options.rule.__dict__,
                **{k: v for k, v in options.train.as_dict().items()}}
    _check_resume(options, settings)
    ranking = _rankings(options, splits)
    mined = mine(splits.train.qrels, ranking, options.rule)
    if mined.stats.negatives_kept == 0:
        raise FinetuneError(f"no hard negative survived mining from {options.first_stage} "
                            f"(stats: {mined.stats.as_dict()}); lower the margins or raise --mine-depth")
    (out / "mined.json").write_text(json.dumps(mined.as_dict()), encoding="utf-8")
    teacher = None
    if options.train.teacher is not None:
        teacher_path = teacher_model(options)
        teacher = bi_encoder_scores(splits.train, mined, teacher_path, cache_dir=out / "cache")
    base = resolve_base(options.base, out, seed=options.train.seed)
    model = load_cross_encoder(base.path, options.train.max_length, seed=options.train.seed)
    evaluator = HeldOutEvaluator(splits.dev, ranking, options.train.eval_candidates)
    outcome = train(model, splits.train, mined, evaluator, options.train, out / "checkpoints", teacher=teacher)
    model.save_pretrained(str(out))  # the best checkpoint (load_best_model_at_end): a plain cross-encoder dir
    payload: dict[str, Any] = {
        "settings": settings,
        "data": {"train_queries": len(splits.train.query_ids), "held_out_queries": len(splits.dev.query_ids),
                 "held_out_source": splits.dev_source, "corpus_documents": len(splits.train.corpus),
                 "data_dir": str(splits.data_dir)},
        "base": {"path": base.path, "kind": base.kind, "source": base.source},
        "mining": {"first_stage": options.first_stage, "rule": options.rule.__dict__,
                   "stats": mined.stats.as_dict()},
        "training": {k: v for k, v in outcome.items() if k != "log_history"},
        "curve": curve(outcome["log_history"]),
        "model": str(out),
        "held_out": None,
    }
    if options.report:
        payload["held_out"] = report.before_after(
            splits.dev, options.first_stage, {q: ranking[q] for q in splits.dev.query_ids if q in ranking},
            report.model_spec(base.path, options.train.max_length), report.model_spec(out, options.train.max_length),
            options.train.eval_candidates)
    payload["seconds"] = round(time.time() - started, 1)
    report.write(out, payload)
    return payload
