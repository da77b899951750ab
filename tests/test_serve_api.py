"""``swaprank serve`` over real HTTP: both wire formats through swaprank's own clients and the Cohere
SDK, model names, the bearer token, every limit and malformed input, and /metrics after traffic.

The app runs under uvicorn on a loopback port with the tiny random cross-encoder: its scores mean
nothing, but they are deterministic, so the served scores must equal ``Reranker(spec).rerank`` exactly.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from swaprank import Reranker
from swaprank.serve.settings import ServeSettings
from tests.serve_support import ServedApp

DOCS = ["the cat sat on the mat", "dogs bark at the mail carrier", "a cat and a dog share a sofa",
        "quarterly revenue grew nine percent", "cats purr when content", "the cat sat on the mat"]
QUERY = "cat dog"
TOKEN = "serve-token-4c1d9e7a2b"


@pytest.fixture(scope="module")
def served(tiny_spec: str) -> Iterator[ServedApp]:
    settings = ServeSettings(model=tiny_spec, served_model_names=("tiny", "tiny-alias"), max_documents=50,
                             max_body_bytes=20_000, max_wait_ms=1.0)
    with ServedApp(settings) as app:
        yield app


@pytest.fixture(scope="module")
def ranked(tiny_spec: str) -> list[Any]:
    return list(Reranker(tiny_spec).rerank(QUERY, DOCS))


@pytest.fixture(scope="module")
def expected(ranked: list[Any]) -> list[tuple[int, float]]:
    return [(d.index, d.score) for d in ranked]


@pytest.fixture(scope="module")
def raw(ranked: list[Any]) -> list[tuple[int, float]]:
    """What ``raw_scores: true`` answers: the model's logits, in the same order."""
    return [(d.index, d.raw_score) for d in ranked]


