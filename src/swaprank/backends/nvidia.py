"""NVIDIA NeMo Retriever rerankers: the hosted API catalog and self-hosted NIM containers, over httpx.

Hosted (``ai.api.nvidia.com``), every model has its own route, named after the model with dots
written as underscores: ``nvidia/llama-3.2-nv-rerankqa-1b-v2`` is served at
``/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking`` (the table in
langchain-nvidia-ai-endpoints, ``_statics.RANKING_MODEL_TABLE``). A self-hosted NIM serves every
model at ``POST {base_url}/v1/ranking`` and usually needs no key.

Both take ``{model, query: {text}, passages: [{text}], truncate?}`` and answer
``{rankings: [{index, logit}]}`` sorted by logit. The values are raw **logits**, so the
``activation`` option defaults to ``sigmoid`` (``HostedBackend`` applies it once; ``raw_score``
keeps the logit).

The hosted API runs on NVIDIA Cloud Functions, which may answer ``202`` with an ``NVCF-REQID``
header while the request is queued; the result is then fetched from the NVCF status route
within the same attempt's time budget (a self-hosted NIM never answers 202;
:mod:`swaprank.backends.hosted.nvcf` does the polling).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr

from swaprank.backends.hosted import (
    JsonRerankBackend,
    Part,
    Ranking,
    activation_option,
    network_options,
    nvcf,
    request_id_from,
)
from swaprank.backends.hosted.options import SENDS_CREDENTIALS
from swaprank.backends.hosted.urls import route_url
from swaprank.specs import BackendSpec, Option

NVIDIA_URL = "https://ai.api.nvidia.com/v1/retrieval"
# Where NVIDIA Cloud Functions hands out the result of a request it answered 202 to.
NVCF_STATUS_URL = "https://api.nvcf.nvidia.com/v2/nvcf/pexec/status/{request_id}"
POLL_INTERVAL = 0.1  # seconds between polls of a queued (202) request
# Models whose hosted route does not follow the <model with _ for .>/reranking rule.
_HOSTED_ROUTES = {"nv-rerank-qa-mistral-4b:1": f"{NVIDIA_URL}/nvidia/reranking"}


class NvidiaBackend(JsonRerankBackend):
    vendor: ClassVar[str] = "nvidia"
    default_model: ClassVar[str | None] = "nvidia/llama-nemotron-rerank-1b-v2"
    key_env: ClassVar[tuple[str, ...]] = ("NVIDIA_API_KEY",)
    default_urls: ClassVar[tuple[str, ...]] = (NVIDIA_URL, NVCF_STATUS_URL)
    # Max tokens per (query, passage) pair, from the NIM support matrices (docs.nvidia.com/nim/
    # nemo-retriever/text-reranking). llama-3.2-nv-rerankqa-1b-v2 is 8192 on optimized profiles
    # but 4096 on a self-hosted non-optimized one: set max_length=4096 there.
    model_limits: ClassVar[dict[str, int]] = {
        "nvidia/llama-nemotron-rerank-1b-v2": 8192, "nvidia/llama-nemotron-rerank-500m-v2": 8192,
        "nvidia/llama-3.2-nv-rerankqa-1b-v2": 8192, "nvidia/llama-3.2-nemoretriever-500m-rerank-v2": 8192,
        "nvidia/nv-rerankqa-mistral-4b-v3": 512, "nv-rerank-qa-mistral-4b:1": 512,
    }
    options: ClassVar[dict[str, Option]] = {
        # 512 passages per request: the documented NIM request limit.
        **network_options(max_docs_per_request=512),
        "base_url": Option(str, None, "a self-hosted NIM (http://host:8000, .../v1 or .../v1/ranking) instead of the "
                           "API catalog; the key is then optional", **SENDS_CREDENTIALS),
        **activation_option("sigmoid"),
        "truncate": Option(str, None, "END: cut pairs over the model's window (from the passage's end); NONE: "
                           "reject them; default: the server's (model dependent)", choices=("NONE", "END")),
    }
    # The ranking API documents no usage; newer NIMs add OpenAI-style counters, read when present.
    ranking: ClassVar[Ranking] = Ranking(results=("rankings",), score_key="logit")

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        base_url = self.option("base_url")
        self.url = ranking_url(base_url) if base_url else hosted_url(spec.model)

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.spec.model, "query": {"text": query},
                                "passages": [{"text": text} for text in texts]}
        if self.option("truncate") is not None:
            body["truncate"] = self.option("truncate")
        return body

    def _read(self, data: Any, headers: Any, count: int) -> Part:
        request_id = request_id_from(headers) or nvcf.request_id(headers)
        return self.ranking.read(data, count, vendor=self.vendor, request_id=request_id)

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:
        answer = nvcf.post(self._http, self.url, self._body(query, texts), timeout, status_url=NVCF_STATUS_URL,
                           interval=POLL_INTERVAL)
        return self._read(*answer, len(texts))

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:
        # HostedBackend bounds the whole coroutine (post and polls) with asyncio.wait_for(timeout).
        answer = await nvcf.apost(self._http, self.url, self._body(query, texts), timeout,
                                  status_url=NVCF_STATUS_URL, interval=POLL_INTERVAL)
        return self._read(*answer, len(texts))


def hosted_url(model: str) -> str:
    """The API catalog route of ``model``: dots in its name become underscores."""
    return _HOSTED_ROUTES.get(model) or f"{NVIDIA_URL}/{model.replace('.', '_')}/reranking"


def ranking_url(base_url: str) -> str:
    """A self-hosted NIM: accept ``http://host:8000``, ``.../v1`` or the full ``.../v1/ranking``."""
    return route_url(base_url, "/ranking", also=("/reranking",))
