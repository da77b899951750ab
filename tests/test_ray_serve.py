"""``swaprank serve --replicas 2``: the same app on Ray Serve answers what the single-process app answers.

A real ``swaprank serve`` process starts its own embedded Ray (which must keep to 127.0.0.1; this
test runs inside a loopback-only network namespace like every Ray test), two replicas of the tiny
model, and Ray Serve's proxy on a free loopback port. Both wire formats are compared with the
single-process app on the same model; the bearer token reaches the replicas through the environment;
SIGTERM stops everything with exit code 0.
"""

from __future__ import annotations

import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from swaprank import Reranker
from swaprank.serve.settings import ServeSettings
from tests.serve_support import ServedApp, free_port, start_cli, wait_ready

pytest.importorskip("ray.serve", reason="Ray Serve tests need the ray extra: pip install 'swaprank[ray]'")

TOKEN = "ray-serve-token-5d1e7a"
QUERY = "does vitamin d reduce fractures in older adults"
DOCS = ["Vitamin D supplementation and fracture risk in older adults.", "Sourdough bread needs a long rise.",
        "Calcium and vitamin D for bone density.", "A cohort of older adults with hip fractures.",
        "Sourdough bread needs a long rise."]


def results(body: dict[str, Any]) -> list[tuple[int, float]]:
    return [(r["index"], r["relevance_score"]) for r in body["results"]]


def test_two_replicas_answer_like_the_single_process_app(tiny_spec: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = f"{tiny_spec}?runtime=onnx"  # replicas load the exported artifact without importing torch: fast start
    Reranker(spec).warmup()  # export once, into the test cache the subprocess inherits
    monkeypatch.setenv("SWAPRANK_SERVE_API_KEY", TOKEN)
    headers = {"authorization": f"Bearer {TOKEN}"}
    bodies = {"/v2/rerank": {"query": QUERY, "documents": DOCS, "top_n": 3},
              "/v1/rerank": {"query": QUERY, "documents": DOCS, "return_documents": True}}
    with ServedApp(ServeSettings(model=spec)) as single:
        expected = {path: httpx.post(single.url + path, json=body, headers=headers).json()
                    for path, body in bodies.items()}

    port = free_port()
    process = start_cli(["--model", spec, "--replicas", "2", "--port", str(port)])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, headers=headers, process=process, timeout=180)
        served = {path: httpx.post(url + path, json=body, headers=headers, timeout=60) for path, body in bodies.items()}
        for path, response in served.items():
            assert response.status_code == 200, response.text
            assert results(response.json()) == results(expected[path])  # same order, same scores
        assert len(served["/v2/rerank"].json()["results"]) == 3  # top_n
        assert [r["document"]["text"] for r in served["/v1/rerank"].json()["results"]] == \
            [r["document"]["text"] for r in expected["/v1/rerank"]["results"]]

        with ThreadPoolExecutor(8) as pool:  # concurrent requests spread over both replicas
            answers = list(pool.map(lambda _: httpx.post(url + "/v2/rerank", json=bodies["/v2/rerank"],
                                                         headers=headers, timeout=60), range(16)))
        assert [a.status_code for a in answers] == [200] * 16
        want = results(expected["/v2/rerank"])
        for answer in answers:  # coalesced with other requests, padded differently: float32 rounding at most
            got = results(answer.json())
            assert [i for i, _ in got] == [i for i, _ in want]
            assert [s for _, s in got] == pytest.approx([s for _, s in want], abs=1e-6)

        refused = httpx.post(url + "/v2/rerank", json=bodies["/v2/rerank"], timeout=60)  # no token
        assert refused.status_code == 401
        assert refused.json()["type"] == "unauthorized"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
    assert process.returncode == 0, output
    assert "2 replica(s)" in output
    assert "stopping" in output
    assert TOKEN not in output
