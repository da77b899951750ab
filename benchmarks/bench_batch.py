"""`swaprank batch` on 20,000 SciFact pairs: SIGKILLed halfway, restarted, every pair scored exactly once.

The pairs are the SciFact test queries x their BM25 candidates (swaprank.eval.first_stage), cut to
``--pairs``. Run 1 is a real `swaprank batch` process (embedded Ray) killed with SIGKILL, with its
whole process group, once about half the pairs are on disk; run 2 is the same command. Then:

- exactly once: the output's ``row`` column is 0..N-1 with no gap and no duplicate;
- redone: pairs run 2 scored, against the pairs missing after the kill (only those may be redone);
- fidelity: scores against a direct ``Reranker(model).rerank_many`` pass (pairs grouped by query) over
  every pair, or over a deterministic sample (every k-th row) with ``--reference-sample``.

Run it inside a loopback-only network namespace (Ray probes cloud metadata addresses at start-up):

    unshare -n bash -c 'ip link set lo up; \\
        NNCF_CI=1 DO_NOT_TRACK=1 .venv/bin/python benchmarks/bench_batch.py'

Prints a summary and writes benchmarks/results/bench_batch.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.assets import missing_asset_hint, real_model_path, scifact_path  # noqa: E402


def build_pairs(data: Path, n: int, out: Path) -> list[dict[str, str]]:
    """SciFact test queries x BM25 candidates, best-first per query, until ``n`` pairs."""
    from swaprank.eval.first_stage import bm25
    from swaprank.eval.loader import load_beir

    dataset = load_beir(data, "test")
    per_query = -(-n // len(dataset.query_ids)) + 1
    ranking = bm25(dataset, per_query)
    pairs: list[dict[str, str]] = []
    for depth in range(per_query):  # breadth-first over queries, so a cut keeps every query
        for query_id in dataset.query_ids:
            hits = ranking.get(query_id, [])
            if depth < len(hits) and len(pairs) < n:
                doc_id = hits[depth][0]
                pairs.append({"id": f"{query_id}:{doc_id}", "query_id": query_id, "doc_id": doc_id,
                              "query": dataset.queries[query_id], "text": dataset.doc_text(doc_id)})
    pairs.sort(key=lambda p: (p["query_id"], p["doc_id"]))  # a stable, query-grouped input file
    out.write_text("".join(json.dumps(p) + "\n" for p in pairs), encoding="utf-8")
    return pairs


def rows_on_disk(output: Path) -> int:
    """Rows in finished parts, from their names (a fresh run's parts are contiguous ranges)."""
    total = 0
    for part in output.glob("part-*.parquet"):
        first, last = part.stem.split("-")[1:3]
        total += int(last) - int(first) + 1
    return total


def batch_command(args: argparse.Namespace, pairs_file: Path, output: Path) -> list[str]:
    return [str(Path(sys.executable).parent / "swaprank"), "batch", "--input", str(pairs_file), "--output",
            str(output), "--model", args.model_spec, "--batch-size", str(args.batch_size), "--num-actors",
            str(args.num_actors), "--quiet", "--json"]


def run_killed(command: list[str], output: Path, kill_at: int, log: Path) -> dict[str, Any]:
    started = time.perf_counter()
    with log.open("w") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        while process.poll() is None and rows_on_disk(output) < kill_at:
            time.sleep(0.2)
        killed = process.poll() is None
        if killed:
            os.killpg(process.pid, signal.SIGKILL)  # the driver and every Ray process it started
        process.wait()
    time.sleep(2)
    leftovers = subprocess.run(["pgrep", "-g", str(process.pid)], capture_output=True, text=True).stdout.split()
    for pid in leftovers:
        os.kill(int(pid), signal.SIGKILL)
    return {"killed": killed, "rows_on_disk_at_kill": rows_on_disk(output),
            "seconds": round(time.perf_counter() - started, 1), "leftover_processes_killed": len(leftovers)}


def run_to_end(command: list[str], log: Path) -> dict[str, Any]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"restart failed with {done.returncode}: {done.stderr[-3000:]}")
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    summary["wall_seconds"] = round(time.perf_counter() - started, 1)
    return summary


