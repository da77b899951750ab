"""``swaprank serve`` against hostile and unlucky clients, over real HTTP on loopback.

One request's bad input is its own 4xx and never its neighbours'; a request's cost is bounded (the
query is cut and says so, model work is counted before scoring, bodies and JSON are checked before
they are decoded); slow or idle connections are answered and closed; past its limits the service
says 503 with ``Retry-After`` in its JSON error shape; a request whose client left, whose deadline
passed or that outlived the graceful shutdown stops using the model at its next chunk.

The tiny random cross-encoder gives real tokenization; ``HeldBackend``, a local backend whose calls
wait for the test to release them, makes "a request is still running" a state instead of a timing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import httpx
import pytest

from swaprank import Reranker, register_backend
from swaprank.backends import Backend, Scores
from swaprank.serve.batching import MicroBatcher
from swaprank.serve.metrics import ServeMetrics
from swaprank.serve.settings import ServeSettings
from swaprank.types import RerankResult
from tests.serve_support import ServedApp

DOCS = ["the cat sat on the mat", "dogs bark at the mail carrier", "a cat and a dog share a sofa",
        "quarterly revenue grew nine percent", "cats purr when content"]


def post(app: ServedApp, body: Any, path: str = "/v1/rerank", **kwargs: Any) -> httpx.Response:
    return httpx.post(app.url + path, json=body, timeout=60, **kwargs)


def assert_error(response: httpx.Response, status: int, type_: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == type_ and body["code"] == status
    for word in words:
        assert word in body["message"], body["message"]
    return body


@pytest.fixture(scope="module")
def served(tiny_spec: str) -> Iterator[ServedApp]:
    settings = ServeSettings(model=tiny_spec, max_documents=50, max_body_bytes=2_000_000, max_wait_ms=50.0,
                             max_request_tokens=3000, header_timeout=0.5, body_timeout=0.5)
    with ServedApp(settings) as app:
        yield app


# ---------------------------------------------------------------------- one request's input is its own


def test_a_lone_surrogate_is_a_400_naming_the_document_and_its_neighbours_succeed(served: ServedApp,
                                                                                  tiny_spec: str) -> None:
    expected = [(d.index, d.score) for d in Reranker(tiny_spec).rerank("cat", DOCS)]
    bad = b'{"query": "aspirin", "documents": ["ok", "\\ud800 x"]}'

    async def both() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=served.url, timeout=60) as client:
            calls = [client.post("/v1/rerank", content=bad, headers={"content-type": "application/json"})]
            calls += [client.post("/v1/rerank", json={"query": "cat", "documents": DOCS}) for _ in range(6)]
            return list(await asyncio.gather(*calls))

    first, *good = asyncio.run(both())
    assert_error(first, 400, "invalid_input", "documents[1]", "lone surrogate")
    for response in good:
        assert response.status_code == 200, response.text
        results = response.json()["results"]
        assert [r["index"] for r in results] == [i for i, _ in expected]  # batched with others: same order,
        assert [r["relevance_score"] for r in results] == pytest.approx([s for _, s in expected], abs=1e-5)


async def test_a_failure_inside_a_batch_fails_only_its_own_request() -> None:
    calls: list[list[str]] = []

    async def run_many(queries: list[str], docs: list[list[str]], top_ns: list[int | None]) -> list[RerankResult]:
        calls.append(queries)
        if "poison" in queries:
            raise RuntimeError("a tokenizer choked")
        return [RerankResult() for _ in queries]

    batcher = MicroBatcher(run_many, max_pairs=100, max_wait=0.05, metrics=ServeMetrics())
    outcomes = await asyncio.gather(*(batcher.submit(q, ["d"], None) for q in ("a", "poison", "b")),
                                    return_exceptions=True)
    await batcher.close()
    assert isinstance(outcomes[1], RuntimeError)
    assert isinstance(outcomes[0], RerankResult) and isinstance(outcomes[2], RerankResult)
    assert calls[0] == ["a", "poison", "b"] and sorted(map(tuple, calls[1:])) == [("a",), ("b",), ("poison",)]


# ---------------------------------------------------------------------- bounded cost


def test_an_over_long_query_is_cut_and_the_answer_says_so(served: ServedApp) -> None:
    query = "cat " * 100_000
    response = post(served, {"query": query, "documents": DOCS}, path="/v2/rerank")  # no documents echoed
    assert response.status_code == 200, response.text
    assert response.headers["x-swaprank-query-truncated"] == "true"
    assert any("query" in w for w in response.json()["meta"]["warnings"])
    short = post(served, {"query": "cat", "documents": DOCS})
    assert "x-swaprank-query-truncated" not in short.headers


def test_more_model_work_than_the_budget_is_a_413_with_the_number(served: ServedApp) -> None:
    long_docs = [" ".join([f"word{i}"] * 2000) for i in range(3)]  # windowed: up to 32 windows each
    body = assert_error(post(served, {"query": "cat", "documents": [*DOCS, *long_docs], "return_documents": False}),
                        413, "request_too_large", "max_model_tokens=3000")
    assert "tokens" in body["message"]
    assert post(served, {"query": "cat", "documents": DOCS}).status_code == 200


@pytest.mark.parametrize(("body", "words"), [
    (b"[" * 100_000 + b"]" * 100_000, ("arrays and objects",)),
    (b'{"query": "q", "documents": [' + b"[" * 40 + b"]" * 40 + b"]}", ("nested deeper",)),
    (b'{"query": "q", "documents": ["a"], "top_n": ' + b"9" * 5000 + b"}", ("5000 digits",)),
    (b'{"query": "q", "documents": ["a"], "top_n": NaN}', ("NaN",)),
    (b'{"query": "q", "documents": [' + b",".join([b"[]"] * 50_000) + b"]}", ("arrays and objects",)),
    (b'{"query": "q", "documents": [' + b",".join([b'"a"'] * 50_000) + b"]}", ("strings",)),
])
def test_hostile_json_is_a_400_with_the_reason_never_a_500(served: ServedApp, body: bytes,
                                                           words: tuple[str, ...]) -> None:
    response = httpx.post(served.url + "/v1/rerank", content=body, headers={"content-type": "application/json"},
                          timeout=60)
    assert_error(response, 400, "invalid_json", *words)
    assert "Traceback" not in response.text


# ---------------------------------------------------------------------- connections


def _raw(app: ServedApp, data: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", app.port), timeout=30)
    sock.sendall(data)
    return sock


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    sock.close()
    return b"".join(chunks)


def test_headers_that_never_finish_get_a_408_and_the_connection_closes(served: ServedApp) -> None:
    answer = _read_all(_raw(served, b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Ty"))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["type"] == "header_timeout"


def test_a_body_that_never_finishes_gets_a_408(served: ServedApp) -> None:
    sock = _raw(served, b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100\r\n\r\n{\"query\": ")
    head, _, body = _read_all(sock).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert json.loads(body)["type"] == "body_timeout"


def test_a_client_that_hangs_up_mid_body_is_counted_not_logged_as_an_error(served: ServedApp,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    before = served.metric("swaprank_serve_dropped_total", reason="client_disconnected")
    sock = _raw(served, b"POST /v1/rerank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100\r\n\r\n{\"query\": ")
    sock.close()
    for _ in range(200):  # until the server noticed (it answers /metrics meanwhile)
        if served.metric("swaprank_serve_dropped_total", reason="client_disconnected") > before:
            break
    assert served.metric("swaprank_serve_dropped_total", reason="client_disconnected") == before + 1
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_connections_past_the_cap_are_answered_503_and_closed(tiny_spec: str) -> None:
    settings = ServeSettings(model=tiny_spec, max_connections=3, header_timeout=30)
    with ServedApp(settings) as app:
        idle = [socket.create_connection(("127.0.0.1", app.port), timeout=30) for _ in range(3)]
        extra = socket.create_connection(("127.0.0.1", app.port), timeout=30)
        head, _, body = _read_all(extra).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 503") and b"retry-after: 1" in head.lower()
        assert json.loads(body)["type"] == "overloaded"
        for sock in idle:
            sock.close()
        assert httpx.get(app.url + "/health", timeout=30).status_code == 200


# ---------------------------------------------------------------------- requests still running


class HeldBackend(Backend):
    """A local backend whose scoring calls wait until the test releases them (``gate``)."""

    local: ClassVar[bool] = True
    default_model: ClassVar[str | None] = "held"
    gate: ClassVar[threading.Event] = threading.Event()
    started: ClassVar[threading.Semaphore] = threading.Semaphore(0)
    calls: ClassVar[list[int]] = []

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        HeldBackend.calls.append(sum(len(t) for _, t in requests))
        HeldBackend.started.release()
        held = any(q.startswith("hold") for q, _ in requests)
        if held:
            HeldBackend.gate.wait(60)
        values = [[min(1.0, len(t) / 100) for t in texts] for _, texts in requests]
        return [Scores(raw=v, normalized=v) for v in values]


@pytest.fixture
def held() -> Iterator[None]:
    HeldBackend.gate.clear()
    HeldBackend.started = threading.Semaphore(0)
    HeldBackend.calls = []
    register_backend("held", HeldBackend)
    yield
    HeldBackend.gate.set()


LONG = [f"{i} " + "x" * 300 for i in range(10)]  # 3,000+ chars: more than a chunk (1,000 here)


def _serve_held(**settings: Any) -> ServedApp:
    options = {"model": "held", "warmup": False, "max_wait_ms": 1.0, **settings}
    chunk = options.pop("chunk_chars", 1000)
    return ServedApp(ServeSettings(**options), Reranker("held", chunk_chars=chunk))


def _in_background(call: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    return thread, out


def test_a_small_request_is_served_while_a_large_one_holds_the_model(held: None) -> None:
    with _serve_held() as app:
        big = {"query": "hold", "documents": LONG}  # scored in chunks, beside the batcher
        thread, out = _in_background(lambda: post(app, big))
        assert HeldBackend.started.acquire(timeout=30)
        small = post(app, {"query": "quick", "documents": ["a", "bb"]})
        assert small.status_code == 200 and thread.is_alive()  # the big one is still in its first chunk
        HeldBackend.gate.set()
        thread.join(30)
    assert out[0].status_code == 200
    assert len(HeldBackend.calls) >= 1 + 3  # the small request, and the big one in several chunks


def test_past_max_concurrency_a_request_gets_503_with_retry_after_and_probes_still_answer(held: None) -> None:
    with _serve_held(max_concurrency=1) as app:
        thread, out = _in_background(lambda: post(app, {"query": "hold", "documents": ["a"]}))
        assert HeldBackend.started.acquire(timeout=30)
        refused = post(app, {"query": "other", "documents": ["a"]})
        assert_error(refused, 503, "overloaded", "1 requests at once")
        assert refused.headers["retry-after"] == "1"
        assert httpx.get(app.url + "/health", timeout=30).status_code == 200
        assert httpx.get(app.url + "/ready", timeout=30).status_code == 200
        assert httpx.get(app.url + "/infinity/health", timeout=30).status_code == 200
        HeldBackend.gate.set()
        thread.join(30)
    assert out[0].status_code == 200


def test_a_request_past_its_timeout_gets_504_and_stops_at_the_next_chunk(held: None) -> None:
    with _serve_held(request_timeout=0.5) as app:
        response = post(app, {"query": "hold", "documents": LONG})
        assert_error(response, 504, "request_timeout", "0.5 s")
        HeldBackend.gate.set()
        # the chunk in progress finishes; no further chunk starts (the next request's call is the next one)
        assert post(app, {"query": "after", "documents": ["a"]}).status_code == 200
    assert len(HeldBackend.calls) == 2


def test_a_shutdown_out_of_time_answers_the_running_request_503_in_json(held: None) -> None:
    with _serve_held() as app:
        thread, out = _in_background(lambda: post(app, {"query": "hold", "documents": LONG}))
        assert HeldBackend.started.acquire(timeout=30)
        engine = app.app.state.engine
        assert engine._loop is not None
        engine.abort_after(0)
        thread.join(30)
        HeldBackend.gate.set()
    response = out[0]
    assert_error(response, 503, "shutting_down")
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_no_browsable_api_pages(served: ServedApp, path: str) -> None:
    assert_error(httpx.get(served.url + path, timeout=30), 404, "not_found")


async def test_a_batch_whose_requests_all_left_stops_scoring() -> None:
    started = asyncio.Event()
    finished: list[bool] = []

    async def run_many(queries: list[str], docs: list[list[str]], top_ns: list[int | None]) -> list[RerankResult]:
        started.set()
        try:
            await asyncio.Event().wait()  # a long model call: only cancellation ends it
        finally:
            finished.append(True)
        return []

    metrics = ServeMetrics()
    batcher = MicroBatcher(run_many, max_pairs=100, max_wait=0.0, metrics=metrics)
    waits = [asyncio.ensure_future(batcher.submit(q, ["d"], None)) for q in ("a", "b")]
    await started.wait()
    waits[0].cancel()
    await asyncio.sleep(0)
    assert not finished  # one request still waits: the batch goes on
    waits[1].cancel()
    for _ in range(5):
        await asyncio.sleep(0)
    assert finished == [True]  # both left: the batch's model call was cancelled
    await batcher.close()


def test_a_full_request_of_documents_as_objects_with_extra_fields_is_not_refused(served: ServedApp) -> None:
    documents = [{"text": f"cats and dogs {i}", "id": f"d{i}", "metadata": {"source": "s", "page": i, "tags": ["a"]}}
                 for i in range(50)]  # the service's max_documents, each with keys it ignores
    response = post(served, {"query": "cat", "documents": documents, "return_documents": False})
    assert response.status_code == 200, response.text
    assert sorted(r["index"] for r in response.json()["results"]) == list(range(50))
