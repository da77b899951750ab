"""Voyage AI rerankers through the official SDK (``voyageai.Client`` / ``AsyncClient``, ``POST /v1/rerank``).

The SDK takes its timeout at construction, so we build a client per attempt (it is a few
attributes; connections are pooled by the SDK per thread, not per client) to give every request
the time left before the call's deadline. The SDK maps the answer into ``RerankingObject``
itself, so a malformed 200 surfaces as IndexError/AttributeError there; we report those as
``BadResponseError`` like every other unusable answer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr

from swaprank.backends.hosted import HostedBackend, Part, network_options, ranked_scores
from swaprank.backends.hosted.prompting import Prompting
from swaprank.backends.hosted.sdk_errors import AttributeStatus, model_errors
from swaprank.backends.hosted.urls import with_suffix
from swaprank.backends.optional import require
from swaprank.specs import BackendSpec, Option
from swaprank.types import Usage


class VoyageBackend(HostedBackend):
    vendor: ClassVar[str] = "voyage"
    default_model: ClassVar[str | None] = "rerank-2.5"
    sdk_loggers: ClassVar[tuple[str, ...]] = ("voyage",)
    key_env: ClassVar[tuple[str, ...]] = ("VOYAGE_API_KEY",)
    default_urls: ClassVar[tuple[str, ...]] = ("https://api.voyageai.com/v1",)
    # Documented query + document token limits (docs.voyageai.com, "Rerankers").
    model_limits: ClassVar[dict[str, int]] = {
        "rerank-2.5": 32_000, "rerank-2.5-lite": 32_000, "rerank-2": 16_000, "rerank-2-lite": 8_000,
        "rerank-1": 8_000, "rerank-lite-1": 4_000,
    }
    options: ClassVar[dict[str, Option]] = {
        **network_options(max_docs_per_request=1000),
        "truncation": Option(bool, True, "let Voyage cut over-long query+document pairs (false: fail instead)"),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        self._sdk = require("voyageai", "voyage")
        errors = require("voyageai.error", "voyage")
        self.status_errors = (AttributeStatus(errors.VoyageError, status="http_status",
                                              body=("json_body", "http_body")),)
        self.timeout_errors = (errors.Timeout,)
        self.connection_errors = (errors.APIConnectionError, *_transport_errors())
        # The SDK's errors and transport errors may be ValueErrors too: not a malformed answer.
        self._keep = (errors.VoyageError, *self.connection_errors)
        base_url = self.option("base_url")  # the SDK appends /rerank: its base URL ends in /v1
        self._base_url = with_suffix(base_url, "/v1") if base_url else None

    def prompting(self) -> Prompting | None:
        """rerank-2.5 and later follow natural-language instructions given with the query (Voyage has
        no separate field); earlier models were not trained to, so they warn and ignore it."""
        instruction = self.option("instruction")
        if instruction is None or not _follows_instructions(self.spec.model):
            return None
        return Prompting(instruction, "Instruction: {instruction}\nQuery: {query}")

    def instruction_refusal(self) -> str:
        return f"{self.spec.model} does not follow instructions (Voyage's rerank-2.5 models do)"

    def _build(self, client_class: Any, timeout: float) -> Any:
        return client_class(api_key=self.sdk_key(), max_retries=0, timeout=timeout, base_url=self._base_url)

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:
        client = self._build(self._sdk.Client, timeout)
        with model_errors(self.vendor, self._keep):  # the SDK builds RerankingObject out of a malformed 200
            result = client.rerank(query, texts, model=self.spec.model, truncation=self.option("truncation"))
        return self._read(result, len(texts))

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:
        client = self._build(self._sdk.AsyncClient, timeout)
        with model_errors(self.vendor, self._keep):
            result = await client.rerank(query, texts, model=self.spec.model, truncation=self.option("truncation"))
        return self._read(result, len(texts))

    def _read(self, result: Any, count: int) -> Part:
        items = [{"index": r.index, "relevance_score": r.relevance_score} for r in result.results]
        scores = ranked_scores(items, count, vendor=self.vendor)
        tokens = getattr(result, "total_tokens", None)
        return Part(scores, Usage(total_tokens=int(tokens)) if isinstance(tokens, int) else None)


def _follows_instructions(model: str) -> bool:
    return model.startswith("rerank-2.5") or model.startswith("rerank-3")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Raw transport errors the SDK lets escape (aiohttp while reading a body, requests)."""
    import aiohttp
    import requests

    return (aiohttp.ClientError, requests.RequestException)
