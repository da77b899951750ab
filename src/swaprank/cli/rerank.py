"""``swaprank rerank``: rerank documents from the shell, one JSON line out per result.

Documents come as arguments, or on stdin as lines of plain text or JSON objects
(``{"text": ..., "id": ..., "metadata": {...}}``), so the command composes with ``jq`` and files.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from swaprank import Reranker
from swaprank.cli.options import add_model_arguments, model_argument, reranker_options
from swaprank.types import InvalidInputError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser)
    parser.add_argument("--query", "-q", required=True)
    parser.add_argument("documents", nargs="*", help="documents (default: read lines from stdin)")


def _read_stdin() -> list[Any]:
    docs: list[Any] = []
    for number, line in enumerate(sys.stdin, start=1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        if line.lstrip().startswith("{"):
            try:
                docs.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"stdin line {number} is not valid JSON: {exc}") from None
        else:
            docs.append(line)
    return docs


HOW_TO_PASS = ('pass them as arguments (swaprank rerank -q "query" "first document" "second document") or on '
               'stdin, one per line: plain text or JSON {"text": ..., "id": ...} (cat docs.jsonl | swaprank rerank -q '
               '"query")')


def run(args: argparse.Namespace) -> int:
    reranker = Reranker(model_argument(args), **reranker_options(args))  # a bad model fails before reading
    if not args.documents and sys.stdin.isatty():
        print("swaprank rerank: reading documents from stdin, one per line; end with Ctrl-D", file=sys.stderr)
    documents = args.documents or _read_stdin()
    if not documents:
        raise InvalidInputError(f"no documents to rerank: {HOW_TO_PASS}")
    result = reranker.rerank(args.query, documents)
    for hit in result:
        print(json.dumps({"index": hit.index, "score": hit.score, "raw_score": hit.raw_score,
                          "id": hit.id, "text": hit.text}, ensure_ascii=False))
    print(json.dumps({"model": result.model, "windowed": result.windowed, "truncated": result.truncated}),
          file=sys.stderr)
    return 0