def reference_scores(model: str, pairs: list[dict[str, str]], rows: list[int]) -> tuple[dict[int, tuple[float, float]],
                                                                                          float]:
    from swaprank import Reranker

    groups: dict[str, list[int]] = {}
    for row in rows:
        groups.setdefault(pairs[row]["query"], []).append(row)
    reranker = Reranker(model)
    reranker.warmup()
    started = time.perf_counter()
    results = reranker.rerank_many(list(groups), [[pairs[r]["text"] for r in groups[q]] for q in groups])
    seconds = time.perf_counter() - started
    scores: dict[int, tuple[float, float]] = {}
    for query, result in zip(groups, results, strict=True):
        for ranked in result:
            scores[groups[query][ranked.index]] = (ranked.score, ranked.raw_score)
    return scores, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=real_model_path(), help="a local cross-encoder directory")
    parser.add_argument("--options", default="?runtime=openvino",
                        help="spec options (default ?runtime=openvino: the fast CPU path, fp32)")
    parser.add_argument("--data", type=Path, default=scifact_path())
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--num-actors", type=int, default=1)
    parser.add_argument("--kill-at", type=float, default=0.5, help="fraction of pairs on disk when run 1 is killed")
    parser.add_argument("--reference-sample", type=int, default=1,
                        help="compare every k-th row with the direct Reranker pass (1: all rows)")
    parser.add_argument("--workdir", type=Path, default=None, help="where pairs and output go (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_batch.json")
    args = parser.parse_args(argv)
    if args.model is None:
        parser.error(missing_asset_hint("model"))
    if args.data is None:
        parser.error(missing_asset_hint("data"))
    args.model_spec = f"cross-encoder:{args.model}{args.options}"
    work = args.workdir or Path(tempfile.mkdtemp(prefix="swaprank-bench-batch-"))
    work.mkdir(parents=True, exist_ok=True)
    pairs_file, output = work / "pairs.jsonl", work / "scores"
    if output.exists():
        raise SystemExit(f"{output} exists; use a fresh --workdir")

    pairs = build_pairs(args.data, args.pairs, pairs_file)
    print(f"{len(pairs)} pairs, {len({p['query_id'] for p in pairs})} queries -> {pairs_file}", flush=True)
    from swaprank import Reranker

    Reranker(args.model_spec).warmup()  # the artifact export happens once, here, not inside the timed runs
    command = batch_command(args, pairs_file, output)
    first = run_killed(command, output, int(len(pairs) * args.kill_at), work / "run1.log")
    print(f"run 1: {json.dumps(first)}", flush=True)
    second = run_to_end(command, work / "run2.log")
    print(f"run 2: {json.dumps(second)}", flush=True)

    from swaprank.batch import read_scores

    table = read_scores(output)
    rows = table["row"].to_pylist()
    exactly_once = rows == list(range(len(pairs)))
    ids_match = table["id"].to_pylist() == [p["id"] for p in pairs]
    sample = list(range(0, len(pairs), args.reference_sample))
    reference, reference_seconds = reference_scores(args.model_spec, pairs, sample)
    score, raw = table["score"].to_pylist(), table["raw_score"].to_pylist()
    diffs = [abs(score[r] - reference[r][0]) for r in sample]
    raw_diffs = [abs(raw[r] - reference[r][1]) for r in sample]
    missing_after_kill = len(pairs) - first["rows_on_disk_at_kill"]
    result = {
        "model": args.model_spec.replace(str(args.model), Path(args.model).name),
        "pairs": len(pairs), "batch_size": args.batch_size, "num_actors": args.num_actors, "run1": first,
        "run2": second, "rows_redone_after_restart": second["scored"], "missing_after_kill": missing_after_kill,
        "exactly_once": exactly_once, "ids_match": ids_match, "duplicates": len(rows) - len(set(rows)),
        "gaps": len(pairs) - len(set(rows)),
        "restart_pairs_per_s": second["pairs_per_s"],
        "reference": {"compared": len(sample), "every_kth_row": args.reference_sample,
                      "seconds": round(reference_seconds, 1),
                      "pairs_per_s": round(len(sample) / reference_seconds, 2),
                      "bitwise_equal": sum(1 for r in sample if (score[r], raw[r]) == reference[r]),
                      "mismatches_over_1e-6": sum(1 for d in diffs if d > 1e-6),
                      "max_abs_score_diff": max(diffs), "max_abs_raw_score_diff": max(raw_diffs)},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    ok = exactly_once and ids_match and second["scored"] == missing_after_kill and first["killed"]
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
