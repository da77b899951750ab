"""Mixedbread rerankers through the official SDK (``mixedbread``, ``POST /v1/reranking``).

Mixedbread calls the documents ``input`` and the result list ``data`` (``{index, score}``);
usage is ``usage.total_tokens``. The SDK's base URL is the host (it appends ``/v1/reranking``);
``base_url`` is accepted with or without a trailing ``/v1``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from swaprank.backends.hosted import Ranking, network_options
from swaprank.backends.hosted.stainless import StainlessBackend
from swaprank.specs import Option

MIXEDBREAD_URL = "https://api.mixedbread.com"


class MixedbreadBackend(StainlessBackend):
    vendor: ClassVar[str] = "mixedbread"
    default_model: ClassVar[str | None] = "mixedbread-ai/mxbai-rerank-large-v2"
    sdk_module: ClassVar[str] = "mixedbread"
    client_classes: ClassVar[tuple[str, str]] = ("Mixedbread", "AsyncMixedbread")
    default_base_url: ClassVar[str] = MIXEDBREAD_URL
    sdk_loggers: ClassVar[tuple[str, ...]] = ("mixedbread",)
    key_env: ClassVar[tuple[str, ...]] = ("MXBAI_API_KEY",)
    # Documented context windows (mixedbread.com/docs/reranking/models): v2 8K, v1 512.
    model_limits: ClassVar[dict[str, int]] = {
        "mixedbread-ai/mxbai-rerank-large-v2": 8192, "mixedbread-ai/mxbai-rerank-base-v2": 8192,
        "mixedbread-ai/mxbai-rerank-large-v1": 512, "mixedbread-ai/mxbai-rerank-base-v1": 512,
        "mixedbread-ai/mxbai-rerank-xsmall-v1": 512,
    }
    options: ClassVar[dict[str, Option]] = {
        **network_options(max_docs_per_request=1000),
        "rewrite_query": Option(bool, None, "let Mixedbread rewrite the query before ranking (sent only when set)"),
    }
    ranking: ClassVar[Ranking] = Ranking(results=("data",), score_key="score")  # usage: {total_tokens}

    def base_url(self) -> str:
        """The SDK appends ``/v1/reranking`` to the host, so a trailing ``/v1`` is dropped."""
        return super().base_url().removesuffix("/v1")

    def _call(self, client: Any, query: str, texts: list[str], timeout: float) -> Any:
        # top_k = all: the engine applies top_n after merging split requests.
        kwargs: dict[str, Any] = {"model": self.spec.model, "query": query, "input": texts, "top_k": len(texts),
                                  "return_input": False, "timeout": timeout}
        if self.option("rewrite_query") is not None:
            kwargs["rewrite_query"] = self.option("rewrite_query")
        return client.with_raw_response.rerank(**kwargs)
