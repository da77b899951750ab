"""The one value a loader returns: everything scoring and windowing need from a loaded model.

Both loaders (torch and exported artifacts) build the same frozen value, so the backend cannot end
up half-configured (a predict function from one path and a token limit from the other), and the
[0, 1] mapping and the windows are the same code whichever runtime computes the scores.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from swaprank.backends.contract import sigmoid
from swaprank.backends.cross_encoder.resolve import Target
from swaprank.backends.fastpath.choice import Plan
from swaprank.windows import Limit, TokenCounter, Windowing, WindowPolicy

if TYPE_CHECKING:
    from swaprank.backends.fastpath.tokenize import PairTokenizer

# The package's name, not this module's: logging configuration may already filter on it.
logger = logging.getLogger("swaprank.backends.cross_encoder")

# Tokens an LLM reranker's windows leave free: the template overhead is measured with an empty query
# and document, and a BPE tokenizer may merge a token differently at the edges of the real ones.
_TEMPLATE_MARGIN = 4

Predict = Callable[[list[tuple[str, str]]], list[float]]


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A loaded cross-encoder: raw scores for pairs, their [0, 1] mapping, and how pairs are counted.

    ``template_counter`` is set when a prompt or chat template wraps the pair (LLM rerankers): its
    own tokens then count as overhead in place of a BERT pair's ``[CLS]``/``[SEP]``. ``templated``
    without a counter means the template's size is unknown (a slow tokenizer), so no windows.
    """

    predict: Predict  # raw model outputs, one per (query, document) pair
    to_unit: Callable[[float], float]  # raw output -> [0, 1], decided once per model
    max_length: int  # tokens per (query, document) pair the model reads
    plan: Plan  # the runtime, precision and quantization that actually serve the scores
    tokenizer: PairTokenizer | None  # None: a slow (Python) tokenizer, which has no offsets to window with
    template_counter: TokenCounter | None = None
    templated: bool = False
    causal_lm: bool = False  # an LLM reranker: scored by the yes/no logits after a chat-template prompt
    artifact: Path | None = None  # the exported directory serving the scores (onnx/openvino)

    def windowing(self, option: Callable[[str], Any]) -> Windowing | None:
        """The limit and token counter for the Reranker's long-document windows, or None when pairs
        must go whole (``option`` is read only when windows are possible)."""
        if self.template_counter is not None:  # a prompt wraps the pair: the template counts as overhead
            return Windowing(self.template_counter, Limit(self.max_length, margin=_TEMPLATE_MARGIN),
                             WindowPolicy.from_options(option))
        if self.templated or self.tokenizer is None:  # a slow (Python) tokenizer: no offsets, so no windows
            return None
        # No margin: a window cut inside a word may re-tokenize a token longer, which the model's own
        # truncation then drops; these windows are exactly the ones measured in benchmarks/RESULTS.md.
        return Windowing(self.tokenizer.counter, Limit(self.max_length), WindowPolicy.from_options(option))


def score_mapping(target: Target, native: str) -> Callable[[float], float]:
    """Decide once how this model's native output (its activation's name) becomes a [0, 1] score."""
    choice = target.option("activation")
    if choice == "sigmoid":
        return sigmoid
    if choice == "identity":
        return lambda x: min(1.0, max(0.0, x))
    if native == "sigmoid":  # the model already outputs probabilities
        return lambda x: x
    if native not in ("identity", "Identity"):
        logger.warning("cross-encoder %s uses activation %s; applying sigmoid to its output", target.model, native)
    return sigmoid
