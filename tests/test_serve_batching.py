"""Dynamic batching in ``swaprank serve``: concurrent requests for a local model share model calls,
each keeps its own ``top_n`` and scores; a client that hangs up is dropped from its batch; hosted
backends are never batched; backend failures become 502/503/504 without leaking the backend.

Coalescing is asserted on counts (the service's own /metrics), never on time: ``max_wait_ms`` is
long and ``max_batch_pairs`` equals the pairs of the concurrent requests, so the batch closes exactly
when the last of them arrives.
"""

from __future__ import annotations

import asyncio
import socket
import time

import httpx
import pytest

from swaprank import Reranker
from swaprank.serve.settings import ServeSettings
from tests.fakes.server import Fault
from tests.fakes.vendors import FakeCohere
from tests.serve_support import ServedApp

DOCS = ["the cat sat on the mat", "dogs bark at the mail carrier", "a cat and a dog share a sofa",
        "quarterly revenue grew nine percent", "cats purr when content"]
QUERIES = [f"query {i} about cats and dogs" for i in range(8)]


async def _concurrent(url: str, bodies: list[dict[str, object]], path: str = "/v2/rerank") -> list[httpx.Response]:
    async with httpx.AsyncClient(timeout=60) as client:
        return await asyncio.gather(*[client.post(url + path, json=b) for b in bodies])


def test_rerank_many_takes_one_top_n_per_query(tiny_spec: str) -> None:
    rr = Reranker(tiny_spec, top_n=3)
    many = rr.rerank_many(QUERIES[:3], [DOCS] * 3, top_n=[1, None, 5])
    assert [len(r) for r in many] == [1, 3, 5]
    for query, result in zip(QUERIES[:3], many, strict=True):
        alone = rr.rerank(query, DOCS, top_n=5)[: len(result)]
        # Same order; scores equal up to float noise (one forward pass over other queries' pairs too).
        assert [d.index for d in result] == [d.index for d in alone]
        assert [d.score for d in result] == pytest.approx([d.score for d in alone], abs=1e-6)
    from swaprank.types import InvalidInputError

    with pytest.raises(InvalidInputError, match="2 top_n values for 3 queries"):
        rr.rerank_many(QUERIES[:3], [DOCS] * 3, top_n=[1, 2])
    with pytest.raises(InvalidInputError, match="top_n"):
        rr.rerank_many(QUERIES[:2], [DOCS] * 2, top_n=[1, 0])


def test_concurrent_requests_share_one_model_call(tiny_spec: str) -> None:
    settings = ServeSettings(model=tiny_spec, max_batch_pairs=len(QUERIES) * len(DOCS), max_wait_ms=30_000)
    bodies = [{"query": q, "documents": DOCS, "top_n": 1 + i % 5} for i, q in enumerate(QUERIES)]
    with ServedApp(settings) as app:
        responses = asyncio.run(_concurrent(app.url, bodies))
        assert app.metric("swaprank_serve_model_calls_total", mode="batched") == 1
        assert app.metric("swaprank_serve_batch_requests_sum") == len(QUERIES)
        assert app.metric("swaprank_serve_batch_pairs_sum") == len(QUERIES) * len(DOCS)
    rr = Reranker(tiny_spec)
    for body, response in zip(bodies, responses, strict=True):
        assert response.status_code == 200
        alone = rr.rerank(str(body["query"]), DOCS, top_n=int(str(body["top_n"])))
        results = response.json()["results"]
        assert [r["index"] for r in results] == [d.index for d in alone]
        assert [r["relevance_score"] for r in results] == pytest.approx([d.score for d in alone], abs=1e-6)


def test_without_batching_every_request_is_its_own_call(tiny_spec: str) -> None:
    settings = ServeSettings(model=tiny_spec, batching=False)
    with ServedApp(settings) as app:
        responses = asyncio.run(_concurrent(app.url, [{"query": q, "documents": DOCS} for q in QUERIES]))
        assert all(r.status_code == 200 for r in responses)
        assert app.metric("swaprank_serve_model_calls_total", mode="direct") == len(QUERIES)
        assert app.metric("swaprank_serve_model_calls_total", mode="batched") == 0
        assert httpx.get(app.url + "/ready").json()["mode"] == "direct"


