"""``swaprank serve`` as users run it: a real process, SIGTERM with a request in flight, and the real
stand-in model, whose served scores must equal ``Reranker(spec).rerank`` exactly."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from swaprank import Reranker
from swaprank.serve.settings import ServeSettings
from tests.serve_support import REPO, ServedApp, free_port, metric, start_cli, wait_ready

TOKEN = "serve-token-proc-91be0c"


def test_sigterm_finishes_the_in_flight_request_and_exits_0(tiny_spec: str) -> None:
    port = free_port()
    process = start_cli(["--model", tiny_spec, "--port", str(port), "--served-model-name", "tiny",
                         "--max-wait-ms", "2500", "--max-batch-pairs", "100000", "--drain-seconds", "0.5",
                         "--log-level", "info"], env={"SWAPRANK_SERVE_API_KEY": TOKEN})
    url = f"http://127.0.0.1:{port}"
    headers = {"authorization": f"Bearer {TOKEN}"}
    try:
        wait_ready(url, process=process)
        answer: dict[str, httpx.Response] = {}

        def request() -> None:  # waits ~2.5 s in the batcher: in flight when SIGTERM arrives
            answer["r"] = httpx.post(url + "/v1/rerank", json={"query": "q", "documents": ["a", "b"]},
                                     headers=headers, timeout=30)

        thread = threading.Thread(target=request)
        thread.start()
        deadline = time.monotonic() + 10
        while metric(httpx.get(url + "/metrics", headers=headers).text, "swaprank_serve_inflight_requests") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        ready = httpx.get(url + "/ready", timeout=5)  # during the drain: still listening, no longer ready
        assert ready.status_code == 503 and ready.json()["message"] == "shutting down"
        thread.join(timeout=30)
        assert answer["r"].status_code == 200 and len(answer["r"].json()["results"]) == 2
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, output
    assert TOKEN not in output and "Traceback" not in output


def test_a_request_outliving_the_graceful_timeout_gets_a_json_503_and_the_process_exits_0(tiny_spec: str) -> None:
    port = free_port()
    # The request waits a minute in the batcher: still running when the 1 s graceful timeout runs out.
    process = start_cli(["--model", tiny_spec, "--port", str(port), "--max-wait-ms", "60000",
                         "--max-batch-pairs", "100000", "--graceful-timeout", "1", "--request-timeout", "0"])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, process=process)
        answer: dict[str, httpx.Response] = {}

        def request() -> None:
            answer["r"] = httpx.post(url + "/v1/rerank", json={"query": "q", "documents": ["a", "b"]}, timeout=60)

        thread = threading.Thread(target=request)
        thread.start()
        deadline = time.monotonic() + 10
        while metric(httpx.get(url + "/metrics").text, "swaprank_serve_inflight_requests") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        thread.join(timeout=60)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    response = answer["r"]
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "shutting_down" and response.headers["retry-after"] == "1"
    assert process.returncode == 0, output
    assert "Traceback" not in output


def test_cli_refuses_a_bad_spec_before_binding() -> None:
    done = subprocess.run([sys.executable, "-m", "swaprank.cli", "serve", "--model", "nope:x"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "ConfigError" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.quality
def test_served_scores_equal_the_reranker_on_the_real_model(real_model: str, scifact: Path) -> None:
    import json

    with open(scifact / "corpus.jsonl", encoding="utf-8") as handle:
        docs = [json.loads(line)["text"] for _, line in zip(range(12), handle, strict=False)]
    query = "Vitamin D deficiency is associated with worse outcomes"
    spec = f"cross-encoder:{real_model}"
    expected = [(d.index, d.score) for d in Reranker(spec).rerank(query, docs)]
    with ServedApp(ServeSettings(model=spec, served_model_names=("minilm",))) as app:
        for client in (f"cohere:minilm?base_url={app.url}", f"jina:minilm?base_url={app.url}",
                       f"vllm:minilm?base_url={app.url}"):
            got = Reranker(client, api_key="unused").rerank(query, docs)
            assert [(d.index, d.score) for d in got] == expected
            assert [d.text for d in got] == [docs[i] for i, _ in expected]
