"""LlamaIndex adapter: a drop-in node postprocessor backed by any swaprank model.

    from swaprank.llama_index import RerankPostprocessor
    engine = index.as_query_engine(similarity_top_k=20,
        node_postprocessors=[RerankPostprocessor(model="cohere:rerank-v3.5", top_n=5)])

A thin translation: nodes in, new ``NodeWithScore`` objects out (the caller's nodes are never
mutated, so a retriever cache or a second postprocessor still sees the original scores).

Every call emits ``ReRankStartEvent`` (with the ``top_n`` and ``backend:model`` it applies) and
``ReRankEndEvent``, on every path: success, passthrough, and failure (no nodes; the error's type
in ``tags``); the end event's ``tags`` say who served the call and what it cost (``usage``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

from swaprank.backends.optional import missing

try:
    from llama_index.core.bridge.pydantic import Field
    from llama_index.core.callbacks import CBEventType, EventPayload
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import BaseNode, MetadataMode, NodeWithScore, QueryBundle
except ImportError as _exc:  # name the extra, not a bare "No module named 'llama_index'"
    raise missing("llama-index", "swaprank.llama_index (RerankPostprocessor)", _exc) from _exc

from swaprank import Reranker
from swaprank.adapter_fields import (
    PASSTHROUGH_KEY,
    USAGE_KEY,
    RerankSettings,
    check_items,
    long_document_metadata,
    result_summary,
)
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
            if result.usage is not None and result.usage.as_dict():
                extra[USAGE_KEY] = result.usage.as_dict()
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

    # ---------------------------------------------------------------- postprocess

    @staticmethod
    def _event_payload(engine: Reranker, nodes: Sequence[NodeWithScore], query: str) -> dict[str, Any]:
        return {EventPayload.NODES: nodes, EventPayload.MODEL_NAME: engine.model_name,
                EventPayload.QUERY_STR: query, EventPayload.TOP_K: engine.top_n}

    def _finish(self, event: Any, nodes: Sequence[NodeWithScore], result: RerankResult) -> list[NodeWithScore]:
        new_nodes = self._to_nodes(nodes, result)
        summary = result_summary(result)
        event.on_end(payload={EventPayload.NODES: new_nodes, "usage": summary.get("usage")})
        dispatcher.event(ReRankEndEvent(nodes=new_nodes, tags=summary))
        return new_nodes

    @contextmanager
    def _call(self, nodes: Sequence[NodeWithScore], query_bundle: QueryBundle | None) -> Iterator[_Call]:
        """Everything around one rerank, for both paths: events on every path, the callback event,
        translation in and out. The sync and async methods only run the engine inside it."""
        engine = self._reranker  # one engine for the whole call, whatever is assigned meanwhile
        # Wrong types are refused before the start event, which would fail on them in pydantic.
        check_items(nodes, NodeWithScore, "RerankPostprocessor.postprocess_nodes",
                    "llama_index.core.schema.NodeWithScore objects",
                    {BaseNode: "wrap each node: NodeWithScore(node=node) (from llama_index.core.schema import "
                               "NodeWithScore)",
                     str: "wrap each text: NodeWithScore(node=TextNode(text=text)) (from llama_index.core.schema "
                          "import NodeWithScore, TextNode)"})
        dispatcher.event(ReRankStartEvent(query=query_bundle, nodes=list(nodes), top_n=engine.top_n or len(nodes),
                                          model_name=engine.model_name))
        try:
            query = self._query(query_bundle)
            with self.callback_manager.event(CBEventType.RERANKING,
                                             payload=self._event_payload(engine, nodes, query)) as event:
                yield _Call(engine, query, self._documents(nodes),
                            lambda result: self._finish(event, nodes, result))
        except BaseException as exc:
            dispatcher.event(ReRankEndEvent(nodes=[], tags={"model_name": "", "error": type(exc).__name__}))
            raise

    @dispatcher.span
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        with self._call(nodes, query_bundle) as call:
            return call.finish(call.engine.rerank(call.query, call.documents))

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        with self._call(nodes, query_bundle) as call:
            return call.finish(await call.engine.arerank(call.query, call.documents))


class _Call(NamedTuple):
    engine: Reranker
    query: str
    documents: list[Document]
    finish: Callable[[RerankResult], list[NodeWithScore]]


__all__ = ["RerankPostprocessor"]
