"""Training with sentence-transformers' ``CrossEncoderTrainer``: datasets, loss, held-out evaluator, callbacks.

Design choices:

* Loss: ``lambda`` (LambdaLoss, listwise, NDCG-weighted; one row = a query, its positives and N
  hard negatives) is the default; ``bce`` (BinaryCrossEntropyLoss on the same pairs, each positive
  weighted by N) is the pairwise alternative, ``listnet`` another listwise one. A listwise loss
  compares a query's candidates with each other, which is what a reranker does, and is the usual
  cure for rerankers that fall below the first stage on deep candidate pools. With binary labels
  ListNet's target is a softmax over 1s and 0s (the positive gets e / (e + N) of the mass, 15% for
  N = 15), which is why it pairs with ``--teacher``: soft labels from a bi-encoder
  (``swaprank.finetune.teacher``) with the positives lifted well above the negatives. From
  all-MiniLM-L6-v2 on SciFact, an hour of each (benchmarks/RESULTS.md section 5): weighted BCE 0.5909
  test nDCG@10 over BM25's top-30, ListNet with the teacher 0.6790.
* Negatives are re-sampled every epoch from the mined eligible list, with a seed derived from
  ``--seed`` and the epoch: more variety than a fixed set, and the whole schedule is a pure function
  of the seed, so a resumed run sees exactly the batches the interrupted one would have seen.
* The held-out evaluator reranks the first stage's top candidates of the held-out queries and scores
  them with ``swaprank.eval.metrics`` (pytrec_eval), exactly as ``swaprank eval`` would (the
  first-stage tail stays behind the reranked head); its nDCG@10 selects the best checkpoint and
  drives early stopping.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swaprank.eval import metrics
from swaprank.eval.first_stage import Ranking
from swaprank.eval.loader import BeirDataset
from swaprank.finetune.errors import FinetuneError
from swaprank.finetune.mining import Mined, sample_negatives
from swaprank.finetune.teacher import TeacherScores, row_labels

logger = logging.getLogger(__name__)

LOSSES = ("lambda", "bce", "listnet")
BEST_METRIC = "eval_dev_ndcg@10"


@dataclass(frozen=True)
class TrainConfig:
    loss: str = "lambda"
    learning_rate: float = 5e-5
    batch_size: int = 4  # queries per step (listwise); the same pairs per step for bce
    negatives: int = 7
    sampling: str = "mixed"
    max_length: int = 256
    epochs: float = 3.0
    warmup_ratio: float = 0.1
    eval_steps: int = 100
    eval_candidates: int = 30
    patience: int | None = None
    max_minutes: float | None = None
    seed: int = 0
    weight_decay: float = 0.01
    bf16: bool = False  # bf16 autocast (CPUs with AVX512-BF16/AMX, or CUDA); weights stay fp32
    teacher: str | None = None  # a bi-encoder whose cosines become soft listwise labels (teacher.py)
    teacher_temperature: float = 0.05
    teacher_margin: float = 3.0
    progress: bool = True

    def check(self) -> None:
        if self.loss not in LOSSES:
            raise FinetuneError(f"unknown loss {self.loss!r}; choose from {', '.join(LOSSES)}")
        for name in ("batch_size", "negatives", "eval_steps", "eval_candidates", "max_length"):
            if getattr(self, name) <= 0:
                raise FinetuneError(f"{name.replace('_', '-')} must be positive, got {getattr(self, name)}")
        if self.epochs <= 0 or self.learning_rate <= 0:
            raise FinetuneError("epochs and learning rate must be positive")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise FinetuneError(f"--max-minutes must be positive, got {self.max_minutes}")
        if self.teacher is not None:
            if self.loss != "listnet":
                raise FinetuneError(f"--teacher gives soft listwise labels: use it with --loss listnet, not "
                                    f"{self.loss!r}")
            if self.teacher_temperature <= 0 or self.teacher_margin < 0:
                raise FinetuneError("--teacher-temperature must be positive and --teacher-margin at least 0")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_rows(dataset: BeirDataset, mined: Mined, config: TrainConfig,
                  teacher: TeacherScores | None = None) -> dict[str, list[Any]]:
    """Columns for ``datasets.Dataset.from_dict``: one epoch after another, each with fresh negatives.

    With ``teacher`` scores (``config.teacher``), a row's labels are the teacher's soft labels instead of 1/0.
    """
    if config.teacher is not None and teacher is None:
        raise FinetuneError("--teacher is set but no teacher scores were computed")
    full_epochs = math.ceil(config.epochs)
    listwise = config.loss != "bce"
    rows: dict[str, list[Any]] = {"query": [], "docs": [], "labels": []} if listwise else \
        {"query": [], "doc": [], "label": []}
    for epoch in range(full_epochs):
        rng = random.Random(config.seed * 1000 + epoch)
        order = list(dataset.query_ids)
        rng.shuffle(order)
        for q in order:
            positives = [d for d, r in dataset.qrels[q].items() if r > 0 and d in dataset.corpus]
            if not positives:
                continue
            negatives = sample_negatives(mined.negatives.get(q, []), config.negatives, rng, config.sampling)
            docs = positives + negatives
            if teacher is not None:
                labels = row_labels(teacher.get(q, {}), docs, len(positives), config.teacher_temperature,
                                    config.teacher_margin)
            else:
                labels = [1.0] * len(positives) + [0.0] * len(negatives)
            texts = [dataset.doc_text(d) for d in docs]
            if listwise:
                rows["query"].append(dataset.queries[q])
                rows["docs"].append(texts)
                rows["labels"].append(labels)
            else:
                rows["query"].extend([dataset.queries[q]] * len(texts))
                rows["doc"].extend(texts)
                rows["label"].extend(labels)
    if not rows["query"]:
        raise FinetuneError("no training example: no training query has a relevant document in the corpus")
    if config.epochs != full_epochs:  # a fractional last epoch: keep its first part
        per_epoch = len(rows["query"]) // full_epochs
        keep = int(per_epoch * config.epochs)
        rows = {k: v[:keep] for k, v in rows.items()}
    return rows


def build_loss(model: Any, config: TrainConfig) -> Any:
    from sentence_transformers.cross_encoder import losses

    if config.loss == "bce":
        import torch

        # One positive per N negatives: unweighted, the loss is minimised by predicting the base
        # rate for everything (a 52-minute run sat at loss ~0.38 = H(1/8) and ended at 0.29 nDCG@10).
        # Weighting positives by N, as sentence-transformers' reranker training scripts do, balances
        # the two classes.
        return losses.BinaryCrossEntropyLoss(model, pos_weight=torch.tensor(float(config.negatives)))
    if config.loss == "listnet":
        return losses.ListNetLoss(model)
    return losses.LambdaLoss(model)


class HeldOutEvaluator:
    """Rerank the held-out queries' first-stage top-k and report nDCG@10 / MRR@10 via swaprank's metrics."""

    def __init__(self, dataset: BeirDataset, ranking: Ranking, candidates: int, batch_size: int = 32) -> None:
        from sentence_transformers.base.evaluation import BaseEvaluator

        self._base = BaseEvaluator  # subclassing at import time would import torch with this module
        self.dataset = dataset
        self.pools = {q: [d for d, _ in ranking.get(q, [])] for q in dataset.query_ids}
        self.candidates = candidates
        self.batch_size = batch_size

    def scores(self, model: Any) -> dict[str, list[str]]:
        pairs: list[tuple[str, str]] = []
        spans: list[tuple[str, int, int]] = []
        for q, pool in self.pools.items():
            head = pool[: self.candidates]
            spans.append((q, len(pairs), len(head)))
            pairs.extend((self.dataset.queries[q], self.dataset.doc_text(d)) for d in head)
        predicted = model.predict(pairs, batch_size=self.batch_size, convert_to_numpy=True,
                                  show_progress_bar=False) if pairs else []
        ranked: dict[str, list[str]] = {}
        for q, start, n in spans:
            head = self.pools[q][: self.candidates]
            order = sorted(range(n), key=lambda i: (-float(predicted[start + i]), i))  # stable, as Reranker
            ranked[q] = [head[i] for i in order] + self.pools[q][self.candidates:]
        return ranked

    def evaluate(self, model: Any) -> dict[str, float]:
        ranked = self.scores(model)
        means = metrics.evaluate({q: self.dataset.qrels[q] for q in self.pools}, ranked)
        return {"ndcg@10": means["ndcg@10"], "mrr@10": means["mrr@10"]}

    def as_st_evaluator(self) -> Any:
        outer = self

        class _Evaluator(self._base):  # type: ignore[name-defined]
            def __init__(self) -> None:
                super().__init__()
                self.name = "dev"
                self.primary_metric = "ndcg@10"

            def __call__(self, model: Any, output_path: str | None = None, epoch: int = -1,
                         steps: int = -1) -> dict[str, float]:
                values = outer.evaluate(model)
                return self.prefix_name_to_metrics(values, self.name)

        return _Evaluator()


def _callbacks(config: TrainConfig, started: float, outcome: dict[str, Any]) -> list[Any]:
    from transformers import EarlyStoppingCallback, TrainerCallback

    class TimeBudget(TrainerCallback):
        """Stop after the budget at a step boundary, but evaluate and save first so nothing is lost."""

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if config.max_minutes is not None and time.monotonic() - started >= config.max_minutes * 60:
                control.should_training_stop = True
                control.should_evaluate = True
                control.should_save = True
                if outcome.get("stop_reason") is None:
                    outcome["stop_reason"] = "time_budget"
                    outcome["stopped_at_step"] = state.global_step
            return control

    callbacks: list[Any] = [TimeBudget()]
    if config.patience:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=config.patience))
    return callbacks


def train(model: Any, train_set: BeirDataset, mined: Mined, evaluator: HeldOutEvaluator, config: TrainConfig,
          checkpoints: Path, *, resume: bool = True, teacher: TeacherScores | None = None) -> dict[str, Any]:
    """Run (or continue) training; returns the outcome: steps, stop reason, best checkpoint, history."""
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from transformers.trainer_utils import get_last_checkpoint

    config.check()
    started = time.monotonic()
    rows = training_rows(train_set, mined, config, teacher)
    dataset = Dataset.from_dict(rows)
    per_step = config.batch_size if config.loss != "bce" else config.batch_size * (1 + config.negatives)
    checkpoints.mkdir(parents=True, exist_ok=True)
    last = get_last_checkpoint(str(checkpoints)) if resume else None
    args = CrossEncoderTrainingArguments(
        output_dir=str(checkpoints),
        num_train_epochs=1,  # the rows already hold every epoch (fresh negatives each)
        per_device_train_batch_size=per_step,
        per_device_eval_batch_size=32,
        learning_rate=config.learning_rate,
        weight_decay=config.weight_decay,
        warmup_steps=config.warmup_ratio,
        lr_scheduler_type="linear",
        eval_strategy="steps",
        eval_steps=config.eval_steps,
        save_strategy="steps",
        save_steps=config.eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=BEST_METRIC,
        greater_is_better=True,
        logging_steps=max(1, min(10, config.eval_steps)),
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=not config.progress,
        bf16=config.bf16,
    )
    outcome: dict[str, Any] = {"stop_reason": None, "resumed_from": last}
    trainer = CrossEncoderTrainer(model=model, args=args, train_dataset=dataset, loss=build_loss(model, config),
                                  evaluator=evaluator.as_st_evaluator(), callbacks=_callbacks(config, started, outcome))
    result = trainer.train(resume_from_checkpoint=last)
    state = trainer.state
    if outcome["stop_reason"] is None:
        finished = state.global_step >= state.max_steps
        outcome["stop_reason"] = "completed" if finished else "early_stopping"
    outcome.update(
        global_step=state.global_step, max_steps=state.max_steps, train_rows=len(dataset),
        pairs_per_step=per_step if config.loss == "bce" else per_step * (1 + config.negatives),
        best_checkpoint=state.best_model_checkpoint, best_metric=state.best_metric,
        train_seconds=round(time.monotonic() - started, 1), train_runtime=result.metrics.get("train_runtime"),
        log_history=list(state.log_history),
    )
    return outcome


def curve(log_history: Sequence[Mapping[str, Any]]) -> dict[str, list[dict[str, float]]]:
    """Training loss and held-out metrics per step, from the trainer's log history (survives resume)."""
    loss = [{"step": int(e["step"]), "loss": float(e["loss"]), "learning_rate": float(e.get("learning_rate", 0.0))}
            for e in log_history if "loss" in e and "step" in e]
    held = [{"step": int(e["step"]), "ndcg@10": float(e[BEST_METRIC]),
             "mrr@10": float(e.get("eval_dev_mrr@10", 0.0))} for e in log_history if BEST_METRIC in e]
    return {"loss": loss, "held_out": held}
