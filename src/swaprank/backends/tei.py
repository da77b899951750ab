"""Hugging Face text-embeddings-inference (TEI) ``POST /rerank``; the model part is the server URL.

``tei:http://host:8080`` talks to a TEI server running a reranker (a sequence-classification
model). TEI rejects more than ``--max-client-batch-size`` texts per request (32 by default), hence
that default for ``max_docs_per_request``. ``raw_scores: false`` makes TEI return sigmoid
probabilities, already on [0, 1].
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlparse

from pydantic import SecretStr

from swaprank.backends.http import JsonRerankBackend, Part, network_options, ranked_scores, request_id_from
from swaprank.config import BackendSpec, Option
from swaprank.types import ConfigError, Usage


class TEIBackend(JsonRerankBackend):
    vendor: ClassVar[str] = "tei"
    default_model: ClassVar[str | None] = None  # the "model" is the server URL
    options: ClassVar[dict[str, Option]] = {
        **network_options(max_docs_per_request=32, base_url=False),
        "truncate": Option(bool, True, "let TEI cut pairs longer than the model's window (false: fail instead)"),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        parsed = urlparse(spec.model)  # checked first: a bad spec opens no HTTP client
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"tei needs the server URL as its model, like tei:http://127.0.0.1:8080; "
                              f"got {spec.model!r}")
        super().__init__(spec, api_key=api_key)
        self.url = spec.model.rstrip("/") + "/rerank"

    def key_required(self) -> bool:
        return False  # self-hosted; a key is sent only when given (TEI --api-key, HF endpoints)

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:
        return {"query": query, "texts": texts, "raw_scores": False, "truncate": self.option("truncate"),
                "return_text": False}

    def _read(self, data: Any, headers: Any, count: int) -> Part:
        request_id = request_id_from(headers)
        items = data if isinstance(data, list) else None  # TEI answers with a bare array
        scores = ranked_scores(items, count, vendor=self.vendor, score_key="score", request_id=request_id)
        tokens = (headers or {}).get("x-compute-tokens", "")
        usage = Usage(total_tokens=int(tokens)) if tokens.isdigit() else None
        return Part(scores, usage, request_id)
