"""Splitting a long candidate list across concurrent API requests: what it costs in wall time.

For each vendor, a fake server on 127.0.0.1 (driven through the real SDK or httpx over real
HTTP; the server runs in a child process, like a remote API) answers every request after an
injected latency (default 100 ms) and rejects more than 100 documents per request, like a vendor
limit. We rerank 1000 candidates
through ``swaprank.Reranker`` with ``max_docs_per_request=100`` and compare the wall time with

  - one request's latency (a single 100-document call): the target is under 1.5x, i.e. the ten
    parts overlap instead of queueing;
  - sending the ten parts one after another (``max_concurrency=1``): the naive loop.

Both the sync path (SDK sync client on a thread pool) and the async path (native async client,
semaphore, all runs in one event loop as in an async server) are measured; each number is the
median of ``--repeats`` runs after one warm-up.

    .venv/bin/python benchmarks/bench_api_split.py [--vendor all|<one backend of tests/fakes FAKES>] [--repeats 5]

Prints a table and writes benchmarks/results/bench_api_split.json (gitignored).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the fakes live in tests/fakes
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from tests.fakes import FAKES, spec_for  # noqa: E402

from swaprank import Reranker  # noqa: E402

KEY = "bench-key"
# bedrock: boto3 signs with the AWS credential chain; give it the fake's credentials, and keep it
# away from ~/.aws and the EC2 metadata service.
os.environ.update({"AWS_ACCESS_KEY_ID": "AKIASWAPRANKFAKE0001", "AWS_SECRET_ACCESS_KEY": KEY,
                   "AWS_CONFIG_FILE": "/nonexistent/swaprank-bench/aws", "AWS_EC2_METADATA_DISABLED": "true",
                   "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/swaprank-bench/aws"})
TARGET = 1.5


class RemoteFake:
    """The fake vendor in a child process, so its CPU work does not compete with the client's for
    the GIL: the client sees what it would see from a remote API, latency included."""

    def __init__(self, vendor: str, latency: float, max_docs: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, vendor, latency, max_docs), daemon=True)
        self._process.start()
        self.url: str = self._conn.recv()

    def stats(self) -> tuple[int, int]:
        """(requests received so far, most requests ever in flight at once)."""
        self._conn.send("stats")
        requests, inflight = self._conn.recv()
        return int(requests), int(inflight)

    def close(self) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)


def _serve(conn: Any, vendor: str, latency: float, max_docs: int) -> None:
    sys.path.insert(0, str(REPO))
    from tests.fakes import FAKES

    with FAKES[vendor](api_key=None if vendor == "tei" else KEY, latency=latency, max_docs=max_docs) as server:
        conn.send(server.url)
        while (command := conn.recv()) != "stop":
            if command == "stats":
                conn.send((len(server.requests), server.max_inflight))


def timed(call: Callable[[], Any], repeats: int) -> float:
    call()  # warm-up: SDK import, clients and connections are not what we measure
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def atimed(call: Callable[[], Awaitable[Any]], repeats: int) -> float:
    await call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(vendor: str, url: str, docs: list[str], per_request: int, concurrency: int | None,
            repeats: int) -> dict[str, float]:
    """Median wall time of one rerank call, sync and async (all async runs share one event loop)."""
    options: dict[str, Any] = {"max_docs_per_request": per_request}
    if concurrency is not None:
        options["max_concurrency"] = concurrency
    reranker = Reranker(spec_for(vendor, url, **options), api_key=KEY)
    query = "which documents mention reranking latency"

    def sync_call() -> None:
        assert len(reranker.rerank(query, docs)) == len(docs)

    async def async_call() -> None:
        assert len(await reranker.arerank(query, docs)) == len(docs)

    return {"sync_s": timed(sync_call, repeats), "async_s": asyncio.run(atimed(async_call, repeats))}


def bench_vendor(vendor: str, args: argparse.Namespace) -> dict[str, Any]:
    docs = [f"candidate {i}: reranking latency notes, part {i % 37}" for i in range(args.candidates)]
    server = RemoteFake(vendor, args.latency, args.per_request)
    try:
        single = measure(vendor, server.url, docs[: args.per_request], args.per_request, None, args.repeats)
        before, _ = server.stats()
        split = measure(vendor, server.url, docs, args.per_request, args.concurrency, args.repeats)
        after, max_inflight = server.stats()
        sequential = measure(vendor, server.url, docs, args.per_request, 1, args.repeats)
    finally:
        server.close()
    rows = []
    for mode in ("sync", "async"):
        one, concurrent, serial = single[f"{mode}_s"], split[f"{mode}_s"], sequential[f"{mode}_s"]
        rows.append({
            "mode": mode,
            "one_request_s": round(one, 4),
            "split_concurrent_s": round(concurrent, 4),
            "split_sequential_s": round(serial, 4),
            "concurrent_vs_one_request": round(concurrent / one, 3),
            "sequential_vs_concurrent": round(serial / concurrent, 2),
            "target_met": concurrent / one < TARGET,
        })
    return {"vendor": vendor, "requests_per_call": (after - before) / (2 * (args.repeats + 1)),
            "max_inflight": max_inflight, "results": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vendor", choices=[*sorted(FAKES), "all"], default="all")
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--per-request", type=int, default=100)
    parser.add_argument("--latency", type=float, default=0.1, help="seconds the server waits per request")
    parser.add_argument("--concurrency", type=int, default=None, help="max_concurrency (default: the backend's)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_api_split.json")
    args = parser.parse_args()

    vendors = list(FAKES) if args.vendor == "all" else [args.vendor]
    parts = -(-args.candidates // args.per_request)
    print(f"{args.candidates} candidates, {args.per_request} per request -> {parts} requests; "
          f"{args.latency * 1000:.0f} ms injected latency per request; fake server in a child process; "
          f"median of {args.repeats}")
    print(f"{'backend':<8} {'mode':<6} {'1 request':>10} {'split, concurrent':>18} {'split, one by one':>18} "
          f"{'concurrent/1 req':>17} {'one-by-one/concurrent':>22}")
    reports = []
    for vendor in vendors:
        report = bench_vendor(vendor, args)
        reports.append(report)
        for row in report["results"]:
            print(f"{vendor:<8} {row['mode']:<6} {row['one_request_s']:>9.3f}s {row['split_concurrent_s']:>17.3f}s "
                  f"{row['split_sequential_s']:>17.3f}s {row['concurrent_vs_one_request']:>16.2f}x "
                  f"{row['sequential_vs_concurrent']:>21.1f}x")
    misses = [f"{r['vendor']}/{row['mode']}" for r in reports for row in r["results"] if not row["target_met"]]
    print(f"target: split call under {TARGET}x one request's latency -> "
          f"{'met everywhere' if not misses else 'missed by ' + ', '.join(misses)}; "
          f"requests in flight at once (server side): {', '.join(str(r['max_inflight']) for r in reports)}")

    summary = {
        "benchmark": "bench_api_split",
        "candidates": args.candidates,
        "per_request": args.per_request,
        "latency_s": args.latency,
        "max_concurrency": args.concurrency or "backend default",
        "repeats": args.repeats,
        "target_ratio": TARGET,
        "target_missed_by": misses,
        "vendors": reports,
        "python": platform.python_version(),
        "machine": platform.platform(),
        "cpus": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.out.relative_to(REPO) if args.out.is_relative_to(REPO) else args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
