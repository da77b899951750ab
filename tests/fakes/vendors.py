"""The wire formats of Cohere, Voyage, Jina and TEI, as the fakes serve them.

Shapes follow the vendors' documented APIs and what their SDKs parse:

- Cohere ``POST /v2/rerank`` -> ``{id, results: [{index, relevance_score}], meta: {api_version,
  billed_units: {search_units}}}``; errors ``{"message"}``; trace id in ``x-debug-trace-id``.
- Voyage ``POST /v1/rerank`` (SDK base_url ends in ``/v1``) -> ``{object: "list", data: [{relevance_score,
  index}], model, usage: {total_tokens}}``; errors ``{"detail"}``; the SDK reads ``request-id``.
- Jina ``POST /v1/rerank`` -> ``{model, usage: {total_tokens}, results: [{index, relevance_score}]}``;
  errors ``{"detail"}``.
- TEI ``POST /rerank`` with ``{query, texts, raw_scores, truncate}`` -> a bare array ``[{index, score}]``
  sorted by score; errors ``{"error", "error_type"}``; 413 over ``max_client_batch_size``; token
  count in ``x-compute-tokens``; ``GET /info`` -> ``{model_id, max_input_length, ...}``.

Over-long pairs (``max_tokens`` set on the fake): Cohere cuts silently; Voyage cuts unless
``truncation: false`` (then 400); TEI cuts when ``truncate: true``, else 413; the Jina fake answers
like vLLM behind the same route: 400 unless ``truncate_prompt_tokens`` is sent.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from tests.fakes.server import FakeServer, token_count


class FakeCohere(FakeServer):
    vendor = "cohere"
    path = "/v2/rerank"
    request_id_header = "x-debug-trace-id"

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message}

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        return {
            "id": str(uuid.uuid4()),
            "results": ranked,
            "meta": {
                "api_version": {"version": "2"},
                # Cohere bills one search unit per query per 100 documents.
                "billed_units": {"search_units": max(1, math.ceil(len(docs) / 100))},
            },
        }


class FakeVoyage(FakeServer):
    vendor = "voyage"
    path = "/v1/rerank"
    results_field = "data"
    request_id_header = "request-id"

    def too_long(self, body: dict[str, Any], tokens: int) -> tuple[int, str] | None:
        if body.get("truncation", True):
            return None
        return 400, f"Request to model exceeds the context length limit of {self.max_tokens} tokens: {tokens}"

    def parse(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        query, docs, _ = super().parse(body)
        top_k = body.get("top_k")
        return query, docs, top_k if isinstance(top_k, int) else None

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        return {
            "object": "list",
            "data": [{"relevance_score": r["relevance_score"], "index": r["index"]} for r in ranked],
            "model": body.get("model"),
            "usage": {"total_tokens": token_count(query, docs)},
        }


class FakeJina(FakeServer):
    vendor = "jina"
    path = "/v1/rerank"

    def too_long(self, body: dict[str, Any], tokens: int) -> tuple[int, str] | None:
        if body.get("truncate_prompt_tokens") is not None:
            return None
        return 400, (f"This model's maximum context length is {self.max_tokens} tokens. However, you requested "
                     f"{tokens} tokens in the input for rerank. Please reduce the length of the input.")

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        results = [dict(r) for r in ranked]
        if body.get("return_documents", True):
            for r in results:
                r["document"] = {"text": docs[r["index"]]}
        return {"model": body.get("model"), "usage": {"total_tokens": token_count(query, docs)}, "results": results}


class FakeTEI(FakeServer):
    vendor = "tei"
    path = "/rerank"
    docs_field = "texts"
    results_field = None
    score_field = "score"

    def __init__(self, *, api_key: str | None = None, latency: float = 0.0, max_docs: int | None = 32) -> None:
        super().__init__(api_key=api_key, latency=latency, max_docs=max_docs)

    def reset(self) -> None:
        super().reset()
        self.max_docs = 32  # TEI's default --max-client-batch-size

    def error_body(self, status: int, message: str) -> Any:
        kinds = {413: "validation", 422: "tokenizer", 424: "backend", 429: "overloaded", 503: "unhealthy"}
        return {"error": message, "error_type": kinds.get(status, "backend")}

    def too_many(self, count: int) -> tuple[int, str]:
        return 413, f"batch size {count} > maximum allowed batch size {self.max_docs}"

    def too_long(self, body: dict[str, Any], tokens: int) -> tuple[int, str] | None:
        if body.get("truncate"):
            return None
        return 413, f"Input validation error: `inputs` must have less than {self.max_tokens} tokens. Given: {tokens}"

    def get(self, path: str) -> Any:
        if path != "/info":
            return None
        return {"model_id": "fake-org/fake-reranker", "model_dtype": "float32",
                "model_type": {"reranker": {"id2label": {"0": "LABEL_0"}}},
                "max_concurrent_requests": 512, "max_input_length": self.max_tokens or 512,
                "max_batch_tokens": 16384, "max_client_batch_size": self.max_docs or 32,
                "auto_truncate": False, "tokenization_workers": 2, "version": "1.8.0"}

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        if body.get("return_text"):
            return [{**r, "text": docs[r["index"]]} for r in ranked]
        return ranked

    def response_headers(self, query: str, docs: list[str]) -> dict[str, str]:
        return {
            "x-compute-type": "cpu",
            "x-compute-tokens": str(token_count(query, docs)),
            "x-compute-characters": str(len(query) * len(docs) + sum(len(d) for d in docs)),
        }
