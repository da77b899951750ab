"""The options every command that builds a Reranker shares: the model spec and the policy knobs.

One definition, so ``swaprank rerank`` and ``swaprank serve`` spell and validate them the same way
and a policy option added to the Reranker reaches every command at once.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

UNTRUSTED_HELP = ("parse the model config string (--model, or $SWAPRANK_MODEL) as untrusted: options that run code, "
                  "read local files or send a key elsewhere (trust_remote_code, base_url, tokenizer, a local model "
                  "path...) are refused (docs/design.md, 'Security')")


def add_untrusted_argument(parser: argparse.ArgumentParser) -> None:
    """``--untrusted-model``: for a config string a wrapper took from a less trusted source."""
    parser.add_argument("--untrusted-model", action="store_true", help=UNTRUSTED_HELP)


def add_model_arguments(parser: argparse.ArgumentParser, *, policy: bool = False) -> None:
    """``--model``, ``--top-n`` and ``--score-threshold``; with ``policy`` also ``--min-results``,
    ``--fuse``, ``--on-error`` and ``--cache-size`` (what a long-running service wants to set)."""
    parser.add_argument("--model", default=None, help="config string (default: $SWAPRANK_MODEL)")
    parser.add_argument("--top-n", type=int, default=None)
    parser.add_argument("--score-threshold", type=float, default=None)
    add_untrusted_argument(parser)
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
    options = {name: getattr(args, name) for name in names if hasattr(args, name)}
    if getattr(args, "untrusted_model", False):
        options["trusted"] = False
    return options


def model_argument(args: argparse.Namespace) -> str | None:
    """``--model``, else (with ``--untrusted-model``, which covers it too) ``$SWAPRANK_MODEL``; None lets
    the Reranker read the environment itself (as trusted)."""
    if args.model or not getattr(args, "untrusted_model", False):
        return args.model
    return os.environ.get("SWAPRANK_MODEL") or None
