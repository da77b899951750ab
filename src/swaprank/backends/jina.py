"""Jina AI rerankers over REST (``POST /v1/rerank``; Jina ships no official Python SDK).

vLLM and llama.cpp serve the same wire format at ``/v1/rerank``, and Infinity at ``/rerank``
(``base_url=http://host:7997/rerank``), so ``base_url`` turns this backend into a client for any
self-hosted Jina-compatible reranker; those usually need no key. The ``vllm:``, ``llamacpp:`` and
``infinity:`` backends specialise it with what each server adds (its limits, logits, knobs).
Such servers reject over-long pairs (vLLM: 400, llama.cpp: 500 for the whole request) unless told
otherwise; give ``max_length`` (the server's window) and long documents are windowed client-side,
or ``truncate_prompt_tokens`` (vLLM) to have the server cut them.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr

from swaprank.backends.hosted import JsonRerankBackend, network_options
from swaprank.backends.hosted.urls import route_url
from swaprank.specs import BackendSpec, Option

JINA_URL = "https://api.jina.ai/v1/rerank"


class JinaBackend(JsonRerankBackend):
    vendor: ClassVar[str] = "jina"
    default_model: ClassVar[str | None] = "jina-reranker-v2-base-multilingual"
    key_env: ClassVar[tuple[str, ...]] = ("JINA_API_KEY", "JINAAI_API_KEY")
    default_urls: ClassVar[tuple[str, ...]] = (JINA_URL,)
    # Documented context windows (query + document) of Jina's rerankers (jina.ai model cards).
    model_limits: ClassVar[dict[str, int]] = {
        "jina-reranker-v2-base-multilingual": 1024, "jina-reranker-m0": 10_240,
        "jina-reranker-v1-base-en": 8192, "jina-reranker-v1-turbo-en": 8192, "jina-reranker-v1-tiny-en": 8192,
        "jina-colbert-v2": 8192,
    }
    options: ClassVar[dict[str, Option]] = {
        **network_options(max_docs_per_request=1000),
        "truncate_prompt_tokens": Option(int, None, "vLLM servers: cut each pair to this many tokens instead of "
                                         "answering 400 (sent only when set)", minimum=1),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        self.url = rerank_url(self.option("base_url"))

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:
        # top_n = all: the engine applies top_n after merging split requests.
        body: dict[str, Any] = {"model": self.spec.model, "query": query, "documents": texts, "top_n": len(texts),
                                "return_documents": False}
        if self.option("truncate_prompt_tokens") is not None:
            body["truncate_prompt_tokens"] = self.option("truncate_prompt_tokens")
        return body


def rerank_url(base_url: str | None) -> str:
    """Accept ``http://host:8000``, ``.../v1`` or the full ``.../v1/rerank`` for a self-hosted server."""
    return route_url(base_url, "/rerank") if base_url else JINA_URL
