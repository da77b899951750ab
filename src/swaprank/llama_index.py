"""LlamaIndex adapter: a drop-in node postprocessor backed by any swaprank model.

    from swaprank.llama_index import RerankPostprocessor
    engine = index.as_query_engine(similarity_top_k=20,
        node_postprocessors=[RerankPostprocessor(model="cohere:rerank-v3.5", top_n=5)])

A thin translation: nodes in, new ``NodeWithScore`` objects out (the caller's nodes are never
mutated, so a retriever cache or a second postprocessor still sees the original scores).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

from swaprank.adapter_fields import PASSTHROUGH_KEY, RerankSettings, long_document_metadata
from swaprank.types import Document, InvalidInputError, RerankResult

dispatcher = get_dispatcher(__name__)

RETRIEVAL_SCORE_KEY = "retrieval_score"


class RerankPostprocessor(RerankSettings, BaseNodePostprocessor):
    """Rerank retrieved nodes with the model named by ``model`` (a swaprank config string)."""

    keep_retrieval_score: bool = Field(
        default=False, description="Copy the first-stage score to metadata['retrieval_score']."
    )
    metadata_mode: MetadataMode = Field(
        default=MetadataMode.EMBED, description="Which metadata is part of the text the model sees."
    )

    @classmethod
    def class_name(cls) -> str:
        return "SwapRankRerank"

    # ---------------------------------------------------------------- translation

    def _query(self, query_bundle: QueryBundle | None) -> str:
        if query_bundle is None:
            raise InvalidInputError("RerankPostprocessor needs a query: pass query_bundle or query_str")
        return query_bundle.query_str

    def _documents(self, nodes: Sequence[NodeWithScore]) -> list[Document]:
        return [Document(n.node.get_content(metadata_mode=self.metadata_mode), n.node.node_id) for n in nodes]

    def _to_nodes(self, nodes: Sequence[NodeWithScore], result: RerankResult) -> list[NodeWithScore]:
        out = []
        for hit in result:
            original = nodes[hit.index]
            extra: dict[str, Any] = {}
            if self.keep_retrieval_score:
                extra[RETRIEVAL_SCORE_KEY] = original.score
            if result.passthrough:
                extra[PASSTHROUGH_KEY] = True
            extra.update(long_document_metadata(hit))
            node = original.node
            if extra:
                # A copy with its own metadata dict; the added keys stay out of the LLM and
                # embedding text so bookkeeping never leaks into prompts.
                node = node.model_copy(update={
                    "metadata": {**node.metadata, **extra},
                    "excluded_llm_metadata_keys": [*node.excluded_llm_metadata_keys, *extra],
                    "excluded_embed_metadata_keys": [*node.excluded_embed_metadata_keys, *extra],
                })
            # Passthrough keeps the retriever's score: the order is the retriever's, too.
            score = original.score if result.passthrough else hit.score
            out.append(NodeWithScore(node=node, score=score))
        return out

    def _start(self, query: QueryBundle | None, nodes: Sequence[NodeWithScore]) -> None:
        dispatcher.event(ReRankStartEvent(
            query=query, nodes=list(nodes), top_n=self.top_n or len(nodes), model_name=self.model
        ))

    # ---------------------------------------------------------------- postprocess

    def _event_payload(self, nodes: Sequence[NodeWithScore], query: str) -> dict[str, Any]:
        return {EventPayload.NODES: nodes, EventPayload.MODEL_NAME: self.model,
                EventPayload.QUERY_STR: query, EventPayload.TOP_K: self.top_n}

    @dispatcher.span
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        self._start(query_bundle, nodes)
        query = self._query(query_bundle)
        with self.callback_manager.event(CBEventType.RERANKING, payload=self._event_payload(nodes, query)) as event:
            new_nodes = self._to_nodes(nodes, self._reranker.rerank(query, self._documents(nodes)))
            event.on_end(payload={EventPayload.NODES: new_nodes})
        dispatcher.event(ReRankEndEvent(nodes=new_nodes))
        return new_nodes

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        self._start(query_bundle, nodes)
        query = self._query(query_bundle)
        with self.callback_manager.event(CBEventType.RERANKING, payload=self._event_payload(nodes, query)) as event:
            new_nodes = self._to_nodes(nodes, await self._reranker.arerank(query, self._documents(nodes)))
            event.on_end(payload={EventPayload.NODES: new_nodes})
        dispatcher.event(ReRankEndEvent(nodes=new_nodes))
        return new_nodes


__all__ = ["RerankPostprocessor"]
