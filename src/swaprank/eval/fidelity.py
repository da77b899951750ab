"""The same cross-encoder through four doors: a direct ``CrossEncoder.predict``, ``Reranker``, the
LlamaIndex postprocessor and the LangChain compressor.

Same model, same inputs, so every door must return the same ranking; any difference is the
machinery adding or losing something. The unit suite runs this on a few SciFact queries,
``benchmarks/bench_fidelity.py`` on all of them. swaprank runs with ``long_docs=truncate`` here
because that is what ``predict`` does with an over-long pair. Needs the ``cross-encoder``,
``llama-index`` and ``langchain`` extras (imported on call, so ``swaprank eval`` does not).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from swaprank.eval.loader import BeirDataset

PATHS = ("predict", "reranker", "llama_index", "langchain")
Rankings = dict[str, list[str]]  # query id -> document ids, best first


def swaprank_spec(model_path: str, max_length: int | None = None) -> str:
    options = "long_docs=truncate" + (f"&max_length={max_length}" if max_length else "")
    return f"cross-encoder:{model_path}?{options}"


def direct_predict(model_path: str, dataset: BeirDataset, candidates: Mapping[str, Sequence[str]],
                   max_length: int | None = None) -> Rankings:
    """The reference: sentence-transformers alone, ties broken by first-stage order (as swaprank does)."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(model_path, device="cpu", max_length=max_length)
    rankings = {}
    for q, docs in candidates.items():
        scores = model.predict([(dataset.queries[q], dataset.doc_text(d)) for d in docs], show_progress_bar=False)
        order = sorted(range(len(docs)), key=lambda i: (-float(scores[i]), i))
        rankings[q] = [docs[i] for i in order]
    return rankings


def through_swaprank(model_path: str, dataset: BeirDataset, candidates: Mapping[str, Sequence[str]],
                     max_length: int | None = None) -> dict[str, Rankings]:
    """Rankings by ``Reranker``, ``RerankPostprocessor`` and ``RerankCompressor``, keyed by door."""
    from langchain_core.documents import Document as LCDocument
    from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode

    from swaprank import Reranker
    from swaprank.langchain import RerankCompressor
    from swaprank.llama_index import RerankPostprocessor

    spec = swaprank_spec(model_path, max_length)
    rr = Reranker(spec)
    postprocessor = RerankPostprocessor(model=spec, top_n=None, metadata_mode=MetadataMode.NONE)
    compressor = RerankCompressor(model=spec, top_n=None)
    out: dict[str, Rankings] = {"reranker": {}, "llama_index": {}, "langchain": {}}
    for q, docs in candidates.items():
        query = dataset.queries[q]
        out["reranker"][q] = [str(hit.id) for hit in rr.rerank(query, [(dataset.doc_text(d), d) for d in docs])]
        nodes = [NodeWithScore(node=TextNode(id_=d, text=dataset.doc_text(d)), score=0.0) for d in docs]
        out["llama_index"][q] = [n.node.node_id for n in postprocessor.postprocess_nodes(nodes, query_str=query)]
        lc_docs = [LCDocument(id=d, page_content=dataset.doc_text(d)) for d in docs]
        out["langchain"][q] = [str(d.id) for d in compressor.compress_documents(lc_docs, query)]
    return out


def four_paths(model_path: str, dataset: BeirDataset, candidates: Mapping[str, Sequence[str]],
               max_length: int | None = None) -> dict[str, Rankings]:
    """Every door's rankings, keyed by the names in ``PATHS``."""
    return {"predict": direct_predict(model_path, dataset, candidates, max_length),
            **through_swaprank(model_path, dataset, candidates, max_length)}
