"""Infinity (``infinity_emb v2 --model-id <reranker>``), ``POST /rerank``: a thin specialisation of ``JinaBackend``.

Infinity's route is ``/rerank`` at the server root (``--url-prefix`` moves it), not Jina's
``/v1/rerank``; the body is Cohere's, ``{query, documents, return_documents, model, top_n}``, and the
answer ``{object: "rerank", results: [{relevance_score, index, document}], model, usage:
{prompt_tokens, total_tokens}, id, created}`` (infinity_emb/fastapi_schemas/pymodels.py,
``RerankInput`` / ``ReRankResult``). Scores are sigmoid probabilities: ``raw_scores`` is never sent,
so Infinity applies the sigmoid (``activation=identity``); ``raw_score`` is that same value.

Usage: Infinity's ``total_tokens`` counts **characters** of query + document per pair unless the
server runs with ``--lengths-via-tokenize``; swaprank reports the number as the server gives it.

Infinity truncates over-long pairs to the model's window itself (the tokenizer's ``truncation``),
so nothing is rejected; give ``max_length`` to have long documents windowed client-side instead of
cut. ``base_url`` is required (self-hosted); a key is optional (``--api-key``; env ``INFINITY_API_KEY``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr

from swaprank.backends.hosted import network_options
from swaprank.backends.hosted.selfhosted import SelfHostedBackend
from swaprank.backends.hosted.urls import with_suffix
from swaprank.backends.jina import JinaBackend
from swaprank.specs import BackendSpec, Option


class InfinityBackend(SelfHostedBackend, JinaBackend):
    vendor: ClassVar[str] = "infinity"
    example_url: ClassVar[str] = "http://127.0.0.1:7997"
    default_model: ClassVar[str | None] = None  # the served model id, as GET /models lists it
    model_hint: ClassVar[str] = "none: the served model id (`base_url` required)"
    key_env: ClassVar[tuple[str, ...]] = ("INFINITY_API_KEY",)
    model_limits: ClassVar[dict[str, int]] = {}
    # Infinity answers 422 past 2048 documents a request (INFINITY_MAX_CLIENT_BATCH_SIZE).
    options: ClassVar[dict[str, Option]] = {**network_options(max_docs_per_request=2048)}

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        self.url = with_suffix(self.server_url, "/rerank")

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:
        # top_n = all: the engine applies top_n after merging split requests.
        return {"query": query, "documents": texts, "return_documents": False, "model": self.spec.model,
                "top_n": len(texts)}
