"""The settings both framework adapters expose, declared once.

Both LlamaIndex and LangChain components are pydantic models, so the adapters inherit these
fields (named like the official integrations: ``model``, ``top_n``) and get one ``Reranker``
built from them. Keeping the fields here means the two adapters cannot drift apart.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import BaseModel, Field, PrivateAttr, SecretStr

from swaprank.config import DEFAULT_MODEL, ENV_MODEL
from swaprank.reranker import Reranker
from swaprank.types import RankedDocument


def _default_model() -> str:
    return os.environ.get(ENV_MODEL) or DEFAULT_MODEL


class RerankSettings(BaseModel):
    model: str = Field(
        default_factory=_default_model,
        description="swaprank config string, e.g. 'cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2', "
        "'cohere:rerank-v3.5', or a fallback chain 'cohere:rerank-v3.5 | cross-encoder:...'.",
    )
    top_n: int | None = Field(default=5, description="How many results to keep (None: all).")
    score_threshold: float | None = Field(
        default=None, description="Drop results whose normalised [0, 1] score is below this."
    )
    on_error: Literal["raise", "passthrough"] = Field(
        default="raise", description="When every model fails: raise, or keep the input order (flagged)."
    )
    fuse: Literal["rrf"] | None = Field(
        default=None, description="'rrf' fuses the retriever's order with the reranker's order."
    )
    api_key: SecretStr | dict[str, SecretStr] | None = Field(
        default=None, exclude=True, repr=False,
        description="Key for the hosted backend (a mapping by backend name for a chain of several); "
        "else read from each vendor's env var. Never serialised.",
    )

    _reranker: Reranker = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        super().__init__(**data)
        # Build (and so validate) the Reranker now: a bad config string fails at construction with
        # swaprank's ConfigError (outside pydantic validation, which would rewrap it), not at the
        # first user query.
        self._reranker = Reranker(
            self.model,
            top_n=self.top_n,
            score_threshold=self.score_threshold,
            on_error=self.on_error,
            fuse=self.fuse,
            api_key=self.api_key,
        )

    @property
    def reranker(self) -> Reranker:
        """The engine behind this adapter (for ``warmup()`` or direct calls)."""
        return self._reranker

    def __getstate__(self) -> dict[Any, Any]:
        """Pickles carry the configuration, never the API key (it is re-read from env)."""
        state: dict[Any, Any] = super().__getstate__()
        fields = dict(state.get("__dict__", {}))
        fields["api_key"] = None
        state["__dict__"] = fields
        return state


PASSTHROUGH_KEY = "rerank_passthrough"
WINDOWS_KEY = "rerank_windows"
TRUNCATED_KEY = "rerank_truncated"


def long_document_metadata(hit: RankedDocument) -> dict[str, Any]:
    """What a document's metadata says about its length: only when it did not fit the model.

    ``rerank_windows``: the windows it was scored in (its score is their best); ``rerank_truncated``:
    part of it was never scored (``long_docs=truncate``, or more windows than ``max_windows``).
    """
    extra: dict[str, Any] = {}
    if hit.windows > 1:
        extra[WINDOWS_KEY] = hit.windows
    if hit.truncated:
        extra[TRUNCATED_KEY] = True
    return extra
