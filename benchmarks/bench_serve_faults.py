"""Faults against ``swaprank serve``: each gets its typed 4xx or is dropped cleanly, the service keeps
serving, and its memory returns to its post-warm-up baseline.

Faults, each repeated ``--rounds`` times against one ``swaprank serve`` subprocess: a client that
disconnects mid-request (sends a 30-candidate request and hangs up before the answer), a request
with 10,000 short documents (413 ``too_many_documents``), 10,000 SciFact documents (413
``body_too_large``: over 8 MiB), malformed JSON (400 ``invalid_json``), wrong types (422
``invalid_request`` naming the field). After every fault a normal request must get 200. RSS comes
from /proc/PID/status (VmRSS) after warm-up and after the run; the tolerance is stated in the output.

    unshare -n bash -c 'ip link set lo up; NNCF_CI=1 DO_NOT_TRACK=1 \
        .venv/bin/python benchmarks/bench_serve_faults.py'
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from benchmarks.bench_serve import free_port, resolve_model, start_server, wait_ready, workload  # noqa: E402
from tests.assets import scifact_path  # noqa: E402
from tests.serve_support import metric  # noqa: E402

RSS_TOLERANCE_MB = 50.0  # allocator high-water marks and caches may keep a little; a leak grows per round


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def disconnect_mid_request(port: int, body: dict[str, Any], after: float) -> None:
    payload = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /v2/rerank HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\n"
                     b"content-length: " + str(len(payload)).encode() + b"\r\n\r\n" + payload)
        time.sleep(after)  # hang up while the request is queued or being scored


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="config string (default: the stand-in, ?precision=bf16)")
    parser.add_argument("--data", type=Path, default=scifact_path())
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_serve_faults.json")
    args = parser.parse_args()
    model = resolve_model(parser, args)
    bodies = workload(args.data, 8, 30)
    from swaprank.eval.loader import load_beir

    corpus = load_beir(args.data)
    ids = list(corpus.corpus)  # SciFact has 5,183 documents: cycled to 10,000 (about 15 MB of JSON)
    scifact_10k = [corpus.doc_text(ids[i % len(ids)]) for i in range(10_000)]
    faults: dict[str, tuple[Any, int | None, str | None]] = {
        # name: (what to send, expected status or None when dropped, expected type)
        "disconnect_mid_request": (None, None, None),
        "10k_short_documents": ({"query": "q", "documents": [f"document {i}" for i in range(10_000)]},
                                413, "too_many_documents"),
        "10k_scifact_documents": ({"query": "q", "documents": scifact_10k}, 413, "body_too_large"),
        "malformed_json": (b'{"query": "q", "documents": ["a", ', 400, "invalid_json"),
        "wrong_types": ({"query": "q", "documents": ["a", 7], "top_n": "3"}, 422, "invalid_request"),
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_server(model, port, [])
    outcomes: dict[str, dict[str, Any]] = {name: {"expected": exp, "got": [], "normal_after": []}
                                           for name, (_, exp, _) in faults.items()}
    try:
        wait_ready(url, process)
        with httpx.Client(timeout=300) as http:
            for body in bodies:  # warm-up: the baseline is a service that has served real traffic
                http.post(url + "/v2/rerank", json=body).raise_for_status()
            baseline = rss_mb(process.pid)
            per_round: list[float] = []
            print(f"RSS after warm-up: {baseline:.1f} MB", flush=True)
            for round_ in range(args.rounds):
                for name, (payload, status, type_) in faults.items():
                    if payload is None:
                        disconnect_mid_request(port, bodies[round_ % len(bodies)], after=0.2)
                        outcomes[name]["got"].append("dropped")
                    else:
                        response = (http.post(url + "/v2/rerank", content=payload,
                                              headers={"content-type": "application/json"})
                                    if isinstance(payload, bytes) else http.post(url + "/v2/rerank", json=payload))
                        kind = response.json().get("type")
                        outcomes[name]["got"].append(f"{response.status_code} {kind}")
                        if response.status_code != status or kind != type_:
                            print(f"UNEXPECTED {name}: {response.status_code} {response.text[:200]}")
                    normal = http.post(url + "/v2/rerank", json=bodies[(round_ + 1) % len(bodies)])
                    outcomes[name]["normal_after"].append(normal.status_code)
                per_round.append(round(rss_mb(process.pid), 1))
                print(f"round {round_ + 1}/{args.rounds}: RSS {per_round[-1]:.1f} MB", flush=True)
            time.sleep(1.0)
            for body in bodies:  # the same traffic as the warm-up, so both measurements see the same caches
                http.post(url + "/v2/rerank", json=body).raise_for_status()
            final = rss_mb(process.pid)
            text = http.get(url + "/metrics").text
    finally:
        process.terminate()
        process.wait(timeout=120)
    report_faults = {}
    ok = True
    for name, (_, status, type_) in faults.items():
        got = outcomes[name]["got"]
        expected = "dropped" if status is None else f"{status} {type_}"
        passed = all(g == expected for g in got) and all(s == 200 for s in outcomes[name]["normal_after"])
        ok &= passed
        report_faults[name] = {"expected": expected, "got": sorted(set(got)), "rounds": len(got),
                               "normal_request_after": sorted(set(outcomes[name]["normal_after"])), "passed": passed}
        print(f"{name:>24}: expected {expected:<26} got {sorted(set(got))}  normal request after: "
              f"{sorted(set(outcomes[name]['normal_after']))}  {'OK' if passed else 'FAIL'}")
    growth = final - baseline
    memory_ok = growth <= RSS_TOLERANCE_MB
    dropped = {r: metric(text, "swaprank_serve_dropped_total", reason=r)
               for r in ("client_disconnected", "removed_from_batch")}
    print(f"RSS after each round: {per_round}")
    print(f"RSS: baseline {baseline:.1f} MB, final {final:.1f} MB, growth {growth:+.1f} MB "
          f"(tolerance {RSS_TOLERANCE_MB:.0f} MB): {'OK' if memory_ok else 'FAIL'}")
    print(f"service counters: dropped {dropped}; server exit code {process.returncode}")
    report = {"model": model, "rounds": args.rounds, "faults": report_faults,
              "rss_mb": {"baseline": round(baseline, 1), "final": round(final, 1), "growth": round(growth, 1),
                         "tolerance": RSS_TOLERANCE_MB, "ok": memory_ok, "after_each_round": per_round,
                         "growth_after_first_round": round(final - per_round[0], 1) if per_round else None},
              "dropped": dropped, "server_exit_code": process.returncode, "all_ok": bool(ok and memory_ok)}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if report["all_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
