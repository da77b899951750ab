"""``swaprank serve`` under the attacks of issue 23, with well-behaved clients running throughout.

A ``swaprank serve`` subprocess (the real stand-in model, default settings) is warmed up; then two
well-behaved clients loop on a fixed request (a SciFact claim and 20 abstracts) whose ranking was
recorded before any attack, a probe polls ``/health`` every 100 ms and a sampler reads the server's
RSS. Each attack runs in turn; for its window the script records the good clients' requests (failed
or ranked differently), ``/health``'s slowest answer, the peak RSS over the warm level, what the
attack itself got back, and whether the process is still alive. Targets: no good request fails or
changes, ``/health`` within 1 s, RSS within 500 MB of warm, the process never dies. A last run sends
SIGTERM under load with ``--graceful-timeout 2`` and measures the time to exit.

    unshare -n bash -c 'ip link set lo up; HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/bench_serve_attacks.py'
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.bench_serve import _cpu_flags, free_port, wait_ready  # noqa: E402
from tests.assets import missing_asset_hint, real_model_path, scifact_path  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class Watch:
    """Good clients, the /health probe and the RSS sampler, summarised per attack window."""

    def __init__(self, url: str, pid: int, body: dict[str, Any], expected: list[int]) -> None:
        self.url, self.pid, self.body, self.expected = url, pid, body, expected
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.reset()
        self.threads = [threading.Thread(target=self._good, daemon=True) for _ in range(2)]
        self.threads += [threading.Thread(target=self._health, daemon=True),
                         threading.Thread(target=self._rss, daemon=True)]
        for thread in self.threads:
            thread.start()

    def reset(self) -> None:
        with self.lock:
            self.good_ok = self.good_bad = 0
            self.bad_samples: list[str] = []
            self.health_max = 0.0
            self.health_failed = 0
            self.rss_max = 0.0

    def summary(self) -> dict[str, Any]:
        with self.lock:
            return {"good_ok": self.good_ok, "good_failed_or_changed": self.good_bad,
                    "good_failures": self.bad_samples[:3], "health_max_s": round(self.health_max, 3),
                    "health_failed": self.health_failed, "rss_peak_mb": round(self.rss_max, 1)}

    def _good(self) -> None:
        with httpx.Client(timeout=120) as client:
            while not self.stop.is_set():
                try:
                    response = client.post(self.url + "/v1/rerank", json=self.body)
                    ok = response.status_code == 200 and \
                        [r["index"] for r in response.json()["results"]] == self.expected
                    note = "" if ok else f"{response.status_code}: {response.text[:120]}"
                except httpx.HTTPError as exc:
                    ok, note = False, f"{type(exc).__name__}"
                with self.lock:
                    if ok:
                        self.good_ok += 1
                    else:
                        self.good_bad += 1
                        self.bad_samples.append(note)

    def _health(self) -> None:
        while not self.stop.is_set():
            started = time.perf_counter()
            try:
                ok = httpx.get(self.url + "/health", timeout=10).status_code == 200
            except httpx.HTTPError:
                ok = False
            took = time.perf_counter() - started
            with self.lock:
                self.health_max = max(self.health_max, took)
                self.health_failed += not ok
            self.stop.wait(0.1)

    def _rss(self) -> None:
        while not self.stop.is_set():
            try:
                value = rss_mb(self.pid)
            except OSError:
                return
            with self.lock:
                self.rss_max = max(self.rss_max, value)
            self.stop.wait(0.05)


def post(url: str, body: bytes | dict[str, Any], timeout: float = 300) -> tuple[int, str, float]:
    started = time.perf_counter()
    try:
        if isinstance(body, dict):
            response = httpx.post(url + "/v1/rerank", json=body, timeout=timeout)
        else:
            response = httpx.post(url + "/v1/rerank", content=body, timeout=timeout,
                                  headers={"content-type": "application/json"})
        kind = response.json().get("type", "ok") if response.headers.get("content-type", "").startswith(
            "application/json") else response.text[:60]
        return response.status_code, str(kind), round(time.perf_counter() - started, 2)
    except httpx.HTTPError as exc:
        return 0, type(exc).__name__, round(time.perf_counter() - started, 2)


# ---------------------------------------------------------------------- the attacks


def surrogates(url: str) -> dict[str, Any]:
    bad = b'{"query": "aspirin", "documents": ["ok", "\\ud800 x"]}'
    good = {"query": "aspirin", "documents": ["aspirin thins the blood", "the sky is blue"]}
    answers: list[tuple[int, str, float]] = []
    for _ in range(5):
        threads = [threading.Thread(target=lambda b=b: answers.append(post(url, b)))
                   for b in [bad, *[good] * 7]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    statuses = sorted(a[0] for a in answers)
    return {"answers": {str(s): statuses.count(s) for s in set(statuses)}}


def long_query(url: str) -> dict[str, Any]:
    status, kind, took = post(url, {"query": "aspirin " * 125_000, "documents": [f"doc {i}" for i in range(8)]})
    return {"status": status, "type": kind, "seconds": took}


def many_small_documents(url: str) -> dict[str, Any]:
    docs = [f"w{i}" for i in range(1000)]
    status, kind, took = post(url, {"query": "q " * 500_000, "documents": docs})  # a 4 MB body: 1 MB query
    return {"status": status, "type": kind, "seconds": took}


def heavy_then_small(url: str, docs: int) -> dict[str, Any]:
    text = " ".join(f"protein{i} binds the receptor" for i in range(300))[:8000]
    heavy = {"query": "does the protein bind", "documents": [f"{i} {text}" for i in range(docs)]}
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(heavy=post(url, heavy)))
    thread.start()
    time.sleep(2)  # the attack's own schedule (issue 23: the small request comes 2 s later)
    out["small"] = post(url, {"query": "aspirin", "documents": ["aspirin thins the blood", "the sky"]})
    thread.join()
    return out


def hang_up(url: str) -> dict[str, Any]:
    text = " ".join(f"protein{i} binds the receptor" for i in range(300))[:8000]
    heavy = {"query": "does the protein bind", "documents": [f"{i} {text}" for i in range(10)]}
    with contextlib.suppress(httpx.TimeoutException):  # the client hangs up after 1 s
        httpx.post(url + "/v1/rerank", json=heavy, timeout=1.0)
    started = time.perf_counter()
    small = post(url, {"query": "aspirin", "documents": ["aspirin thins the blood", "the sky"]})
    return {"small_after_hang_up": small, "seconds": round(time.perf_counter() - started, 2)}


def slow_connections(url: str, port: int, count: int) -> dict[str, Any]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, count + 256)), hard))
    socks: list[socket.socket] = []
    refused = 0
    for _ in range(count):
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"POST /v1/rerank HTTP/1.1\r\nHo")
            socks.append(sock)
        except OSError:
            refused += 1
    time.sleep(12)  # past the 10 s header deadline: the server must have closed them
    closed = 0
    for sock in socks:
        sock.settimeout(0.01)
        try:
            sock.recv(1024)  # an answer, or b"" for a closed connection: the server let go of it
            closed += 1
        except (TimeoutError, OSError):
            pass  # still held open by the server
        sock.close()
    return {"opened": len(socks), "refused_at_connect": refused, "answered_and_closed_by_server": closed}


def nested_arrays(url: str) -> dict[str, Any]:
    body = b"[" + b"[]," * (8 * 1024 * 1024 // 3 - 10) + b"[]]"
    status, kind, took = post(url, body)
    return {"status": status, "type": kind, "seconds": took}


def deep_and_huge_numbers(url: str) -> dict[str, Any]:
    deep = post(url, b"[" * 100_000 + b"]" * 100_000)
    digits = post(url, b'{"query": "q", "documents": ["a"], "top_n": ' + b"9" * 5000 + b"}")
    return {"deep": deep, "digits": digits}


def sigterm_under_load(model: str, body: dict[str, Any]) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "swaprank.cli", "serve", "--model", model, "--port", str(port),
                                "--graceful-timeout", "2", "--no-access-log", "--log-level", "warning"], cwd=REPO,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    wait_ready(url, process)
    text = " ".join(f"protein{i} binds the receptor" for i in range(300))[:8000]
    heavy = {"query": "does the protein bind", "documents": [f"{i} {text}" for i in range(10)]}
    answers: list[tuple[int, str, float]] = []
    threads = [threading.Thread(target=lambda b=b: answers.append(post(url, b))) for b in [heavy, body, body]]
    for thread in threads:
        thread.start()
    time.sleep(1)
    sent = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    code = process.wait(timeout=300)
    exited = time.perf_counter() - sent
    for thread in threads:
        thread.join()
    return {"graceful_timeout_s": 2, "exit_code": code, "seconds_to_exit": round(exited, 2), "answers": answers}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="config string (default: the shared stand-in, torch fp32)")
    parser.add_argument("--connections", type=int, default=1100)
    parser.add_argument("--only", default="", help="run only the attacks whose name contains this text "
                        "(and skip the SIGTERM run unless it contains 'SIGTERM')")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_serve_attacks.json")
    args = parser.parse_args()
    path = real_model_path()
    if args.model is None and path is None:
        parser.error(missing_asset_hint("model"))
    model = args.model or f"cross-encoder:{path}"
    data = scifact_path()
    if data is None:
        parser.error(missing_asset_hint("data"))
    corpus = [json.loads(line) for line in (data / "corpus.jsonl").open() if line.strip()][:20]
    body = {"query": "Aspirin inhibits the production of PGE2.", "documents": [d["text"] for d in corpus],
            "return_documents": False}

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen([sys.executable, "-m", "swaprank.cli", "serve", "--model", model, "--port", str(port),
                                "--no-access-log", "--log-level", "warning"], cwd=REPO,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    report: dict[str, Any] = {"model": model, "cpu_flags": _cpu_flags(), "attacks": {}}
    try:
        wait_ready(url, process)
        expected = [r["index"] for r in httpx.post(url + "/v1/rerank", json=body, timeout=120).json()["results"]]
        # Warm: the level after normal concurrent traffic (8 good requests at once, three times).
        for _ in range(3):
            warmers = [threading.Thread(target=post, args=(url, body)) for _ in range(8)]
            for thread in warmers:
                thread.start()
            for thread in warmers:
                thread.join()
        warm = rss_mb(process.pid)
        report["warm_rss_mb"] = round(warm, 1)
        print(f"model {model}; cpu {report['cpu_flags']}; warm RSS {warm:.0f} MB", flush=True)
        watch = Watch(url, process.pid, body, expected)
        attacks: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("lone surrogate batched with 7 good requests (x5)", lambda: surrogates(url)),
            ("1 MB query, 8 documents", lambda: long_query(url)),
            ("4 MB body: 1 MB query, 1,000 one-word documents", lambda: many_small_documents(url)),
            ("40 documents x 8,000 chars, a small request 2 s later", lambda: heavy_then_small(url, 40)),
            ("10 documents x 8,000 chars (within budget), a small request 2 s later",
             lambda: heavy_then_small(url, 10)),
            ("client hangs up 1 s into a large request", lambda: hang_up(url)),
            (f"{args.connections} connections trickling headers", lambda: slow_connections(url, port,
                                                                                            args.connections)),
            ("8 MiB of nested empty arrays", lambda: nested_arrays(url)),
            ("100,000-deep JSON and a 5,000-digit integer", lambda: deep_and_huge_numbers(url)),
        ]
        for name, attack in attacks:
            if args.only and args.only not in name:
                continue
            watch.reset()
            outcome = attack()
            time.sleep(0.5)  # one more health probe and good request inside the window
            row = {"attack": outcome, **watch.summary(), "alive": process.poll() is None}
            row["rss_over_warm_mb"] = round(row["rss_peak_mb"] - warm, 1)
            row["targets_met"] = (row["good_failed_or_changed"] == 0 and row["health_max_s"] <= 1.0
                                  and row["health_failed"] == 0 and row["rss_over_warm_mb"] <= 500 and row["alive"])
            report["attacks"][name] = row
            print(f"{name}: good {row['good_ok']} ok / {row['good_failed_or_changed']} bad, health max "
                  f"{row['health_max_s']} s, RSS +{row['rss_over_warm_mb']} MB, alive {row['alive']}; "
                  f"attack got {outcome}; targets met: {row['targets_met']}", flush=True)
        watch.stop.set()
    finally:
        process.terminate()
        process.wait(timeout=120)
    if not args.only or "SIGTERM" in args.only:
        report["sigterm_under_load"] = sigterm_under_load(model, body)
        print(f"SIGTERM under load: {report['sigterm_under_load']}", flush=True)
    report["all_targets_met"] = all(r["targets_met"] for r in report["attacks"].values())
    print(f"all targets met: {report['all_targets_met']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