def post(app: ServedApp, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
    if body is not None:
        kwargs["json"] = body
    return httpx.post(app.url + path, timeout=30, **kwargs)


def assert_error(response: httpx.Response, status: int, type_: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"message", "type", "code", "detail"}
    assert body["type"] == type_ and body["code"] == status
    assert body["detail"] == body["message"]  # the key Jina's clients read
    for word in words:
        assert word in body["message"]
    assert "Traceback" not in response.text


# ---------------------------------------------------------------------- clients, unchanged


@pytest.mark.parametrize("backend", ["cohere", "jina", "vllm", "infinity"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_swaprank_backends_get_the_served_scores(served: ServedApp, expected: list[tuple[int, float]],
                                                 backend: str, mode: str) -> None:
    base = served.url + ("/infinity" if backend == "infinity" else "")  # Infinity's API is under /infinity
    client = Reranker(f"{backend}:tiny?base_url={base}&max_retries=0", api_key="unused")
    if mode == "sync":
        result = client.rerank(QUERY, DOCS)
    else:
        import asyncio

        result = asyncio.run(client.arerank(QUERY, DOCS))
    assert [(d.index, d.score) for d in result] == expected
    assert [d.text for d in result] == [DOCS[i] for i, _ in expected]


def test_top_n_reaches_the_service_through_a_client(served: ServedApp, expected: list[tuple[int, float]]) -> None:
    client = Reranker(f"jina:tiny?base_url={served.url}", api_key="unused", top_n=2)
    assert [(d.index, d.score) for d in client.rerank(QUERY, DOCS)] == expected[:2]


def test_cohere_sdk_works_against_the_service(served: ServedApp, expected: list[tuple[int, float]]) -> None:
    import cohere

    client = cohere.ClientV2(base_url=served.url, api_key="unused")
    answer = client.rerank(model="tiny", query=QUERY, documents=DOCS, top_n=3)
    assert [(r.index, r.relevance_score) for r in answer.results] == expected[:3]
    assert answer.id and answer.meta.billed_units.search_units == 1


def test_cohere_v2_wire_format(served: ServedApp, expected: list[tuple[int, float]]) -> None:
    response = post(served, "/v2/rerank", {"model": "tiny", "query": QUERY, "documents": DOCS, "top_n": 4})
    body = response.json()
    assert response.status_code == 200 and set(body) == {"id", "results", "meta"}
    assert response.headers["x-request-id"] == body["id"]
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == expected[:4]
    assert all(set(r) == {"index", "relevance_score"} for r in body["results"])
    with_docs = post(served, "/v2/rerank", {"model": "tiny", "query": QUERY, "documents": DOCS,
                                            "return_documents": True, "max_tokens_per_doc": 64}).json()
    assert [r["document"]["text"] for r in with_docs["results"]] == [DOCS[i] for i, _ in expected]
    assert "max_tokens_per_doc is not applied" in with_docs["meta"]["warnings"][0]


@pytest.mark.parametrize("path", ["/v1/rerank", "/rerank"])
def test_jina_vllm_wire_format(served: ServedApp, expected: list[tuple[int, float]], path: str) -> None:
    docs: list[Any] = [d if i % 2 else {"text": d} for i, d in enumerate(DOCS)]
    body = post(served, path, {"query": QUERY, "documents": docs}).json()
    assert set(body) == {"id", "model", "usage", "results"} and body["model"] == "tiny"
    assert body["usage"] == {"total_tokens": 0, "prompt_tokens": 0}
    assert [(r["index"], r["relevance_score"], r["document"]["text"]) for r in body["results"]] == [
        (i, s, DOCS[i]) for i, s in expected]
    bare = post(served, path, {"model": "tiny-alias", "query": QUERY, "documents": DOCS, "top_n": 2,
                               "return_documents": False}).json()
    assert bare["model"] == "tiny-alias"
    assert [(r["index"], r["relevance_score"]) for r in bare["results"]] == expected[:2]
    assert all("document" not in r for r in bare["results"])
    # vLLM's top_n=0 means every document
    assert len(post(served, path, {"query": QUERY, "documents": DOCS, "top_n": 0}).json()["results"]) == len(DOCS)


def test_infinity_wire_format(served: ServedApp, expected: list[tuple[int, float]]) -> None:
    """Infinity's ReRankResult under /infinity: ``document`` is the text itself, null unless asked for."""
    response = post(served, "/infinity/rerank", {"query": QUERY, "documents": DOCS})
    body = response.json()
    assert set(body) == {"object", "results", "model", "usage", "id", "created"}
    assert body["object"] == "rerank" and body["model"] == "tiny" and isinstance(body["created"], int)
    assert body["usage"] == {"prompt_tokens": 0, "total_tokens": 0} and response.headers["x-request-id"] == body["id"]
    assert [(r["index"], r["relevance_score"], r["document"]) for r in body["results"]] == [
        (i, s, None) for i, s in expected]
    # Infinity's clients send "default/not-specified" when no model is set: the served model answers
    with_docs = post(served, "/infinity/rerank", {"model": "default/not-specified", "query": QUERY,
                                                  "documents": DOCS, "return_documents": True, "top_n": 2}).json()
    assert with_docs["model"] == "tiny"
    assert [(r["index"], r["document"]) for r in with_docs["results"]] == [(i, DOCS[i]) for i, _ in expected[:2]]
    assert post(served, "/infinity/rerank", {"model": "tiny-alias", "query": QUERY,
                                             "documents": DOCS}).json()["model"] == "tiny-alias"
    assert_error(post(served, "/infinity/rerank", {"model": "bge", "query": QUERY, "documents": DOCS}), 404,
                 "model_not_found", "bge", "tiny, tiny-alias")
    models = httpx.get(served.url + "/infinity/models").json()
    assert [m["id"] for m in models["data"]] == ["tiny", "tiny-alias"] and models["object"] == "list"
    assert all(m["object"] == "model" and m["capabilities"] == ["rerank"] for m in models["data"])
    assert isinstance(httpx.get(served.url + "/infinity/health").json()["unix"], float)
    assert served.metric("swaprank_serve_requests_total", route="/infinity/rerank", status="200") >= 3


@pytest.mark.parametrize("path", ["/v2/rerank", "/v1/rerank", "/rerank", "/infinity/rerank"])
def test_raw_scores_are_honoured_on_every_route(served: ServedApp, raw: list[tuple[int, float]],
                                                expected: list[tuple[int, float]], path: str) -> None:
    body = post(served, path, {"query": QUERY, "documents": DOCS, "raw_scores": True}).json()
    assert [(r["index"], r["relevance_score"]) for r in body["results"]] == raw
    assert any(not 0.0 <= s <= 1.0 for _, s in raw)  # logits, not the [0, 1] scores
    plain = post(served, path, {"query": QUERY, "documents": DOCS, "raw_scores": False}).json()
    assert [(r["index"], r["relevance_score"]) for r in plain["results"]] == expected
    assert_error(post(served, path, {"query": QUERY, "documents": DOCS, "raw_scores": "yes"}), 422,
                 "invalid_request", "raw_scores")


def test_models_health_and_ready(served: ServedApp) -> None:
    assert httpx.get(served.url + "/health").json() == {"status": "ok"}
    ready = httpx.get(served.url + "/ready").json()
    assert ready["status"] == "ready" and ready["mode"] == "batched"
    assert [m["id"] for m in httpx.get(served.url + "/v1/models").json()["data"]] == ["tiny", "tiny-alias"]


# ---------------------------------------------------------------------- model names


def test_another_model_name_is_404_naming_what_is_served(served: ServedApp) -> None:
    for path in ("/v2/rerank", "/v1/rerank"):
        response = post(served, path, {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS})
        assert_error(response, 404, "model_not_found", "rerank-v3.5", "tiny, tiny-alias")
    with pytest.raises(Exception, match="404"):
        Reranker(f"cohere:other?base_url={served.url}&max_retries=0", api_key="unused").rerank(QUERY, DOCS)


def test_default_name_is_the_spec_label_and_accept_any_model(tiny_spec: str) -> None:
    settings = ServeSettings(model="cross-encoder:BAAI/bge-reranker-base?max_length=64", warmup=False)
    assert settings.model_names == ("cross-encoder:BAAI/bge-reranker-base",)  # backend:model, never the options
    settings = ServeSettings(model=tiny_spec + "?max_length=64", accept_any_model=True, warmup=False)
    with ServedApp(settings) as app:
        body = post(app, "/v1/rerank", {"model": "anything", "query": QUERY, "documents": DOCS}).json()
        assert body["model"] == "anything" and len(body["results"]) == len(DOCS)


@pytest.mark.parametrize(("model", "name"), [
    ("cross-encoder:./models/minilm", "cross-encoder:minilm"),
    ("cross-encoder:../models/minilm/", "cross-encoder:minilm"),
    ("cross-encoder:~/models/minilm", "cross-encoder:minilm"),
    ("llamacpp:/srv/models/bge-reranker-v2-m3-q8.gguf", "llamacpp:bge-reranker-v2-m3-q8.gguf"),
    ("tei:http://10.0.0.5:8080", "tei"),
    ("cohere:rerank-v3.5", "cohere:rerank-v3.5"),
])
def test_the_default_served_name_shows_no_local_path(model: str, name: str) -> None:
    assert ServeSettings(model=model, warmup=False).model_names == (name,)


def test_a_model_served_from_a_directory_is_named_without_its_path(tiny_spec: str) -> None:
    directory = tiny_spec.split(":", 1)[1]
    name = "cross-encoder:" + directory.rstrip("/").rsplit("/", 1)[-1]
    with ServedApp(ServeSettings(model=tiny_spec, max_wait_ms=1.0)) as app:
        assert app.settings.model_names == (name,)
        seen = [httpx.get(app.url + "/ready").text, httpx.get(app.url + "/v1/models").text,
                httpx.get(app.url + "/infinity/models").text,
                post(app, "/v1/rerank", {"query": QUERY, "documents": DOCS}).text,
                post(app, "/infinity/rerank", {"query": QUERY, "documents": DOCS}).text]
        missing = post(app, "/v2/rerank", {"model": "rerank-v3.5", "query": QUERY, "documents": DOCS})
        assert_error(missing, 404, "model_not_found", f"this service serves: {name}")
        for text in [*seen, missing.text]:
            assert directory not in text and str(Path(directory).parent) not in text
        assert name in seen[0] and name in seen[1] and name in seen[2]
        assert post(app, "/v1/rerank", {"model": name, "query": QUERY, "documents": DOCS}).json()["model"] == name


# ---------------------------------------------------------------------- bearer token


def test_bearer_token(tiny_spec: str, monkeypatch: pytest.MonkeyPatch, expected: list[tuple[int, float]]) -> None:
    monkeypatch.setenv("MY_SERVE_TOKEN", TOKEN)
    settings = ServeSettings(model=tiny_spec, served_model_names=("tiny",), api_key_env="MY_SERVE_TOKEN")
    with ServedApp(settings) as app:
        body = {"model": "tiny", "query": QUERY, "documents": DOCS}
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": f"Basic {TOKEN}"},
                        {"authorization": f"Bearer {TOKEN}x"}):
            for path in ("/v2/rerank", "/v1/rerank", "/infinity/rerank", "/metrics", "/v1/models",
                         "/infinity/models"):
                response = httpx.request("POST" if "rerank" in path else "GET", app.url + path, json=body,
                                         headers=headers)
                assert_error(response, 401, "unauthorized", "Authorization: Bearer")
                assert TOKEN not in response.text and response.headers["www-authenticate"] == "Bearer"
        ok = post(app, "/v2/rerank", body, headers={"authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200 and TOKEN not in ok.text
        assert httpx.get(app.url + "/health").status_code == 200  # probes stay open
        assert httpx.get(app.url + "/ready").status_code == 200
        assert httpx.get(app.url + "/infinity/health").status_code == 200
        # swaprank's clients and the Cohere SDK send their key as the bearer token
        client = Reranker(f"cohere:tiny?base_url={app.url}&max_retries=0", api_key=TOKEN)
        assert [(d.index, d.score) for d in client.rerank(QUERY, DOCS)] == expected
        with pytest.raises(Exception) as failure:
            Reranker(f"jina:tiny?base_url={app.url}&max_retries=0", api_key="wrong").rerank(QUERY, DOCS)
        assert "AuthenticationError" in type(failure.value).__name__ or "401" in str(failure.value)
        assert TOKEN not in repr(app.app.state.engine.__dict__)


# ---------------------------------------------------------------------- limits and malformed input


def test_too_many_documents_is_413(served: ServedApp) -> None:
    response = post(served, "/v2/rerank", {"query": QUERY, "documents": ["d"] * 51})
    assert_error(response, 413, "too_many_documents", "51 documents", "at most 50")


def test_body_over_the_limit_is_413_with_or_without_content_length(served: ServedApp) -> None:
    big = {"query": QUERY, "documents": ["x" * 1000] * 30}
    assert_error(post(served, "/v2/rerank", big), 413, "body_too_large", "20000 bytes")

    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to trust
        yield b'{"query": "q", "documents": ["'
        for _ in range(30):
            yield b"y" * 1000
        yield b'"]}'

    assert_error(post(served, "/v1/rerank", content=chunks()), 413, "body_too_large")
    # a raw chunked body, written by hand: counted as it streams in
    with socket.create_connection(("127.0.0.1", served.port)) as sock:
        payload = b'{"query": "q", "documents": ["' + b"z" * 30_000 + b'"]}'
        head = b"POST /v1/rerank HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        sock.sendall(head + b"transfer-encoding: chunked\r\n\r\n" + f"{len(payload):x}\r\n".encode() + payload
                     + b"\r\n0\r\n\r\n")
        assert sock.recv(4096).split(b"\r\n", 1)[0] == b"HTTP/1.1 413 Request Entity Too Large"


@pytest.mark.parametrize(("body", "status", "type_", "words"), [
    (b"{", 400, "invalid_json", ("not valid JSON", "line 1")),
    (b"\xff\xfe", 400, "invalid_json", ("not valid",)),
    (b'["q", ["d"]]', 400, "invalid_json", ("JSON object", "list")),
    (b'{"documents": ["d"]}', 422, "invalid_request", ("query: Field required",)),
    (b'{"query": "q"}', 422, "invalid_request", ("documents: Field required",)),
    (b'{"query": "  ", "documents": ["d"]}', 422, "invalid_request", ("query: must not be empty",)),
    (b'{"query": "q", "documents": []}', 422, "invalid_request", ("documents: must not be empty",)),
    (b'{"query": 7, "documents": ["d"]}', 422, "invalid_request", ("query: Input should be a valid string",)),
    (b'{"query": "q", "documents": "d"}', 422, "invalid_request", ("documents: Input should be a valid list",)),
    (b'{"query": "q", "documents": ["d", 3, null]}', 422, "invalid_request",
     ('documents[1]: expected a string or {"text": string}', "documents[2]")),
    (b'{"query": "q", "documents": [{"txt": "d"}]}', 422, "invalid_request", ("documents[0]",)),
    (b'{"query": "q", "documents": ["d"], "top_n": "3"}', 422, "invalid_request", ("top_n",)),
    (b'{"query": "q", "documents": ["d"], "top_n": -1}', 422, "invalid_request", ("top_n", "greater than")),
    (b'{"query": "q", "documents": ["d"], "return_documents": "yes"}', 422, "invalid_request",
     ("return_documents",)),
    (b'{"query": "q", "documents": ["d"], "model": 5}', 422, "invalid_request", ("model",)),
])
def test_malformed_requests_get_a_typed_4xx(served: ServedApp, body: bytes, status: int, type_: str,
                                            words: tuple[str, ...]) -> None:
    for path in ("/v2/rerank", "/v1/rerank"):
        response = post(served, path, content=body, headers={"content-type": "application/json"})
        assert_error(response, status, type_, *words)
    assert post(served, "/v2/rerank", {"query": QUERY, "documents": DOCS}).status_code == 200  # still serving


def test_unknown_route_and_method_use_the_error_shape(served: ServedApp) -> None:
    assert_error(httpx.get(served.url + "/v3/rerank"), 404, "not_found")
    assert_error(httpx.get(served.url + "/v2/rerank"), 405, "method_not_allowed")


def test_settings_refuse_bad_values(tiny_spec: str) -> None:
    from swaprank.types import ConfigError

    with pytest.raises(ConfigError, match=r"nope"):
        ServeSettings(model="nope:model")
    with pytest.raises(ConfigError, match="max_documents"):
        ServeSettings(model=tiny_spec, max_documents=0)
    with pytest.raises(ConfigError, match="max_wait_ms"):
        ServeSettings(model=tiny_spec, max_wait_ms=-1)


# ---------------------------------------------------------------------- metrics


def test_metrics_after_traffic(tiny_spec: str) -> None:
    with ServedApp(ServeSettings(model=tiny_spec, served_model_names=("tiny",))) as app:
        for _ in range(3):
            assert post(app, "/v2/rerank", {"query": QUERY, "documents": DOCS}).status_code == 200
        assert post(app, "/v1/rerank", {"query": QUERY, "documents": DOCS[:2]}).status_code == 200
        assert post(app, "/v1/rerank", content=b"{").status_code == 400
        assert post(app, "/v2/rerank", {"model": "x", "query": QUERY, "documents": DOCS}).status_code == 404
        response = httpx.get(app.url + "/metrics")
        assert response.headers["content-type"].startswith("text/plain")
        text = response.text
        from tests.serve_support import metric

        assert metric(text, "swaprank_serve_requests_total", route="/v2/rerank", status="200") == 3
        assert metric(text, "swaprank_serve_requests_total", route="/v1/rerank", status="200") == 1
        assert metric(text, "swaprank_serve_requests_total", route="/v1/rerank", status="400") == 1
        assert metric(text, "swaprank_serve_requests_total", route="/v2/rerank", status="404") == 1
        assert metric(text, "swaprank_serve_errors_total", type="invalid_json") == 1
        assert metric(text, "swaprank_serve_errors_total", type="model_not_found") == 1
        assert metric(text, "swaprank_serve_request_seconds_count", route="/v2/rerank") == 4
        assert metric(text, "swaprank_serve_model_calls_total", mode="batched") == 4
        assert metric(text, "swaprank_serve_batch_pairs_sum") == 3 * len(DOCS) + 2
        assert metric(text, "swaprank_serve_batch_requests_count") == 4
        assert metric(text, "swaprank_serve_inflight_requests") == 1  # this /metrics request
        assert metric(text, "swaprank_serve_ready") == 1
