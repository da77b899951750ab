"""Soft labels from a bi-encoder teacher: the listwise target says more than "one positive, N zeros".

Why: a cross-encoder built on an encoder such as all-MiniLM-L6-v2 starts with a fresh head on a
[CLS] token the encoder was never trained to use, and a few hundred labelled queries give it one
bit per pair. The bi-encoder it came from already ranks SciFact about as well as BM25, so its
cosine scores over the same candidates (which negatives are near misses, which are far off) carry
far more signal per step. With ``--teacher`` the listwise target of each training row is:

* a negative: ``cosine / temperature`` (0.05, the scale all-MiniLM-L6-v2 was trained with, so the
  softmax is the distribution the teacher itself was trained to produce);
* a judged positive: its own teacher logit, lifted to at least ``margin`` above the best negative of
  its row, so the labels always put positives first and the teacher only orders the rest.

``ListNetLoss`` takes the softmax of these labels as the target distribution. Distilling the base
model's own bi-encoder uses no data beyond the training queries and the corpus.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from swaprank.eval.loader import BeirDataset
from swaprank.finetune.errors import FinetuneError
from swaprank.finetune.mining import Mined

TeacherScores = dict[str, dict[str, float]]  # query id -> doc id -> cosine


def bi_encoder_scores(dataset: BeirDataset, mined: Mined, model_path: str, *,
                      cache_dir: Path | None = None) -> TeacherScores:
    """Cosine of every training query with its positives and every eligible negative."""
    from sentence_transformers import SentenceTransformer

    from swaprank.eval.first_stage import encode_corpus

    try:
        model = SentenceTransformer(model_path, device="cpu")
    except (OSError, ValueError) as exc:
        raise FinetuneError(f"--teacher {model_path}: cannot load it as a sentence-transformers model ({exc})") from exc
    doc_ids, doc_emb = encode_corpus(dataset, model, model_path, cache_dir=cache_dir)
    row_of = {d: i for i, d in enumerate(doc_ids)}
    query_ids = list(dataset.query_ids)
    query_emb = model.encode([dataset.queries[q] for q in query_ids], normalize_embeddings=True,
                             convert_to_numpy=True, show_progress_bar=False)
    scores: TeacherScores = {}
    for q, q_emb in zip(query_ids, query_emb, strict=True):
        docs = [d for d, r in dataset.qrels[q].items() if r > 0] + mined.negatives.get(q, [])
        rows = [row_of[d] for d in dict.fromkeys(docs) if d in row_of]
        values = doc_emb[rows] @ q_emb
        scores[q] = {doc_ids[r]: float(v) for r, v in zip(rows, values, strict=True)}
    return scores


def soft_labels(cosines: Sequence[float], relevant: Sequence[bool], temperature: float, margin: float) -> list[float]:
    """Listwise target logits for one row (see the module docstring)."""
    if len(cosines) != len(relevant):
        raise FinetuneError(f"{len(cosines)} teacher scores for {len(relevant)} documents")
    logits = [c / temperature for c in cosines]
    negatives = [v for v, rel in zip(logits, relevant, strict=True) if not rel]
    floor = (max(negatives) + margin) if negatives else float("-inf")
    return [max(v, floor) if rel else v for v, rel in zip(logits, relevant, strict=True)]


def row_labels(scores: Mapping[str, float], docs: Sequence[str], n_positives: int, temperature: float,
               margin: float) -> list[float]:
    """Soft labels for a row whose first ``n_positives`` documents are its positives."""
    missing = [d for d in docs if d not in scores]
    if missing:
        raise FinetuneError(f"no teacher score for document(s) {missing[:3]}")
    return soft_labels([scores[d] for d in docs], [i < n_positives for i in range(len(docs))], temperature, margin)
