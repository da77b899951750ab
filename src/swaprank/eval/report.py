"""Turn rows into what people read: a terminal table, a JSON file, a PNG bar chart, and verdicts.

The verdicts are computed, not eyeballed: for every fused row whether RRF beats *both* of its
inputs, and for every depth sweep the depths at which reranking no longer beats the first stage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swaprank.eval.metrics import paired_p_value
from swaprank.eval.runner import Row


def _fmt(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _fmt_int(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def table(rows: Sequence[Row]) -> str:
    headers = ["configuration", "queries", "nDCG@10", "MRR@10", "R@10", "R@100", "R@cand", "+/-", "p",
               "median ms", "p95 ms", "docs/s"]
    body = []
    for r in rows:
        if r.error:
            body.append([r.label, str(r.queries), f"ERROR {r.error}"] + [""] * (len(headers) - 3))
            continue
        lat = r.latency or {}
        body.append([
            r.label + (" (partial)" if r.partial else ""),
            str(r.queries),
            _fmt(r.metrics.get("ndcg@10")), _fmt(r.metrics.get("mrr@10")),
            _fmt(r.metrics.get("recall@10")), _fmt(r.metrics.get("recall@100")),
            _fmt(r.ceiling), "-" if r.wins is None else f"{r.wins}/{r.losses}", _fmt(r.p_value, 3),
            _fmt_int(lat.get("median_ms")), _fmt_int(lat.get("p95_ms")), _fmt(lat.get("docs_per_s"), 1),
        ])
    sized = [cells for cells in body if not cells[2].startswith("ERROR")]
    sized += [[r.label] + [""] * (len(headers) - 1) for r in rows]
    widths = [max(len(h), *(len(cells[i]) for cells in sized)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        if len(cells) > 3 and cells[2].startswith("ERROR"):
            return f"{cells[0]:<{widths[0]}}  {cells[1]:>{widths[1]}}  {cells[2]}"
        padded = (c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))
        return "  ".join(padded)

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(cells) for cells in body]
    out.append("R@cand: first-stage recall at the candidate depth (the reranker's ceiling); "
               "+/-: queries whose nDCG@10 rose/fell vs the first stage; p: paired randomization test of\n"
               "nDCG@10 vs the first stage (10,000 sign flips); latency per query, measured rows only.")
    return "\n".join(out)


def _same(a: Row, b: Row) -> bool:
    return a.first_stage == b.first_stage and a.model == b.model and a.candidates == b.candidates


def verdicts(rows: Sequence[Row]) -> dict[str, list[dict[str, Any]]]:
    """Fusion vs both inputs, and where reranking stops paying, from the finished rows."""
    done = [r for r in rows if not r.error and not r.partial and r.metrics]
    baselines = {r.first_stage: r for r in done if r.model is None}
    fusion = []
    for fused in (r for r in done if r.fuse):
        plain = next((r for r in done if _same(r, fused) and not r.fuse), None)
        base = baselines.get(fused.first_stage)
        if plain is None or base is None:
            continue
        f, p, b = fused.metrics["ndcg@10"], plain.metrics["ndcg@10"], base.metrics["ndcg@10"]
        queries = [q for q in fused.per_query_ndcg if q in plain.per_query_ndcg]
        p_vs_reranked = paired_p_value([fused.per_query_ndcg[q] for q in queries],
                                       [plain.per_query_ndcg[q] for q in queries])
        fusion.append({"configuration": fused.label, "queries": fused.queries, "fused_ndcg@10": f,
                       "reranked_ndcg@10": p, "first_stage_ndcg@10": b, "beats_both": f > p and f > b,
                       "p_vs_reranked": p_vs_reranked, "p_vs_first_stage": fused.p_value})
    depth = []
    groups: dict[tuple[str, str, str | None], list[Row]] = {}
    for r in done:
        if r.model is not None:
            groups.setdefault((r.first_stage, r.model, r.fuse), []).append(r)
    for (stage, model, fuse), group in groups.items():
        base = baselines.get(stage)
        if base is None:
            continue
        group.sort(key=lambda r: r.candidates or 0)
        points: list[dict[str, Any]] = [{"candidates": r.candidates, "ndcg@10": r.metrics["ndcg@10"],
                   "delta_vs_first_stage": r.metrics["ndcg@10"] - base.metrics["ndcg@10"]} for r in group]
        losing = [p["candidates"] for p in points if p["delta_vs_first_stage"] <= 0]
        depth.append({"first_stage": stage, "model": model, "fuse": fuse, "queries": group[0].queries,
                      "first_stage_ndcg@10": base.metrics["ndcg@10"], "points": points,
                      "best_candidates": max(points, key=lambda p: p["ndcg@10"])["candidates"],
                      "depths_not_paying": losing})
    return {"fusion": fusion, "depth": depth}


def verdict_text(found: dict[str, list[dict[str, Any]]]) -> str:
    lines = []
    for v in found["fusion"]:
        lines.append(f"fusion {v['configuration']}: {v['fused_ndcg@10']:.4f} vs reranked {v['reranked_ndcg@10']:.4f} "
                     f"vs first stage {v['first_stage_ndcg@10']:.4f} -> "
                     + ("beats both" if v["beats_both"] else "does NOT beat both")
                     + f" (p vs reranked {v['p_vs_reranked']:.3f}, vs first stage {_fmt(v['p_vs_first_stage'], 3)})")
    for v in found["depth"]:
        if len(v["points"]) < 2:
            continue
        curve = ", ".join(f"top-{p['candidates']} {p['delta_vs_first_stage']:+.4f}" for p in v["points"])
        tag = " +rrf" if v["fuse"] else ""
        lines.append(f"depth {v['first_stage']} > {v['model']}{tag} (nDCG@10 vs first stage): {curve}; "
                     f"best top-{v['best_candidates']}; not paying at {v['depths_not_paying'] or 'no depth'}")
    return "\n".join(lines)


def write_json(path: Path, report: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def write_chart(path: Path, rows: Sequence[Row], title: str) -> Path | None:
    """nDCG@10 per configuration as horizontal bars (first stages grey, reranked blue, fused orange)."""
    shown = [r for r in rows if r.metrics and not r.error]
    if not shown:
        return None
    # A bare Figure renders with Agg without touching pyplot's global backend, so calling this from
    # a notebook (inline plots) or a GUI session does not switch the caller's backend.
    from matplotlib.figure import Figure

    labels = [r.label + (" (partial)" if r.partial else "") for r in shown]
    values = [r.metrics["ndcg@10"] for r in shown]
    colors = ["#9e9e9e" if r.model is None else "#ef8a17" if r.fuse else "#1f77b4" for r in shown]
    fig = Figure(figsize=(9, 0.38 * len(shown) + 1.4))
    ax = fig.subplots()
    bars = ax.barh(range(len(shown)), values, color=colors)
    ax.set_yticks(range(len(shown)), labels, fontsize=8)
    ax.invert_yaxis()
    low = max(0.0, min(values) - 0.05)
    ax.set_xlim(low, min(1.0, max(values) + 0.04))
    for bar, value in zip(bars, values, strict=True):
        ax.text(value + 0.002, bar.get_y() + bar.get_height() / 2, f"{value:.3f}", va="center", fontsize=7)
    ax.set_xlabel("nDCG@10 (x axis does not start at 0)" if low > 0 else "nDCG@10")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
