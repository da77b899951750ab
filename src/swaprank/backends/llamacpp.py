"""llama.cpp's ``llama-server --reranking``: a thin specialisation of ``JinaBackend``.

llama-server answers Jina's wire format at ``POST /v1/rerank`` (``{model, query, documents, top_n}``
-> ``{model, object, usage: {prompt_tokens, total_tokens}, results: [{index, relevance_score}]}``,
tools/server ``format_response_rerank``). What differs, and is handled here:

- ``relevance_score`` is the model's raw output, a logit: ``activation=sigmoid`` by default maps it
  to [0, 1] once (``raw_score`` keeps the logit); ``activation=identity`` for a model that already
  ends in a sigmoid.
- One pair longer than the server's window fails the **whole** request with HTTP 500. Unless
  ``max_length`` is given, the first call asks ``GET /props`` for the slot's context
  (``default_generation_settings.n_ctx``, already divided by ``--parallel``), so long documents are
  windowed client-side. A rerank pair must also fit one physical batch (``-ub``, 512 unless set),
  which ``/props`` does not report: the limit taken from ``/props`` is therefore at most 512; set
  ``max_length`` when ``-ub`` was raised.
- ``base_url`` is required (self-hosted); a key is optional (``--api-key``; env ``LLAMACPP_API_KEY``).
  The model part names the model only for a multi-model router; a single-model server ignores it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr

from swaprank.backends.hosted import activation_option, dig, network_options
from swaprank.backends.jina import JinaBackend, rerank_url
from swaprank.backends.selfhosted import ServerFacts, self_hosted_url
from swaprank.specs import BackendSpec, Option
from swaprank.windows import Limit

DEFAULT_UBATCH = 512  # llama-server's default -ub: a rerank pair must fit one physical batch


class LlamaCppBackend(JinaBackend):
    vendor: ClassVar[str] = "llamacpp"
    default_model: ClassVar[str | None] = "default"  # a single-model llama-server ignores the name
    key_env: ClassVar[tuple[str, ...]] = ("LLAMACPP_API_KEY",)
    model_limits: ClassVar[dict[str, int]] = {}  # the window is the server's: max_length or /props
    options: ClassVar[dict[str, Option]] = {
        **network_options(max_docs_per_request=1000),
        **activation_option("sigmoid"),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        base_url = self_hosted_url(self.vendor, spec, "http://127.0.0.1:8080")  # before any HTTP client
        super().__init__(spec, api_key=api_key)
        self.url = rerank_url(base_url)
        props_url = self.url.removesuffix("/rerank").removesuffix("/v1") + "/props"
        self._props = ServerFacts(self.vendor, props_url, lambda url: self._http.get(url, self.option("timeout"))[0],
                                  self._scrub)

    def key_required(self) -> bool:
        return False  # a key is sent only when given (llama-server --api-key)

    def length_limit(self) -> Limit | None:
        explicit = self.option("max_length")
        if explicit is not None:
            return Limit(explicit)
        n_ctx = dig(self._props.get(), "default_generation_settings", "n_ctx")
        if isinstance(n_ctx, int) and not isinstance(n_ctx, bool) and n_ctx > 0:
            return Limit(min(n_ctx, DEFAULT_UBATCH))
        return None

    def tokenizer_name(self) -> str | None:
        return None  # a GGUF file's vocabulary is not in the Hugging Face cache: estimate (or tokenizer=)

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:
        # top_n = all: llama-server cuts to top_n when sent; the engine applies top_n after merging.
        return {"model": self.spec.model, "query": query, "documents": texts, "top_n": len(texts)}
