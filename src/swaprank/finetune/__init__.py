"""``swaprank finetune``: adapt a cross-encoder to your corpus with hard negatives from your own first stage.

One concern per module: ``data`` (BEIR folder or query/positive pairs -> train and held-out splits),
``mining`` (hard negatives from a first-stage ranking, with the false-negative margin rule),
``model`` (the base: a cross-encoder, or an encoder given a fresh 1-label head), ``training``
(sentence-transformers' ``CrossEncoderTrainer``, the held-out evaluator, time budget, resume) and
``report`` (before/after on the held-out split through ``swaprank eval``'s runner, JSON + PNG).
Nothing here is imported by the core; torch, datasets and bm25s load only when a command runs.
"""

from swaprank.finetune.errors import FinetuneError

__all__ = ["FinetuneError"]
