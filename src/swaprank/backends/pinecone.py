"""Pinecone Inference rerank through the official SDK (``Pinecone`` / ``AsyncPinecone``, ``POST /rerank``).

Pinecone hosts several rerankers behind one endpoint (``bge-reranker-v2-m3``, ``cohere-rerank-3.5``,
``pinecone-rerank-v0``), each with its own documents-per-request and tokens-per-pair limit, so both
default per model. The SDK (v10+, httpx underneath) sends the key in ``Api-Key`` and pins the API
version in ``X-Pinecone-Api-Version``; it decodes the answer strictly (msgspec), so an unusable 200
surfaces as its ``ResponseParsingError``, reported here as ``BadResponseError``. Its client takes
the timeout at construction only: the sync path uses ``timeout`` per attempt, the async path is
also bounded by the call's deadline (``asyncio.wait_for`` in ``HostedBackend``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr

from swaprank.backends.hosted import HostedBackend, Part, PerLoop, network_options, ranked_scores
from swaprank.backends.hosted.sdk_errors import AttributeStatus, msgspec_errors
from swaprank.backends.optional import require
from swaprank.specs import BackendSpec, Option
from swaprank.types import Usage

# Documented per model (docs.pinecone.io, "Rerank results" > "Reranking models").
PINECONE_MAX_DOCUMENTS: dict[str, int] = {"bge-reranker-v2-m3": 100, "cohere-rerank-3.5": 200,
                                          "pinecone-rerank-v0": 100}
PINECONE_DEFAULT_MAX_DOCUMENTS = 100
TRUNCATE_CHOICES = ("END", "NONE")
PINECONE_URL = "https://api.pinecone.io"


class PineconeBackend(HostedBackend):
    vendor: ClassVar[str] = "pinecone"
    default_model: ClassVar[str | None] = "bge-reranker-v2-m3"
    sdk_loggers: ClassVar[tuple[str, ...]] = ("pinecone",)
    key_env: ClassVar[tuple[str, ...]] = ("PINECONE_API_KEY",)
    default_urls: ClassVar[tuple[str, ...]] = (PINECONE_URL,)
    # Max tokens per query + document pair (same source as PINECONE_MAX_DOCUMENTS).
    model_limits: ClassVar[dict[str, int]] = {"bge-reranker-v2-m3": 1024, "cohere-rerank-3.5": 40_000,
                                              "pinecone-rerank-v0": 512}
    options: ClassVar[dict[str, Option]] = {
        **network_options(max_docs_per_request=PINECONE_DEFAULT_MAX_DOCUMENTS),
        "max_docs_per_request": Option(int, PINECONE_DEFAULT_MAX_DOCUMENTS, "split larger candidate lists into "
                                       "requests; default: the model's documented limit (cohere-rerank-3.5: 200, "
                                       "bge-reranker-v2-m3 and pinecone-rerank-v0: 100)", minimum=1),
        "truncate": Option(str, None, "over-long pairs: END (Pinecone cuts them) | NONE (it rejects them); sent "
                           "as parameters.truncate only when set (bge-reranker-v2-m3, pinecone-rerank-v0)",
                           choices=TRUNCATE_CHOICES),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        self._sdk = require("pinecone", "pinecone")
        errors = require("pinecone.errors.exceptions", "pinecone")
        # Pinecone's own x-pinecone-request-id is kept on the error, not among its headers.
        self.status_errors = (AttributeStatus(errors.ApiError, request_id="request_id"),)
        self._parse_error: type[Exception] = errors.ResponseParsingError
        self.timeout_errors = (errors.PineconeTimeoutError,)
        self.connection_errors = (errors.PineconeConnectionError,)
        # ``.inference`` builds its HTTP client (a TLS context) on first use, unlocked: built here, once,
        # so concurrent split parts do not each build their own.
        self._inference = self._build(self._sdk.Pinecone).inference
        self._ainference: PerLoop[Any] = PerLoop(lambda: self._build(self._sdk.AsyncPinecone).inference)

    def option(self, name: str) -> Any:
        """``max_docs_per_request`` defaults to the model's documented limit (cohere-rerank-3.5: 200)."""
        if name == "max_docs_per_request" and name not in self.spec.option_dict:
            return PINECONE_MAX_DOCUMENTS.get(self.spec.model, PINECONE_DEFAULT_MAX_DOCUMENTS)
        return super().option(name)

    def _build(self, client_class: Any) -> Any:
        retry = require("pinecone._internal.config", "pinecone").RetryConfig
        return client_class(
            api_key=self.sdk_key(),  # the SDK refuses to start without one
            # Always explicit: the SDK's PINECONE_CONTROLLER_HOST env var must never redirect the key.
            host=(self.option("base_url") or PINECONE_URL).rstrip("/"),
            timeout=self.option("timeout"),
            retry_config=retry(max_retries=0),  # retries are ours, never multiplied by the SDK's
            source_tag="swaprank",
        )

    def _request(self, query: str, texts: list[str]) -> dict[str, Any]:
        # top_n omitted: every document comes back; the engine applies top_n after merging parts.
        kwargs: dict[str, Any] = {"model": self.spec.model, "query": query, "documents": texts,
                                  "return_documents": False}
        if self.option("truncate") is not None:
            kwargs["parameters"] = {"truncate": self.option("truncate")}
        return kwargs

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:
        with msgspec_errors(self.vendor, self._parse_error, self._scrub, extra="pinecone"):
            result = self._inference.rerank(**self._request(query, texts))
        return self._read(result, len(texts))

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:
        with msgspec_errors(self.vendor, self._parse_error, self._scrub, extra="pinecone"):
            result = await self._ainference.get().rerank(**self._request(query, texts))
        return self._read(result, len(texts))

    def _read(self, result: Any, count: int) -> Part:
        items = [{"index": item.index, "relevance_score": item.score} for item in result.data]
        scores = ranked_scores(items, count, vendor=self.vendor)
        usage = getattr(result, "usage", None)
        units = getattr(usage, "rerank_units", None)
        return Part(scores, Usage(rerank_units=units) if isinstance(units, int) else None)
