"""The wire formats of the self-hosted rerank servers vLLM, llama.cpp and Infinity, as the fakes serve them.

Shapes follow the servers' sources:

- vLLM ``POST /v1/rerank`` ``{model, query, documents, top_n, truncate_prompt_tokens?}`` -> ``{id, model,
  usage: {total_tokens}, results: [{index, document: {text}, relevance_score}]}``; ``POST /score``
  ``{model, text_1, text_2}`` -> ``{id, object: "list", created, model, data: [{index, object: "score",
  score}], usage: {prompt_tokens, total_tokens, completion_tokens}}`` in document order
  (vllm/entrypoints/pooling/score/protocol.py); errors ``{"error": {"message", "type", "code"}}``; an
  over-long pair is a 400 unless ``truncate_prompt_tokens`` is sent; ``GET /v1/models`` -> ``{data: [{id,
  max_model_len, ...}]}``.
- llama.cpp ``POST /v1/rerank`` -> ``{model, object: "list", usage: {prompt_tokens, total_tokens},
  results: [{index, relevance_score}]}`` with **raw logits** (tools/server ``format_response_rerank``);
  errors ``{"error": {"code", "message", "type"}}``; an over-long pair fails the whole request with 500;
  ``GET /props`` -> ``{default_generation_settings: {n_ctx}, total_slots, ...}``.
- Infinity ``POST /rerank`` ``{query, documents, return_documents, model, top_n}`` -> ``{object: "rerank",
  results: [{relevance_score, index, document}], model, usage: {prompt_tokens, total_tokens}, id,
  created}`` (infinity_emb/fastapi_schemas/pymodels.py); errors ``{"error": {"message", "type",
  "code"}}``; over-long pairs are cut silently (the tokenizer truncates).
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from tests.fakes.server import FakeServer, token_count


def logit(probability: float) -> float:
    """The raw score a model without a final sigmoid gives for ``probability`` (clamped off 0 and 1)."""
    p = min(max(probability, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


class FakeVLLM(FakeServer):
    vendor = "vllm"
    path = "/v1/rerank"
    served = "BAAI/bge-reranker-v2-m3"

    def get(self, path: str) -> Any:
        if path != "/v1/models":
            return None
        return {"object": "list", "data": [{"id": self.served, "object": "model", "created": int(time.time()),
                                            "owned_by": "vllm", "root": self.served, "parent": None,
                                            "max_model_len": self.max_tokens or 512, "permission": []}]}

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "BadRequestError" if status < 500 else "InternalServerError",
                          "param": None, "code": status}}

    def too_long(self, body: dict[str, Any], tokens: int) -> tuple[int, str] | None:
        if body.get("truncate_prompt_tokens") is not None:
            return None
        return 400, (f"This model's maximum context length is {self.max_tokens} tokens. However, you requested "
                     f"{tokens} tokens in the input for rerank. Please reduce the length of the input.")

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        return {"id": f"rerank-{uuid.uuid4().hex}", "model": body.get("model"),
                "usage": {"total_tokens": token_count(query, docs)},
                "results": [{"index": r["index"], "document": {"text": docs[r["index"]]},
                             "relevance_score": r["relevance_score"]} for r in ranked]}


class FakeVLLMScore(FakeVLLM):
    """vLLM's score API: the query is ``text_1``, the documents ``text_2``; answers in document order."""

    path = "/score"
    docs_field = "text_2"
    results_field = "data"
    score_field = "score"

    def parse(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        query, docs = body.get("text_1"), body.get("text_2")
        if not isinstance(query, str) or not isinstance(docs, list) or not all(isinstance(d, str) for d in docs):
            raise ValueError("'text_1' must be a string and 'text_2' a list of strings")
        return query, docs, None

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        tokens = token_count(query, docs)
        return {"id": f"score-{uuid.uuid4().hex}", "object": "list", "created": int(time.time()),
                "model": body.get("model"),
                "data": [{"index": r["index"], "object": "score", "score": r["score"]}
                         for r in sorted(ranked, key=lambda r: r["index"])],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "completion_tokens": 0}}


class FakeLlamaCpp(FakeServer):
    vendor = "llamacpp"
    path = "/v1/rerank"
    returns_logits = True  # relevance_score is the model's raw logit of relevance()
    n_ctx: int | None = None  # what GET /props reports; None: max_tokens, else 512

    def error_body(self, status: int, message: str) -> Any:
        kind = {401: "authentication_error", 404: "not_found_error", 400: "invalid_request_error"}
        return {"error": {"code": status, "message": message, "type": kind.get(status, "server_error")}}

    def too_long(self, body: dict[str, Any], tokens: int) -> tuple[int, str] | None:
        # llama-server has no truncation for rerank: the pair's task fails, and with it the request.
        return 500, (f"input ({tokens} tokens) is too large to process. increase the physical batch size "
                     f"(current batch size: {self.max_tokens})")

    def get(self, path: str) -> Any:
        if path != "/props":
            return None
        n_ctx = self.n_ctx if self.n_ctx is not None else self.max_tokens or 512
        return {"default_generation_settings": {"n_ctx": n_ctx, "params": {}}, "total_slots": 1,
                "model_alias": "", "model_path": "/models/bge-reranker-v2-m3-Q8_0.gguf",
                "endpoint_props": True, "build_info": "b6000-fake"}

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        tokens = token_count(query, docs)
        return {"model": body.get("model", "gpt-3.5-turbo"), "object": "list",
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                "results": [{"index": r["index"], "relevance_score": logit(r["relevance_score"])} for r in ranked]}

    def reset(self) -> None:
        super().reset()
        self.n_ctx = None


class FakeInfinity(FakeServer):
    vendor = "infinity"
    path = "/rerank"

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "InvalidRequestError" if status < 500 else "InternalServerError",
                          "code": status}}

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        tokens = token_count(query, docs)
        documents = bool(body.get("return_documents"))
        return {"object": "rerank",
                "results": [{"relevance_score": r["relevance_score"], "index": r["index"],
                             "document": docs[r["index"]] if documents else None} for r in ranked],
                "model": body.get("model"), "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                "id": f"infinity-{uuid.uuid4()}", "created": int(time.time())}
