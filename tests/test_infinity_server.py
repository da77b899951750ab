"""A real Infinity server (``infinity_emb v2``) serving the shared cross-encoder, driven by swaprank.

Infinity lives in its own venv (``make infinity`` -> ``.venv-infinity``: it pins
sentence-transformers<4, which the main venv's 6.x cannot share). Two servers start once for the
module on free loopback ports, with every telemetry switch off: one plain (``POST /rerank``, what the
``infinity:`` backend and a ``jina:`` spec pointed at it talk to) and one started with
``--url-prefix /v2 --api-key ...`` (Infinity serves no Cohere route by default; with that prefix its
``/v2/rerank`` is where Cohere's SDK posts, so a ``cohere:`` spec can use it; the key checks auth).

What is asserted is what users rely on: the ranking equals swaprank's own local
``cross-encoder:<same model>`` backend (order; scores within float noise, as Infinity applies the
same sigmoid to the same logits), and the usage Infinity reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from swaprank import AuthenticationError, Reranker, RerankResult, Usage
from swaprank.backends.registry import default_registry
from tests.assets import REPO, real_model_path

pytestmark = pytest.mark.infinity

INFINITY = Path(os.environ.get("SWAPRANK_INFINITY_VENV", REPO / ".venv-infinity")) / "bin" / "infinity_emb"
KEY = "sk-infinity-TEST-4d1c"
START_TIMEOUT = 180.0  # seconds; ~6 s on an idle 2-core machine, more on a loaded CI one
# Infinity phones home (PostHog) unless told not to: both documented switches, plus the Hub's.
TELEMETRY_OFF = {"DO_NOT_TRACK": "1", "INFINITY_ANONYMOUS_USAGE_STATS": "0", "HF_HUB_DISABLE_TELEMETRY": "1",
                 "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

QUERY = "does vitamin d supplementation reduce the risk of bone fractures in older adults"
DOCS = [
    "Vitamin D supplementation alone did not reduce hip or total fractures in community-dwelling older adults.",
    "The stock market closed higher on Friday after strong quarterly earnings reports.",
    "Calcium and vitamin D together reduced hip fracture risk in elderly women living in care homes.",
    "Bone mineral density declines with age, increasing the risk of fractures in older people.",
    "A new species of frog was discovered in the rainforests of Madagascar.",
    "High-dose annual vitamin D increased the rate of falls and fractures in older women.",
    "Exercise programs improve balance and reduce falls among elderly participants.",
    "The recipe calls for two cups of flour, one egg and a pinch of salt.",
]


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="module")
def model_dir(request: pytest.FixtureRequest) -> str:
    """The shared cross-encoder and the Infinity venv; skips LOUDLY when either is absent."""
    from tests.conftest import _SKIPPED_QUALITY, SKIPPED_SERVERS

    path = real_model_path()
    if path is None:
        _SKIPPED_QUALITY.append(request.node.nodeid)
        pytest.skip("INFINITY TEST SKIPPED: real cross-encoder not found (set SWAPRANK_TEST_MODEL or provide "
                    "../shared)")
    if not INFINITY.is_file():
        SKIPPED_SERVERS.append(request.node.nodeid)
        pytest.skip(f"INFINITY TEST SKIPPED: {INFINITY} not found: run `make infinity`")
    assert path is not None
    return str(Path(path).resolve())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(model: str, home: Path, name: str, *extra: str) -> Server:
    port = free_port()
    log = home / f"{name}.log"
    env = {**os.environ, **TELEMETRY_OFF, "INFINITY_HOME": str(home)}  # its .infinity_cache, not the cwd
    process = subprocess.Popen(
        [str(INFINITY), "v2", "--model-id", model, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu",
         "--no-model-warmup", *extra],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=home,
    )
    return Server(f"http://127.0.0.1:{port}", process, log)


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"infinity exited with {server.process.returncode}:\n{server.log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(server.url + "/health", timeout=1.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"infinity not ready after {START_TIMEOUT:.0f}s:\n{server.log.read_text()[-3000:]}")


def stop(server: Server) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait(timeout=15)


@pytest.fixture(scope="module")
def servers(model_dir: str) -> Iterator[tuple[Server, Server]]:
    """(plain server, server with --url-prefix /v2 and --api-key), started concurrently."""
    with tempfile.TemporaryDirectory(prefix="swaprank-infinity-") as tmp:
        home = Path(tmp)
        plain = start(model_dir, home, "plain")
        keyed = start(model_dir, home, "keyed", "--url-prefix", "/v2", "--api-key", KEY)
        try:
            wait_ready(plain)
            wait_ready(keyed)
            yield plain, keyed
        finally:
            stop(plain)
            stop(keyed)


def test_telemetry_is_off(servers: tuple[Server, Server]) -> None:
    for server in servers:
        log = " ".join(server.log.read_text().split())  # rich wraps its log lines
        assert "DO_NOT_TRACK=1 registered. Anonymized usage statistics are disabled." in log


@pytest.fixture(scope="module")
def served_model(servers: tuple[Server, Server]) -> str:
    """The id Infinity serves the model under (GET /models): the model part of the specs."""
    [entry] = httpx.get(servers[0].url + "/models", timeout=10).json()["data"]
    assert entry["capabilities"] == ["rerank"]
    return str(entry["id"])


@pytest.fixture(scope="module")
def local(model_dir: str) -> RerankResult:
    """What swaprank's local backend makes of the same model, query and documents."""
    return Reranker(f"cross-encoder:{model_dir}").rerank(QUERY, DOCS)


