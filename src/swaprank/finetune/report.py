"""Before vs after on the held-out split, through ``swaprank eval``'s own runner, as JSON and PNG.

The before/after rows are produced by ``swaprank.eval.runner.Evaluation`` (the code ``swaprank eval``
runs: Reranker, the first-stage tail behind the reranked head, pytrec_eval), so the numbers are the
ones a user would get by running ``swaprank eval`` on the held-out queries themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from swaprank.eval import metrics
from swaprank.eval.first_stage import Ranking
from swaprank.eval.loader import BeirDataset
from swaprank.eval.report import write_json

REPORT_JSON = "finetune_report.json"
REPORT_PNG = "finetune_report.png"


def model_spec(path: str | Path, max_length: int) -> str:
    """How the report (and the benchmark) load a model: the training window, long documents truncated."""
    return f"cross-encoder:{path}?max_length={max_length}&long_docs=truncate"


def before_after(dev: BeirDataset, stage: str, ranking: Ranking, before: str, after: str,
                 candidates: int) -> dict[str, Any]:
    """First stage, base model and fine-tuned model on the held-out queries, with paired p-values."""
    from swaprank.eval.runner import Evaluation

    evaluation = Evaluation(dev, {stage: ranking})
    evaluation.run_model(before, [stage], [candidates], fuse=False)
    evaluation.run_model(after, [stage], [candidates], fuse=False)
    base_row, before_row, after_row = evaluation.rows
    queries = list(after_row.per_query_ndcg)
    p_after_before = metrics.paired_p_value([after_row.per_query_ndcg[q] for q in queries],
                                            [before_row.per_query_ndcg.get(q, 0.0) for q in queries])

    def summary(row: Any) -> dict[str, Any]:
        return {"label": row.label, "queries": row.queries, "ndcg@10": row.metrics.get("ndcg@10"),
                "mrr@10": row.metrics.get("mrr@10"), "recall@10": row.metrics.get("recall@10"),
                "p_value_vs_first_stage": row.p_value, "wins_vs_first_stage": row.wins,
                "losses_vs_first_stage": row.losses, "error": row.error}

    return {
        "split": dev.split, "queries": len(dev.query_ids), "first_stage": stage, "candidates": candidates,
        "first_stage_row": summary(base_row), "before": summary(before_row), "after": summary(after_row),
        "delta_ndcg@10": (after_row.metrics.get("ndcg@10", 0.0) - before_row.metrics.get("ndcg@10", 0.0)),
        "delta_mrr@10": (after_row.metrics.get("mrr@10", 0.0) - before_row.metrics.get("mrr@10", 0.0)),
        "p_value_after_vs_before": p_after_before,
        "significance_test": "paired randomization (sign-flip) test of per-query nDCG@10, 10,000 flips",
    }


def write(out: Path, payload: Mapping[str, Any]) -> tuple[Path, Path]:
    """``finetune_report.json`` and ``finetune_report.png`` (loss, held-out nDCG@10 per eval, before/after)."""
    json_path = write_json(out / REPORT_JSON, dict(payload))
    png_path = out / REPORT_PNG
    _chart(png_path, payload.get("curve", {}), payload.get("held_out"))
    return json_path, png_path


def _chart(path: Path, curve: Mapping[str, Sequence[Mapping[str, float]]], held_out: Mapping[str, Any] | None) -> None:
    from matplotlib.figure import Figure  # a bare Figure renders with Agg, leaving pyplot's backend alone

    fig = Figure(figsize=(13, 3.8))
    ax_loss, ax_dev, ax_bar = fig.subplots(1, 3)
    loss = curve.get("loss", [])
    ax_loss.plot([p["step"] for p in loss], [p["loss"] for p in loss], color="#1f77b4", linewidth=1)
    ax_loss.set_title("training loss", fontsize=9)
    ax_loss.set_xlabel("step")
    held = curve.get("held_out", [])
    ax_dev.plot([p["step"] for p in held], [p["ndcg@10"] for p in held], marker="o", color="#ef8a17", label="nDCG@10")
    ax_dev.plot([p["step"] for p in held], [p["mrr@10"] for p in held], marker=".", color="#2ca02c", label="MRR@10")
    ax_dev.set_title("held-out metrics per evaluation", fontsize=9)
    ax_dev.set_xlabel("step")
    ax_dev.legend(fontsize=7)
    if held_out:
        labels = ["first stage", "before", "after"]
        rows = [held_out["first_stage_row"], held_out["before"], held_out["after"]]
        values = [r.get("ndcg@10") or 0.0 for r in rows]
        bars = ax_bar.bar(labels, values, color=["#9e9e9e", "#aec7e8", "#1f77b4"])
        for bar, value in zip(bars, values, strict=True):
            ax_bar.text(bar.get_x() + bar.get_width() / 2, value + 0.005, f"{value:.3f}", ha="center", fontsize=8)
        ax_bar.set_ylim(0, min(1.0, max(values) + 0.1))
        ax_bar.set_title(f"held-out nDCG@10, top-{held_out['candidates']} "
                         f"(p after vs before {held_out['p_value_after_vs_before']:.3g})", fontsize=9)
    else:
        ax_bar.set_title("held-out before/after: not run", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
