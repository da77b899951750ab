"""LangChain adapter: a drop-in document compressor backed by any swaprank model.

    from swaprank.langchain import RerankCompressor
    from langchain_classic.retrievers import ContextualCompressionRetriever
    retriever = ContextualCompressionRetriever(
        base_compressor=RerankCompressor(model="voyage:rerank-2.5", top_n=5), base_retriever=base)

Returns copies of the input documents (same ``id``, same metadata plus ``relevance_score`` and
``rerank_model`` (``backend:model``, never a URL), ``total_tokens`` / ``rerank_usage`` when the
vendor bills, and ``rerank_windows`` / ``rerank_truncated`` for a document that did not fit
the model); the caller's documents are never mutated. The rerank step shows up in
LangChain tracing as a retriever run named ``RerankCompressor`` whose metadata holds the settings
it applied (model, top_n, score_threshold, min_results, candidates).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import ConfigDict

from swaprank.backends.optional import missing

try:
    from langchain_core.callbacks import AsyncCallbackManager, CallbackManager, Callbacks
    from langchain_core.documents import BaseDocumentCompressor
    from langchain_core.documents import Document as LCDocument
except ImportError as _exc:  # name the extra, not a bare "No module named 'langchain_core'"
    raise missing("langchain", "swaprank.langchain (RerankCompressor)", _exc) from _exc

from swaprank import Reranker
from swaprank.adapter_fields import (
    PASSTHROUGH_KEY,
    RerankSettings,
    check_items,
    long_document_metadata,
    usage_metadata,
)
from swaprank.types import Document, RerankResult

SCORE_KEY = "relevance_score"
MODEL_KEY = "rerank_model"


class RerankCompressor(RerankSettings, BaseDocumentCompressor):
    """Rerank documents with the model named by ``model`` (a swaprank config string)."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    def _documents(self, documents: Sequence[LCDocument]) -> list[Document]:
        check_items(documents, LCDocument, "RerankCompressor.compress_documents",
                    "langchain_core.documents.Document objects",
                    {str: "wrap each text: Document(page_content=text) (from langchain_core.documents import "
                          "Document)"})
        return [Document(d.page_content, d.id) for d in documents]

    def _to_documents(self, documents: Sequence[LCDocument], result: RerankResult) -> list[LCDocument]:
        out = []
        usage = usage_metadata(result)
        for hit in result:
            original = documents[hit.index]
            extra: dict[str, Any] = {SCORE_KEY: None if result.passthrough else hit.score,
                                     MODEL_KEY: result.model_name or None, **usage}
            if result.passthrough:
                extra[PASSTHROUGH_KEY] = True
            extra.update(long_document_metadata(hit))
            out.append(original.model_copy(update={"metadata": {**original.metadata, **extra}}))
        return out

    @staticmethod
    def _run_metadata(engine: Reranker, documents: Sequence[LCDocument]) -> dict[str, Any]:
        """The settings this call applies (the engine it took), never the config string's URL or options."""
        return {"rerank_model": engine.model_name, "top_n": engine.top_n, "score_threshold": engine.score_threshold,
                "min_results": engine.min_results, "candidates": len(documents)}

    def compress_documents(
        self, documents: Sequence[LCDocument], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[LCDocument]:
        """Rerank ``documents`` for ``query``; keep the best ``top_n``."""
        engine = self._reranker  # one engine for the whole call, whatever is assigned meanwhile
        manager = CallbackManager.configure(inheritable_callbacks=callbacks,
                                            local_metadata=self._run_metadata(engine, documents))
        run = manager.on_retriever_start(None, query, name=type(self).__name__)
        try:
            result = self._to_documents(documents, engine.rerank(query, self._documents(documents)))
        except BaseException as exc:
            run.on_retriever_error(exc)
            raise
        run.on_retriever_end(result)
        return result

    async def acompress_documents(
        self, documents: Sequence[LCDocument], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[LCDocument]:
        """Native async: hosted backends use their async clients; local models a thread pool."""
        engine = self._reranker
        manager = AsyncCallbackManager.configure(inheritable_callbacks=callbacks,
                                                 local_metadata=self._run_metadata(engine, documents))
        run = await manager.on_retriever_start(None, query, name=type(self).__name__)
        try:
            reranked = await engine.arerank(query, self._documents(documents))
            result = self._to_documents(documents, reranked)
        except BaseException as exc:
            await run.on_retriever_error(exc)
            raise
        await run.on_retriever_end(result)
        return result


__all__ = ["RerankCompressor"]
