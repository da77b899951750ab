"""``swaprank batch``: score (query, document) pairs from a file on Ray Data, resumably.

    swaprank batch --input pairs.jsonl --output scores.parquet --model "cross-encoder:<model>"

``--output`` is a directory of Parquet parts that ``pandas.read_parquet`` reads as one table
(``row``, ``query``, ``text``, any ``id``/``query_id``/``doc_id`` of the input, ``score`` on [0, 1],
``raw_score``). Run the same command again after a crash or Ctrl-C and it scores only what is
missing. Without ``--address`` it starts an embedded Ray on this machine (loopback only, usage stats
and dashboard off); ``--address`` joins a running cluster.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from swaprank import parse_chain
from swaprank.batch.job import DEFAULT_BATCH_SIZE
from swaprank.cli.options import add_untrusted_argument, model_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", type=Path, required=True,
                        help='pairs: .jsonl (one {"query": ..., "text": ..., "id": ...} per line) or .parquet')
    parser.add_argument("--output", type=Path, required=True,
                        help="output directory of Parquet parts (created; rerun with the same one to resume)")
    parser.add_argument("--model", default=None, help="config string (default: $SWAPRANK_MODEL)")
    add_untrusted_argument(parser)
    parser.add_argument("--address", default=None,
                        help="Ray cluster to join (ray://HOST:10001, HOST:6379 or 'auto'); default: an embedded Ray")
    parser.add_argument("--num-actors", type=int, default=1, help="model replicas (Ray actors), default 1")
    parser.add_argument("--cpus-per-actor", type=float, default=None,
                        help="CPUs reserved per actor (default: this machine's CPUs split between the actors; "
                             "1 on a cluster)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"pairs per batch, i.e. per part written (default {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--limit", type=int, default=None,
                        help="score at most this many of the missing pairs in this run (the next run continues)")
    parser.add_argument("--no-text", action="store_true", help="leave the document text out of the output")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")


def run(args: argparse.Namespace) -> int:
    from swaprank.batch.job import BatchSettings, run_batch

    if args.untrusted_model:  # checked here, before Ray starts: the actors parse the same string
        parse_chain(model_argument(args), trusted=False)
    settings = BatchSettings(input=args.input, output=args.output, model=args.model, address=args.address,
                             num_actors=args.num_actors, batch_size=args.batch_size,
                             cpus_per_actor=args.cpus_per_actor, keep_text=not args.no_text, limit=args.limit,
                             progress=not args.quiet)
    summary = run_batch(settings)
    print(json.dumps(summary.as_dict()) if args.json else summary.line())
    if summary.remaining and args.limit is None:
        print(f"swaprank batch: {summary.remaining} pairs were not scored", file=sys.stderr)
        return 1
    return 0
