"""``swaprank`` command line: rerank, export, eval, bench, demo.

Each subcommand lives in its own module exposing ``add_arguments(parser)`` and ``run(args) -> int``;
this file only wires them, and imports a subcommand's module (and so its heavy dependencies)
only when that subcommand runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from swaprank.backends.optional import require_all
from swaprank.types import MissingDependencyError, SwapRankError

_COMMANDS: dict[str, tuple[str, str]] = {
    "rerank": ("swaprank.cli.rerank", "rerank documents (JSON lines or arguments) for a query"),
    "export": ("swaprank.cli.export", "export a cross-encoder once (bf16/int8, ONNX/OpenVINO), serve it without torch"),
    "eval": ("swaprank.eval.cli", "measure retrieval quality on a BEIR-format dataset"),
    "bench": ("swaprank.eval.bench_cli", "measure reranking latency of one or more models"),
    "demo": ("swaprank.demo", "the demo: the negation trap, then BEIR SciFact counted by a stated rule"),
    "finetune": ("swaprank.cli.finetune", "fine-tune a cross-encoder on your data, hard negatives from your retriever"),
    "serve": ("swaprank.cli.serve", "serve the reranker over HTTP (Cohere v2 and Jina/vLLM rerank APIs)"),
    "batch": ("swaprank.cli.batch", "score (query, document) pairs from a file on Ray Data, resumably"),
}

# The pip extra each command needs and the packages it provides, checked before the command is
# imported or does any work (finetune would otherwise mine negatives for minutes before it imports
# ``datasets``). ``rerank`` and ``export`` need what the model's backend needs; the backend says so.
NEEDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "eval": ("eval", ("bm25s", "pytrec_eval", "Stemmer", "matplotlib", "tqdm", "sentence_transformers")),
    "demo": ("demo", ("sentence_transformers", "llama_index.core", "langchain_core")),
    "finetune": ("finetune", ("sentence_transformers", "datasets", "accelerate", "bm25s", "pytrec_eval",
                              "matplotlib")),
    "serve": ("serve", ("fastapi", "uvicorn", "prometheus_client")),
    "batch": ("ray", ("ray", "pyarrow", "filelock")),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="swaprank", description="One reranker, any backend, both frameworks.")
    sub = parser.add_subparsers(dest="command", metavar="{" + ",".join(_COMMANDS) + "}")
    for name, (_, help_text) in _COMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] in ("-h", "--help"):
        parser.print_help()
        return 0 if argv else 2
    name = argv[0]
    if name not in _COMMANDS:
        parser.error(f"unknown command {name!r}; choose from {', '.join(_COMMANDS)}")
    try:
        if name in NEEDS:
            extra, modules = NEEDS[name]
            require_all(modules, extra, f"swaprank {name}")
        module = importlib.import_module(_COMMANDS[name][0])
    except MissingDependencyError as exc:
        print(f"swaprank {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    command = argparse.ArgumentParser(prog=f"swaprank {name}", description=_COMMANDS[name][1])
    module.add_arguments(command)
    args = command.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SwapRankError as exc:  # a user's mistake or a backend outage: a message, not a traceback
        print(f"swaprank {name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
