"""The wire formats of Pinecone Inference, ZeroEntropy and Mixedbread rerank, as the fakes serve them.

Checked against the official SDKs that the tests drive (pinecone 10.2, zeroentropy 0.1.0a11,
mixedbread 0.54) and the vendors' API references:

- Pinecone ``POST /rerank``, key in ``Api-Key``, version in ``X-Pinecone-Api-Version``; body
  ``{model, query, documents: [{"text"}], rank_fields: ["text"], return_documents, top_n?,
  parameters?: {truncate}}`` -> ``{model, data: [{index, score, document?}], usage: {rerank_units}}``
  sorted by score; errors ``{"error": {"code", "message"}, "status"}``; request id in
  ``x-pinecone-request-id``. ``truncate: "NONE"`` rejects over-long pairs (400), ``END`` cuts them.
- ZeroEntropy ``POST /v1/models/rerank`` (Bearer) with ``{model, query, documents, latency?, top_n?}``
  -> ``{actual_latency_mode, e2e_latency, inference_latency, results: [{index, relevance_score}],
  total_bytes, total_tokens}``; errors ``{"detail"}``.
- Mixedbread ``POST /v1/reranking`` (Bearer) with ``{model, query, input, top_k, return_input,
  rewrite_query?}`` -> ``{usage: {prompt_tokens, total_tokens}, model, data: [{index, score, input?,
  object: "rank_result"}], object: "list", top_k, return_input}``; errors ``{"detail"}``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from tests.fakes.server import FakeServer, token_count


class FakePinecone(FakeServer):
    vendor = "pinecone"
    path = "/rerank"
    results_field = "data"
    score_field = "score"
    request_id_header = "x-pinecone-request-id"

    def sent_key(self, headers: Mapping[str, str]) -> str | None:
        return headers.get("api-key")

    def error_body(self, status: int, message: str) -> Any:
        codes = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED"}
        return {"error": {"code": codes.get(status, "INTERNAL"), "message": message}, "status": status}

    def parse(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        query, docs = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not isinstance(docs, list):
            raise ValueError("'query' must be a string and 'documents' a list")
        fields = body.get("rank_fields", ["text"])
        if fields != ["text"]:
            raise ValueError(f"rank_fields {fields!r} not supported by this model: only one field, 'text'")
        texts = [d.get("text") if isinstance(d, dict) else None for d in docs]
        if not all(isinstance(t, str) for t in texts):
            raise ValueError("every document must be an object with a string 'text' field")
        top_n = body.get("top_n")
        return query, [t for t in texts if isinstance(t, str)], top_n if isinstance(top_n, int) else None

    def too_many(self, count: int) -> tuple[int, str]:
        return 400, f"too many documents: {count} > {self.max_docs} for this model"

    def too_long(self, body: dict[str, Any], tokens: int) -> tuple[int, str] | None:
        if (body.get("parameters") or {}).get("truncate", "NONE") == "END":
            return None
        return 400, (f"Request contains a query+document pair with {tokens} tokens, which exceeds the maximum "
                     f"token limit of {self.max_tokens} for each query+document pair.")

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        data = [dict(r) for r in ranked]
        if body.get("return_documents", True):
            for r in data:
                r["document"] = {"text": docs[r["index"]]}
        # One rerank unit per request of up to 100 documents.
        return {"model": body.get("model"), "data": data,
                "usage": {"rerank_units": max(1, math.ceil(len(docs) / 100))}}


class FakeZeroEntropy(FakeServer):
    vendor = "zeroentropy"
    path = "/v1/models/rerank"

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        return {
            "actual_latency_mode": body.get("latency") or "fast",
            "e2e_latency": 0.012,
            "inference_latency": 0.01,
            "results": ranked,
            "total_bytes": len(query.encode()) * len(docs) + sum(len(d.encode()) for d in docs),
            "total_tokens": token_count(query, docs),
        }


class FakeMixedbread(FakeServer):
    vendor = "mixedbread"
    path = "/v1/reranking"
    docs_field = "input"
    results_field = "data"
    score_field = "score"

    def parse(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        query, docs, _ = super().parse(body)
        top_k = body.get("top_k")
        return query, docs, top_k if isinstance(top_k, int) else None

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        return_input = bool(body.get("return_input", False))
        data = [{**r, "object": "rank_result", **({"input": docs[r["index"]]} if return_input else {})}
                for r in ranked]
        tokens = token_count(query, docs)
        return {"usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0},
                "model": body.get("model"), "data": data, "object": "list",
                "top_k": body.get("top_k", len(docs)), "return_input": return_input}
