"""Throughput of ``swaprank serve`` under concurrency, with dynamic batching on and off.

16 concurrent clients each send requests of one real SciFact test query with its BM25 top-30
candidates (Cohere v2 wire format) to a ``swaprank serve`` subprocess on loopback, first with
batching on, then with ``--no-batching`` (each request scored on its own as it arrives: what a
straightforward service does), then the same requests through ``Reranker.rerank_many`` in this
process (16 queries per call: the most the batcher can coalesce), same model. Prints and writes
JSON: pairs/s, latency p50/p95/p99, failed requests, the service's own model-call counts, the on/off
ratio (the batching gain) and the service / in-process ratio (issue 23's target: >= 0.95 on CPU).

Run inside a loopback-only namespace, on a machine doing nothing else:

    unshare -n bash -c 'ip link set lo up; \
        NNCF_CI=1 DO_NOT_TRACK=1 .venv/bin/python benchmarks/bench_serve.py'
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.assets import missing_asset_hint, real_model_path, scifact_path  # noqa: E402
from tests.serve_support import metric  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def workload(data: Path, queries: int, candidates: int) -> list[dict[str, Any]]:
    """One request body per SciFact test query: its BM25 top-``candidates`` documents."""
    from swaprank.eval.first_stage import bm25
    from swaprank.eval.loader import load_beir

    dataset = load_beir(data).head(queries)
    ranking = bm25(dataset, candidates)
    return [{"model": "bench", "query": dataset.queries[q],
             "documents": [dataset.doc_text(d) for d, _ in ranking[q][:candidates]]}
            for q in dataset.query_ids if len(ranking[q]) >= candidates]


def start_server(model: str, port: int, extra: list[str]) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "swaprank.cli", "serve", "--model", model, "--port", str(port),
            "--served-model-name", "bench", "--no-access-log", "--log-level", "warning", *extra]
    env = {**os.environ, "NNCF_CI": "1", "DO_NOT_TRACK": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("SWAPRANK_SERVE_API_KEY", None)
    return subprocess.Popen(args, cwd=REPO, env=env)


def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + "/ready", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


async def load(url: str, bodies: list[dict[str, Any]], clients: int, per_client: int) -> dict[str, Any]:
    latencies: list[float] = []
    failures: list[str] = []
    pairs = 0

    async def client(number: int, http: httpx.AsyncClient) -> None:
        nonlocal pairs
        for j in range(per_client):
            body = bodies[(number * per_client + j) % len(bodies)]
            started = time.perf_counter()
            try:
                response = await http.post(url + "/v2/rerank", json=body)
                ok = response.status_code == 200 and len(response.json()["results"]) == len(body["documents"])
                if not ok:
                    failures.append(f"{response.status_code}: {response.text[:200]}")
                    continue
            except httpx.HTTPError as exc:
                failures.append(f"{type(exc).__name__}: {exc}")
                continue
            latencies.append(time.perf_counter() - started)
            pairs += len(body["documents"])

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=600, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*[client(i, http) for i in range(clients)])
        wall = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))], 1) if latencies else 0.0

    return {"requests": clients * per_client, "failed": len(failures), "failures": failures[:5],
            "pairs": pairs, "wall_s": round(wall, 2), "pairs_per_s": round(pairs / wall, 1),
            "latency_ms": {"p50": pct(50), "p95": pct(95), "p99": pct(99), "max": pct(100),
                           "mean": round(1000 * statistics.fmean(latencies), 1) if latencies else 0.0}}


def run_mode(name: str, model: str, extra: list[str], bodies: list[dict[str, Any]],
             args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_server(model, port, extra)
    try:
        wait_ready(url, process)
        # Warm-up (not measured): one round of concurrent requests, so both modes start warm.
        asyncio.run(load(url, bodies[-args.clients:], args.clients, 1))
        before = httpx.get(url + "/metrics").text
        result = asyncio.run(load(url, bodies, args.clients, args.requests_per_client))
        after = httpx.get(url + "/metrics").text
    finally:
        process.terminate()
        process.wait(timeout=120)
    name_calls = "swaprank_serve_model_calls_total"
    calls = sum(metric(after, name_calls, mode=m) - metric(before, name_calls, mode=m) for m in ("batched", "direct"))
    batch_pairs = metric(after, "swaprank_serve_batch_pairs_sum") - metric(before, "swaprank_serve_batch_pairs_sum")
    result.update({"mode": name, "server_args": extra, "model_calls": int(calls),
                   "mean_pairs_per_call": round(batch_pairs / calls, 1) if calls else 0.0,
                   "server_exit_code": process.returncode})
    print(f"{name:>10}: {result['pairs_per_s']:8.1f} pairs/s  p50 {result['latency_ms']['p50']:8.1f} ms  "
          f"p95 {result['latency_ms']['p95']:8.1f} ms  p99 {result['latency_ms']['p99']:8.1f} ms  "
          f"failed {result['failed']}  model calls {result['model_calls']} "
          f"({result['mean_pairs_per_call']} pairs/call)", flush=True)
    return result


def in_process(model: str, bodies: list[dict[str, Any]], args: argparse.Namespace,
               cache: dict[str, Any]) -> dict[str, Any]:
    """The same requests through ``Reranker.rerank_many`` in this process, ``clients`` queries per call
    (what the service's batcher can coalesce at most): the service's ceiling on this machine."""
    from swaprank import Reranker

    rr = cache.get("reranker")
    if rr is None:
        rr = cache["reranker"] = Reranker(model)
        rr.rerank_many([b["query"] for b in bodies[-args.clients:]], [b["documents"] for b in bodies[-args.clients:]])
    work = [bodies[(c * args.requests_per_client + j) % len(bodies)]
            for c in range(args.clients) for j in range(args.requests_per_client)]
    started = time.perf_counter()
    for i in range(0, len(work), args.clients):
        group = work[i:i + args.clients]
        rr.rerank_many([b["query"] for b in group], [b["documents"] for b in group])
    wall = time.perf_counter() - started
    pairs = sum(len(b["documents"]) for b in work)
    result = {"mode": "in-process", "requests": len(work), "pairs": pairs, "wall_s": round(wall, 2),
              "pairs_per_s": round(pairs / wall, 1), "failed": 0}
    print(f"{'in-process':>10}: {result['pairs_per_s']:8.1f} pairs/s (rerank_many, {args.clients} queries per call)",
          flush=True)
    return result


def _median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The run with the median throughput (its latencies come with it); failures summed over all runs."""
    chosen = dict(sorted(runs, key=lambda r: r["pairs_per_s"])[(len(runs) - 1) // 2])
    chosen["failed_all_repeats"] = sum(r["failed"] for r in runs)
    return chosen


def _cpu_flags() -> str:
    """The SIMD flags that decide CPU inference speed (AVX-512/VNNI/BF16 or AVX2 alone)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
    return " ".join(f for f in wanted if f in flags) or "none of avx2/avx512"


def resolve_model(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str:
    """``--model``, else the shared stand-in on the fast path; a missing model or dataset is a usage error."""
    model_path = real_model_path()
    if args.model is None and model_path is None:
        parser.error(missing_asset_hint("model"))
    if args.data is None:
        parser.error(missing_asset_hint("data"))
    return str(args.model or f"cross-encoder:{model_path}?precision=bf16")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="config string (default: the stand-in on README's fast CPU path, ?precision=bf16)")
    parser.add_argument("--data", type=Path, default=scifact_path())
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2,
                        help="alternate on/off this many times and report the median of each (the machine is shared)")
    parser.add_argument("--candidates", type=int, default=30)
    parser.add_argument("--max-batch-pairs", type=int, default=512)
    parser.add_argument("--max-wait-ms", type=float, default=10.0)
    parser.add_argument("--label", default="", help="a name for this run in the JSON")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_serve.json")
    args = parser.parse_args()
    model = resolve_model(parser, args)
    bodies = workload(args.data, args.clients * args.requests_per_client + args.clients, args.candidates)
    print(f"model {model}; {args.clients} clients x {args.requests_per_client} requests x {args.candidates} "
          f"candidates ({len(bodies)} distinct SciFact test queries)", flush=True)
    ons: list[dict[str, Any]] = []
    offs: list[dict[str, Any]] = []
    inprocs: list[dict[str, Any]] = []
    cache: dict[str, Any] = {}
    for _ in range(args.repeats):  # alternated, so load from other processes hits every mode alike
        ons.append(run_mode("batching", model, ["--max-batch-pairs", str(args.max_batch_pairs),
                                                "--max-wait-ms", str(args.max_wait_ms)], bodies, args))
        offs.append(run_mode("no-batching", model, ["--no-batching"], bodies, args))
        inprocs.append(in_process(model, bodies, args, cache))
    cache.pop("reranker").close()
    on = _median_run(ons)
    off = _median_run(offs)
    inproc = _median_run(inprocs)
    ratios = [round(a["pairs_per_s"] / b["pairs_per_s"], 2) for a, b in zip(ons, offs, strict=True)]
    served_ratios = [round(a["pairs_per_s"] / b["pairs_per_s"], 3) for a, b in zip(ons, inprocs, strict=True)]
    print(f"per-repeat ratios on/off: {ratios}; served/in-process: {served_ratios}")
    ratio = round(on["pairs_per_s"] / off["pairs_per_s"], 2) if off["pairs_per_s"] else None
    served = round(on["pairs_per_s"] / inproc["pairs_per_s"], 3) if inproc["pairs_per_s"] else None
    print(f"throughput ratio batching on/off: {ratio}x (the batching gain, measured)")
    print(f"service / in-process rerank_many: {served}x (target >= 0.95x, zero failures)")
    cpu_flags = _cpu_flags()
    print(f"cpu: {cpu_flags}")
    report = {"label": args.label, "model": model, "clients": args.clients,
              "requests_per_client": args.requests_per_client, "candidates": args.candidates,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "cpu_flags": cpu_flags},
              "batching": on, "no_batching": off, "in_process": inproc, "ratio_on_off": ratio,
              "ratios_per_repeat": ratios, "served_over_in_process": served,
              "served_over_in_process_per_repeat": served_ratios,
              "repeats": {"batching": ons, "no_batching": offs, "in_process": inprocs},
              "target_met": bool(served and served >= 0.95 and on["failed_all_repeats"] == 0)}
    runs: list[Any] = []
    if args.out.is_file():
        previous = json.loads(args.out.read_text())
        runs = previous.get("runs", []) if isinstance(previous, dict) else []
    runs = [r for r in runs if r.get("label") != args.label or r.get("model") != model] + [report]
    args.out.write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
