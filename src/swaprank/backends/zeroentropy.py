"""ZeroEntropy zerank rerankers through the official SDK (``zeroentropy``, ``POST /v1/models/rerank``).

The SDK's base URL ends in ``/v1`` (it appends ``/models/rerank``); ``base_url`` is accepted with
or without it. Scores are ZeroEntropy's calibrated relevance in [0, 1]; usage is ``total_tokens``.
``latency`` picks the vendor's fast (low rate limit) or slow (high limit, >10 s) lane; unset, the
vendor tries fast then falls back to slow.
"""

from __future__ import annotations

from typing import Any, ClassVar

from swaprank.backends.hosted import Ranking, network_options
from swaprank.backends.hosted.prompting import Prompting
from swaprank.backends.hosted.stainless import StainlessBackend
from swaprank.backends.hosted.urls import with_suffix
from swaprank.specs import Option

ZEROENTROPY_URL = "https://api.zeroentropy.dev/v1"


class ZeroEntropyBackend(StainlessBackend):
    vendor: ClassVar[str] = "zeroentropy"
    default_model: ClassVar[str | None] = "zerank-1"
    sdk_module: ClassVar[str] = "zeroentropy"
    client_classes: ClassVar[tuple[str, str]] = ("ZeroEntropy", "AsyncZeroEntropy")
    default_base_url: ClassVar[str] = ZEROENTROPY_URL
    sdk_loggers: ClassVar[tuple[str, ...]] = ("zeroentropy",)
    key_env: ClassVar[tuple[str, ...]] = ("ZEROENTROPY_API_KEY",)
    options: ClassVar[dict[str, Option]] = {
        **network_options(max_docs_per_request=1000),
        "latency": Option(str, None, "fast (sub-second, lower rate limit; 429 when exceeded) | slow (higher limit, "
                          "seconds); unset: fast, then slow when over the fast limit", choices=("fast", "slow")),
    }
    ranking: ClassVar[Ranking] = Ranking(usage=("total_tokens",))  # {results: [{index, relevance_score}], total_tokens}

    def prompting(self) -> Prompting | None:
        """zerank-2 reads instructions appended to the query, in the tagged form ZeroEntropy's
        prompting guide shows; zerank-1 models were not trained to follow them."""
        instruction = self.option("instruction")
        if instruction is None or not self.spec.model.startswith("zerank-2"):
            return None
        return Prompting(instruction, "<query>{query}</query>\n<instruction>{instruction}</instruction>")

    def instruction_refusal(self) -> str:
        return f"{self.spec.model} does not follow instructions (zerank-2 does)"

    def base_url(self) -> str:
        """The SDK appends ``/models/rerank``, so its base URL must end in ``/v1``."""
        return with_suffix(super().base_url(), "/v1")

    def _call(self, client: Any, query: str, texts: list[str], timeout: float) -> Any:
        kwargs: dict[str, Any] = {"model": self.spec.model, "query": query, "documents": texts, "timeout": timeout}
        if self.option("latency") is not None:
            kwargs["latency"] = self.option("latency")
        # top_n omitted: every document comes back; the engine applies top_n after merging parts.
        return client.models.with_raw_response.rerank(**kwargs)
