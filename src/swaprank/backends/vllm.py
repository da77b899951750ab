"""vLLM's rerank API (``vllm serve <cross-encoder>``): a thin specialisation of ``JinaBackend``.

vLLM answers Jina's wire format at ``POST /v1/rerank`` (``{model, query, documents, top_n}`` ->
``{id, model, usage: {total_tokens}, results: [{index, document, relevance_score}]}``), so this
class only changes what differs: ``base_url`` is required (vLLM is self-hosted: there is no
default URL), the key is optional (``vllm serve --api-key``; env ``VLLM_API_KEY``), the body has
no ``return_documents`` (not a field of vLLM's ``RerankRequest``, which would log it as ignored),
and ``endpoint=score`` selects vLLM's older score API instead, ``POST /score`` with
``{model, text_1: query, text_2: [documents]}`` -> ``{data: [{index, score}], usage: {prompt_tokens,
total_tokens}}`` (wire formats: vllm/entrypoints/pooling/score/protocol.py).

vLLM rejects a pair longer than the model's window with HTTP 400. Unless ``max_length`` is given
(or ``truncate_prompt_tokens``, which has the server cut pairs instead), the first call asks
``GET /v1/models`` for the served model's ``max_model_len``, so long documents are windowed
client-side; a failure to ask is logged once and retried a minute later.

A Qwen3-Reranker (any model whose name contains ``qwen3-reranker``, or ``prompt_format=qwen3``) gets
its prompt template written here, ``instruction=`` included (:mod:`swaprank.backends.hosted.prompting`).

Cross-encoders come back through the model's activation, on [0, 1]; a model served without one
returns logits: ``activation=sigmoid`` then maps them once.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import SecretStr

from swaprank.backends.hosted import (
    Part,
    Ranking,
    activation_option,
    dig,
    network_options,
    positive_int,
    request_id_from,
)
from swaprank.backends.hosted.prompting import Prompting, qwen3_reranker
from swaprank.backends.hosted.selfhosted import SelfHostedBackend
from swaprank.backends.jina import JinaBackend, rerank_url
from swaprank.specs import BackendSpec, Option
from swaprank.windows import Limit

Endpoint = Literal["rerank", "score"]
# The score API's answer: {data: [{index, score}], usage: {prompt_tokens, total_tokens}}.
SCORE_RANKING = Ranking(results=("data",), score_key="score")


class VLLMBackend(SelfHostedBackend, JinaBackend):
    vendor: ClassVar[str] = "vllm"
    example_url: ClassVar[str] = "http://127.0.0.1:8000"
    default_model: ClassVar[str | None] = None  # the served model name: vllm:BAAI/bge-reranker-v2-m3
    model_hint: ClassVar[str] = "none: the served model's name (`base_url` required)"
    key_env: ClassVar[tuple[str, ...]] = ("VLLM_API_KEY",)
    model_limits: ClassVar[dict[str, int]] = {}  # the window is the server's --max-model-len: max_length
    options: ClassVar[dict[str, Option]] = {
        **network_options(max_docs_per_request=1000),
        **activation_option("identity"),
        "endpoint": Option(str, "rerank", "which vLLM API: rerank (POST /v1/rerank) | score (POST /score)",
                           choices=("rerank", "score")),
        "prompt_format": Option(str, "auto", "how queries and documents are written for the model: qwen3 (the "
                                "Qwen3-Reranker template, with instruction=) | none (as given) | auto (qwen3 "
                                "when the model name contains qwen3-reranker)", choices=("auto", "qwen3", "none")),
        "truncate_prompt_tokens": Option(int, None, "have vLLM cut each pair to this many tokens instead of "
                                         "answering 400 (sent only when set)", minimum=1),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        self.url = vllm_url(self.server_url, self.option("endpoint"))
        self._models = self.server_facts(vllm_root(self.server_url) + "/v1/models")

    def prompting(self) -> Prompting | None:
        """Qwen3-Reranker served by vLLM scores the yes/no logits of its chat prompt, which the client
        must write (vLLM's example does the same); other served cross-encoders take raw text."""
        fmt = self.option("prompt_format")
        if fmt == "qwen3" or (fmt == "auto" and "qwen3-reranker" in self.spec.model.lower()):
            return qwen3_reranker(self.option("instruction"))
        return None

    def instruction_refusal(self) -> str:
        return "the served model takes raw text; prompt_format=qwen3 writes the Qwen3-Reranker template"

    def server_limit(self) -> Limit | None:
        """The served model's ``max_model_len`` from ``GET /v1/models`` (asked once); none when
        ``truncate_prompt_tokens`` asks the server to cut instead."""
        if self.option("truncate_prompt_tokens") is not None:
            return None
        models = dig(self._models.get(), "data")
        if not isinstance(models, list):
            return None
        entries = [m for m in models if isinstance(m, dict)]
        served = [m for m in entries if m.get("id") == self.spec.model] or (entries if len(entries) == 1 else [])
        tokens = positive_int(served[0].get("max_model_len") if served else None)
        return Limit(tokens) if tokens is not None else None

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:
        body: dict[str, Any]
        if self.option("endpoint") == "score":
            body = {"model": self.spec.model, "text_1": query, "text_2": texts}
        else:
            # top_n = all: the engine applies top_n after merging split requests.
            body = {"model": self.spec.model, "query": query, "documents": texts, "top_n": len(texts)}
        if self.option("truncate_prompt_tokens") is not None:
            body["truncate_prompt_tokens"] = self.option("truncate_prompt_tokens")
        return body

    def _read(self, data: Any, headers: Any, count: int) -> Part:
        ranking = SCORE_RANKING if self.option("endpoint") == "score" else self.ranking
        return ranking.read(data, count, vendor=self.vendor, request_id=request_id_from(headers))


def vllm_url(base_url: str, endpoint: Endpoint | str) -> str:
    """``http://host:8000``, ``.../v1`` or a full route -> the route of ``endpoint`` (vLLM serves
    ``/rerank``, ``/v1/rerank``, ``/score`` and ``/v1/score`` alike)."""
    url = base_url.rstrip("/")
    for route in ("/rerank", "/score"):
        url = url.removesuffix(route)
    return url + "/score" if endpoint == "score" else rerank_url(url)


def vllm_root(base_url: str) -> str:
    """The server root, where ``/v1/models`` is, from any accepted ``base_url`` form."""
    return base_url.rstrip("/").removesuffix("/rerank").removesuffix("/score").removesuffix("/v1")

