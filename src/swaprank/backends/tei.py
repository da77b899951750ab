"""Hugging Face text-embeddings-inference (TEI) ``POST /rerank``; the model part is the server URL.

``tei:http://host:8080`` talks to a TEI server running a reranker (a sequence-classification
model). TEI rejects more than ``--max-client-batch-size`` texts per request (32 by default), hence
that default for ``max_docs_per_request``. ``raw_scores: false`` makes TEI return sigmoid
probabilities, already on [0, 1].

TEI says what it accepts at ``GET /info`` (``max_input_length``, ``model_id``): unless
``max_length`` is given, the first call asks, so long documents are windowed client-side within
the server's real limit (and counted with the served model's tokenizer when it is in the local
cache) instead of being cut by ``truncate`` or rejected with 413.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import urlparse

from pydantic import SecretStr

from swaprank.backends.hosted import Part, dig, network_options, positive_int, ranked_scores, request_id_from
from swaprank.backends.hosted.selfhosted import SelfHostedBackend
from swaprank.redaction import redact_config
from swaprank.specs import BackendSpec, Option
from swaprank.types import ConfigError, Usage
from swaprank.windows import Limit


class TEIBackend(SelfHostedBackend):
    vendor: ClassVar[str] = "tei"
    default_model: ClassVar[str | None] = None  # the "model" is the server URL
    model_hint: ClassVar[str] = "none: the model part is the server URL"
    # The model part says where documents (and a key given in code) go: refused when untrusted.
    model_is_address: ClassVar[bool] = True
    options: ClassVar[dict[str, Option]] = {
        **network_options(max_docs_per_request=32, base_url=False),
        "truncate": Option(bool, True, "let TEI cut pairs longer than the model's window (false: fail instead)"),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)  # a key is sent only when given (TEI --api-key, HF endpoints)
        self.url = self.server_url.rstrip("/") + "/rerank"
        self._info = self.server_facts(self.server_url.rstrip("/") + "/info")

    def check_address(self, spec: BackendSpec) -> str:
        """The model part is the server's URL (checked before any HTTP client exists)."""
        parsed = urlparse(spec.model)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            # The value itself is not echoed: a malformed address may still carry credentials.
            raise ConfigError("tei needs the server URL as its model, like tei:http://127.0.0.1:8080; got "
                              f"{redact_config(spec.model)!r}")
        return spec.model

    def server_limit(self) -> Limit | None:
        tokens = positive_int(dig(self._info.get(), "max_input_length"))
        return Limit(tokens) if tokens is not None else None

    @property
    def label(self) -> str:
        """``tei:<model id the server reports>`` once ``/info`` has answered; ``tei`` before (never the URL)."""
        model_id = dig(self._info.known(), "model_id")
        return f"tei:{model_id}" if isinstance(model_id, str) and model_id and "://" not in model_id else "tei"

    def tokenizer_name(self) -> str | None:
        model_id = dig(self._info.get(), "model_id")
        return model_id if isinstance(model_id, str) and model_id else None

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
