"""Fidelity on real data: swaprank, both adapters and a direct ``CrossEncoder.predict`` agree.

The real MiniLM-L6 cross-encoder reranks BM25's top candidates for a slice of BEIR SciFact test
queries through four paths. Same model, same inputs: the rankings and nDCG@10 must be identical.
This proves the machinery adds nothing and loses nothing; it says nothing about model quality
(the full 300-query numbers are produced by ``swaprank eval``, see benchmarks/RESULTS.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document as LCDocument
from llama_index.core.schema import MetadataMode, NodeWithScore, TextNode
from sentence_transformers import CrossEncoder

from swaprank import Reranker
from swaprank.eval.first_stage import bm25
from swaprank.eval.loader import BeirDataset, load_beir
from swaprank.eval.metrics import evaluate
from swaprank.langchain import RerankCompressor
from swaprank.llama_index import RerankPostprocessor

pytestmark = [pytest.mark.quality, pytest.mark.slow]

QUERIES = 8
CANDIDATES = 15


@pytest.fixture(scope="module")
def setup(real_model: str, scifact: Path) -> tuple[BeirDataset, dict[str, list[str]], str]:
    dataset = load_beir(scifact, "test").head(QUERIES)
    candidates = {q: [doc for doc, _ in hits] for q, hits in bm25(dataset, CANDIDATES).items()}
    # truncate = exactly what CrossEncoder.predict does with an over-long pair
    return dataset, candidates, f"cross-encoder:{real_model}?long_docs=truncate"


def direct_predict(model_path: str, dataset: BeirDataset, candidates: dict[str, list[str]]) -> dict[str, list[str]]:
    model = CrossEncoder(model_path, device="cpu")
    rankings = {}
    for q, docs in candidates.items():
        scores = model.predict([(dataset.queries[q], dataset.doc_text(d)) for d in docs], show_progress_bar=False)
        order = sorted(range(len(docs)), key=lambda i: (-float(scores[i]), i))
        rankings[q] = [docs[i] for i in order]
    return rankings


def test_four_paths_give_the_same_ranking_and_ndcg(setup: tuple[BeirDataset, dict[str, list[str]], str],
                                                   real_model: str) -> None:
    dataset, candidates, spec = setup
    queries = list(candidates)

    expected = direct_predict(real_model, dataset, candidates)

    rr = Reranker(spec)
    results = rr.rerank_many([dataset.queries[q] for q in queries],
                             [[(dataset.doc_text(d), d) for d in candidates[q]] for q in queries])
    via_reranker = {q: [hit.id for hit in res] for q, res in zip(queries, results, strict=True)}

    postprocessor = RerankPostprocessor(model=spec, top_n=None, metadata_mode=MetadataMode.NONE)
    via_llama = {
        q: [n.node.node_id for n in postprocessor.postprocess_nodes(
            [NodeWithScore(node=TextNode(id_=d, text=dataset.doc_text(d)), score=0.0) for d in candidates[q]],
            query_str=dataset.queries[q])]
        for q in queries
    }

    compressor = RerankCompressor(model=spec, top_n=None)
    via_langchain = {
        q: [d.id for d in compressor.compress_documents(
            [LCDocument(id=d, page_content=dataset.doc_text(d)) for d in candidates[q]], dataset.queries[q])]
        for q in queries
    }

    assert via_reranker == expected
    assert via_llama == expected
    assert via_langchain == expected

    bm25_ndcg = evaluate(dataset.qrels, candidates)["ndcg@10"]
    reranked = {name: evaluate(dataset.qrels, r)["ndcg@10"]
                for name, r in [("direct", expected), ("reranker", via_reranker), ("llama", via_llama),
                                ("langchain", via_langchain)]}
    assert len(set(reranked.values())) == 1, reranked
    print(f"\nSciFact test, first {QUERIES} queries, BM25 top-{CANDIDATES}: "
          f"nDCG@10 BM25 {bm25_ndcg:.4f} -> reranked {reranked['direct']:.4f} (all four paths)")


def test_window_mode_scores_every_document_in_full(setup: tuple[BeirDataset, dict[str, list[str]], str],
                                                   real_model: str) -> None:
    """Default long_docs=window: nothing is cut, and documents that fit score exactly as in truncate mode."""
    dataset, candidates, spec = setup
    q = next(iter(candidates))
    docs = [dataset.doc_text(d) for d in candidates[q]]
    window = Reranker(f"cross-encoder:{real_model}").rerank(dataset.queries[q], docs)
    truncate = Reranker(spec).rerank(dataset.queries[q], docs)
    assert window.truncated == 0
    cut = truncate.truncated
    same = [w for w in window if len(w.text) < 1000]  # short abstracts fit the 512-token window
    by_index = {t.index: t.raw_score for t in truncate}
    assert same and all(w.raw_score == pytest.approx(by_index[w.index], abs=1e-4) for w in same)
    print(f"\nquery {q}: {cut} of {len(docs)} candidates exceed 512 tokens (cut in truncate mode, windowed by default)")