def assert_same_ranking(result: RerankResult, local: RerankResult) -> None:
    assert [d.index for d in result] == [d.index for d in local]
    assert [d.score for d in result] == pytest.approx([d.score for d in local], abs=1e-4)
    assert [d.text for d in result] == [DOCS[d.index] for d in local]


def characters(query: str, docs: list[str]) -> int:
    """Infinity's default usage unit: characters of query + document per pair (no --lengths-via-tokenize)."""
    return sum(len(query) + len(doc) for doc in docs)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_infinity_backend_matches_the_local_cross_encoder(servers: tuple[Server, Server], served_model: str,
                                                          local: RerankResult, mode: str) -> None:
    default_registry().close()
    rr = Reranker(f"infinity:{served_model}?base_url={servers[0].url}")
    result = rr.rerank(QUERY, DOCS) if mode == "sync" else asyncio.run(rr.arerank(QUERY, DOCS))
    assert_same_ranking(result, local)
    assert [d.score for d in result] == [d.raw_score for d in result]  # Infinity's sigmoid, applied once
    assert result.usage == Usage(total_tokens=characters(QUERY, DOCS))
    # The strong answers really are on top (the model is a real reranker, not noise).
    assert {result[0].index, result[1].index} <= {0, 2, 5}


def test_split_requests_to_infinity_merge_to_the_same_ranking(servers: tuple[Server, Server], served_model: str,
                                                             local: RerankResult) -> None:
    result = Reranker(f"infinity:{served_model}?base_url={servers[0].url}&max_docs_per_request=3").rerank(QUERY, DOCS)
    assert_same_ranking(result, local)
    assert result.usage == Usage(total_tokens=characters(QUERY, DOCS))  # summed over the three requests


def test_jina_spec_pointed_at_infinity(servers: tuple[Server, Server], served_model: str,
                                       local: RerankResult) -> None:
    result = Reranker(f"jina:{served_model}?base_url={servers[0].url}/rerank").rerank(QUERY, DOCS)
    assert_same_ranking(result, local)
    assert result.usage == Usage(total_tokens=characters(QUERY, DOCS))


def test_cohere_spec_pointed_at_infinity_under_a_v2_prefix(servers: tuple[Server, Server], served_model: str,
                                                            local: RerankResult) -> None:
    result = Reranker(f"cohere:{served_model}?base_url={servers[1].url}", api_key=KEY).rerank(QUERY, DOCS)
    assert_same_ranking(result, local)
    assert result.usage is None  # Infinity sends no Cohere billed_units


def test_infinity_api_key(servers: tuple[Server, Server], served_model: str, local: RerankResult) -> None:
    spec = f"infinity:{served_model}?base_url={servers[1].url}/v2&max_retries=0"
    assert_same_ranking(Reranker(spec, api_key=KEY).rerank(QUERY, DOCS), local)
    default_registry().close()
    with pytest.raises(AuthenticationError) as info:
        Reranker(spec, api_key="sk-wrong-key").rerank(QUERY, DOCS)
    assert (info.value.vendor, info.value.status) == ("infinity", 401)
    assert "sk-wrong-key" not in str(info.value) and KEY not in str(info.value)
