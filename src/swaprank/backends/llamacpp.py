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

from swaprank.backends.hosted import activation_option, dig, network_options, positive_int
from swaprank.backends.hosted.selfhosted import SelfHostedBackend
from swaprank.backends.jina import JinaBackend, rerank_url
from swaprank.specs import BackendSpec, Option
from swaprank.windows import Limit

DEFAULT_UBATCH = 512  # llama-server's default -ub: a rerank pair must fit one physical batch


class LlamaCppBackend(SelfHostedBackend, JinaBackend):
    vendor: ClassVar[str] = "llamacpp"
    example_url: ClassVar[str] = "http://127.0.0.1:8080"
    default_model: ClassVar[str | None] = "default"  # a single-model llama-server ignores the name
    key_env: ClassVar[tuple[str, ...]] = ("LLAMACPP_API_KEY",)
    model_limits: ClassVar[dict[str, int]] = {}  # the window is the server's: max_length or /props
    options: ClassVar[dict[str, Option]] = {
        **network_options(max_docs_per_request=1000),
        **activation_option("sigmoid"),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        self.url = rerank_url(self.server_url)
        self._props = self.server_facts(self.url.removesuffix("/rerank").removesuffix("/v1") + "/props")

    def server_limit(self) -> Limit | None:
        """The slot's context from ``GET /props``, at most one physical batch (see the module docstring)."""
        n_ctx = positive_int(dig(self._props.get(), "default_generation_settings", "n_ctx"))
        return Limit(min(n_ctx, DEFAULT_UBATCH)) if n_ctx is not None else None

    def tokenizer_name(self) -> str | None:
        return None  # a GGUF file's vocabulary is not in the Hugging Face cache: estimate (or tokenizer=)

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:
        # top_n = all: llama-server cuts to top_n when sent; the engine applies top_n after merging.
        return {"model": self.spec.model, "query": query, "documents": texts, "top_n": len(texts)}
