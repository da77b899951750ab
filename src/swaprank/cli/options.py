"""The options every command that builds a Reranker shares: the model spec and the policy knobs.

One definition, so ``swaprank rerank`` and ``swaprank serve`` spell and validate them the same way
and a policy option added to the Reranker reaches every command at once.
"""

from __future__ import annotations

import argparse
from typing import Any


def add_model_arguments(parser: argparse.ArgumentParser, *, policy: bool = False) -> None:
    """``--model``, ``--top-n`` and ``--score-threshold``; with ``policy`` also ``--min-results``,
    ``--fuse``, ``--on-error`` and ``--cache-size`` (what a long-running service wants to set)."""
    parser.add_argument("--model", default=None, help="config string (default: $SWAPRANK_MODEL)")
    parser.add_argument("--top-n", type=int, default=None)
    parser.add_argument("--score-threshold", type=float, default=None)
    if policy:
        parser.add_argument("--min-results", type=int, default=0,
                            help="keep at least this many documents when --score-threshold drops more")
        parser.add_argument("--fuse", choices=("rrf",), default=None,
                            help="fuse the model's rank with the input (first-stage) rank")
        parser.add_argument("--on-error", choices=("raise", "passthrough"), default="raise",
                            help="when every model of the chain fails: an error, or the input order")
        parser.add_argument("--cache-size", type=int, default=0, help="score cache entries (0: no cache)")


def reranker_options(args: argparse.Namespace) -> dict[str, Any]:
    """The Reranker keyword arguments among ``args`` (only those the command defined)."""
    names = ("top_n", "score_threshold", "min_results", "fuse", "on_error", "cache_size")
    return {name: getattr(args, name) for name in names if hasattr(args, name)}