def test_a_client_that_hangs_up_is_dropped_from_its_batch(tiny_spec: str) -> None:
    settings = ServeSettings(model=tiny_spec, max_batch_pairs=10_000, max_wait_ms=1500)
    with ServedApp(settings) as app:
        body = b'{"query": "gone", "documents": ["a", "b", "c"]}'
        with socket.create_connection(("127.0.0.1", app.port)) as sock:
            sock.sendall(b"POST /v2/rerank HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                         b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
            deadline = time.monotonic() + 5
            while app.metric("swaprank_serve_inflight_requests") < 2 and time.monotonic() < deadline:
                time.sleep(0.01)  # the request is queued (this /metrics request is the other one)
        # hung up; a normal request joins the same batch window
        response = httpx.post(app.url + "/v2/rerank", json={"query": "stays", "documents": DOCS}, timeout=30)
        assert response.status_code == 200 and len(response.json()["results"]) == len(DOCS)
        assert app.metric("swaprank_serve_dropped_total", reason="client_disconnected") == 1
        assert app.metric("swaprank_serve_dropped_total", reason="removed_from_batch") == 1
        assert app.metric("swaprank_serve_batch_requests_sum") == 1  # only the live request was scored
        assert app.metric("swaprank_serve_batch_pairs_sum") == len(DOCS)


def test_hosted_backends_go_straight_through_concurrently() -> None:
    with FakeCohere(latency=0.3) as fake:
        spec = f"cohere:rerank-v3.5?base_url={fake.url}&max_retries=0"
        settings = ServeSettings(model=spec, served_model_names=("upstream",))
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CO_API_KEY", "sk-upstream-secret-123")
            with ServedApp(settings) as app:
                assert httpx.get(app.url + "/ready").json()["mode"] == "direct"
                responses = asyncio.run(_concurrent(app.url, [{"query": q, "documents": DOCS} for q in QUERIES[:4]]))
                assert [r.status_code for r in responses] == [200] * 4
                assert fake.max_inflight >= 2  # not serialised behind a batcher
                assert app.metric("swaprank_serve_model_calls_total", mode="direct") == 4
                body = responses[0].json()
                assert body["meta"]["billed_units"]["search_units"] == 1  # the upstream's own usage


@pytest.mark.parametrize(("faults", "options", "status", "type_"), [
    ([Fault.server_error(503)], "", 503, "BackendUnavailableError"),
    ([Fault.rate_limited()], "", 503, "RateLimitError"),
    ([Fault.slow(2.0)], "&timeout=0.2", 504, "BackendUnavailableError"),
    ([Fault.status_code(400)], "", 502, "BadRequestError"),
    ([Fault.status_code(401)], "", 502, "AuthenticationError"),
    ([Fault.malformed_json()], "", 502, "BadResponseError"),
])
def test_backend_failures_map_to_5xx_without_leaking(faults: list[Fault], options: str, status: int,
                                                      type_: str) -> None:
    secret = "sk-upstream-secret-123"
    with FakeCohere() as fake:
        spec = f"cohere:rerank-v3.5?base_url={fake.url}&max_retries=0{options}"
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("CO_API_KEY", secret)
            with ServedApp(ServeSettings(model=spec)) as app:
                fake.script(*faults)
                response = httpx.post(app.url + "/v2/rerank", json={"query": "q", "documents": DOCS}, timeout=30)
                assert response.status_code == status, response.text
                body = response.json()
                assert body["type"] == type_ and body["code"] == status
                for leak in (secret, str(fake.port), "127.0.0.1", "Traceback"):
                    assert leak not in response.text
                assert app.metric("swaprank_serve_errors_total", type=type_) == 1
                ok = httpx.post(app.url + "/v2/rerank", json={"query": "q", "documents": DOCS}, timeout=30)
                assert ok.status_code == 200  # the next request is served
