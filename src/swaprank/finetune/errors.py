"""The typed errors of ``swaprank finetune`` (data problems reuse ``swaprank.eval``'s ``DatasetError``)."""

from __future__ import annotations

from swaprank.types import SwapRankError


class FinetuneError(SwapRankError, ValueError):
    """A fine-tuning run cannot start or continue: bad options, a base model that is not there, no data left."""


class BaseModelNotFoundError(FinetuneError, FileNotFoundError):
    """``--base`` names neither a local model directory nor a loadable model."""
