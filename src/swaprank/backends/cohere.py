"""Cohere Rerank v2 through the official SDK (``ClientV2`` / ``AsyncClientV2``, ``POST /v2/rerank``).

``base_url`` points the same code at any server speaking Cohere's v2 route (vLLM does). We call
``with_raw_response`` and validate the raw JSON ourselves: the SDK's lenient model construction
would turn an index of ``1.5`` into ``1`` and silently mis-rank.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from swaprank.backends.hosted import HostedBackend, Part, Ranking, dig, network_options, request_id_from
from swaprank.backends.hosted.clients import SdkClients
from swaprank.backends.hosted.sdk_errors import AttributeStatus
from swaprank.backends.optional import require
from swaprank.specs import BackendSpec, Option
from swaprank.windows import Limit

COHERE_TOKENS_PER_DOC = 4096  # v2 rerank's documented max_tokens_per_doc default
# {id, results: [{index, relevance_score}], meta: {billed_units: {search_units}}}
COHERE_RANKING = Ranking(usage=("meta", "billed_units", "search_units"), unit="search_units")


class CohereBackend(HostedBackend):
    vendor: ClassVar[str] = "cohere"
    default_model: ClassVar[str | None] = "rerank-v3.5"
    sdk_loggers: ClassVar[tuple[str, ...]] = ("fern",)
    key_env: ClassVar[tuple[str, ...]] = ("CO_API_KEY", "COHERE_API_KEY")
    default_urls: ClassVar[tuple[str, ...]] = ("https://api.cohere.com", "https://api.cohere.ai")
    options: ClassVar[dict[str, Option]] = {
        **network_options(max_docs_per_request=1000, max_length=False),
        "max_tokens_per_doc": Option(int, None, "tokens Cohere reads per document (its default: 4096); longer "
                                     "documents are windowed client-side (long_docs=window) or cut by Cohere",
                                     minimum=1),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        self._sdk = require("cohere", "cohere")
        self.status_errors = (AttributeStatus(require("cohere.core", "cohere").ApiError),)
        self._clients = self.own(SdkClients(self._build, self._sdk.ClientV2, self._sdk.AsyncClientV2,
                                   timeout=self.option("timeout"), follow_redirects=True))

    def length_limit(self) -> Limit:
        """Cohere counts tokens per document, the query apart, and cuts silently past the limit."""
        return Limit(self.option("max_tokens_per_doc") or COHERE_TOKENS_PER_DOC, includes_query=False)

    def _build(self, client_class: Any, http: httpx.Client | httpx.AsyncClient) -> Any:
        kwargs: dict[str, Any] = {
            # A callable keeps the key inside SecretStr instead of a plain attribute of the client.
            "api_key": self.sdk_key,
            "client_name": "swaprank",
            "timeout": self.option("timeout"),
            "max_retries": 0,  # retries are ours (tenacity), never multiplied by the SDK's
            "httpx_client": http,  # ours, to share one TLS context between event loops
        }
        if self.option("base_url"):
            kwargs["base_url"] = self.option("base_url").rstrip("/")
        return client_class(**kwargs)

    def _request(self, query: str, texts: list[str], timeout: float) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "model": self.spec.model, "query": query, "documents": texts,
            "request_options": {"timeout_in_seconds": timeout, "max_retries": 0},
        }
        if self.option("max_tokens_per_doc") is not None:
            kwargs["max_tokens_per_doc"] = self.option("max_tokens_per_doc")
        return kwargs

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:
        raw = self._clients.sync.with_raw_response.rerank(**self._request(query, texts, timeout))
        return self._read(raw.response, len(texts))

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:
        raw = await self._clients.for_loop().with_raw_response.rerank(**self._request(query, texts, timeout))
        return self._read(raw.response, len(texts))

    def _read(self, response: httpx.Response, count: int) -> Part:
        body = response.json()  # the SDK already parsed it once, so it is valid JSON
        request_id = request_id_from(response.headers) or dig(body, "id")
        return COHERE_RANKING.read(body, count, vendor=self.vendor, request_id=request_id)
