"""``swaprank export``: build a fast-path artifact ahead of time (for container images and CI).

    swaprank export "cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2?quantize=int8" --out ./reranker-int8

The directory it writes is served by ``cross-encoder:./reranker-int8`` with only the runtime,
``tokenizers`` and numpy installed: no torch. Without ``--out`` the artifact goes to the cache,
where the same spec finds it later. The manifest's parity numbers are printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from swaprank.config import parse_spec
from swaprank.types import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a cross-encoder config string, e.g. 'cross-encoder:<model>?quantize=int8'")
    parser.add_argument("--out", type=Path, default=None,
                        help="artifact directory to write (default: the cache, $SWAPRANK_CACHE_DIR)")
    parser.add_argument("--calibration", type=Path, default=None,
                        help="JSON lines of {\"query\": ..., \"text\": ...} pairs from your domain for int8 "
                             "calibration (default: swaprank's built-in generic sample)")
    parser.add_argument("--force", action="store_true", help="rebuild even if --out already holds an artifact")


def run(args: argparse.Namespace) -> int:
    from swaprank.backends.fastpath.artifact import Manifest, is_artifact
    from swaprank.backends.fastpath.cache import cached_artifact, export_to
    from swaprank.backends.fastpath.calibration import load_pairs
    from swaprank.backends.fastpath.choice import choose

    spec = parse_spec(args.spec)
    if spec.backend != "cross-encoder":
        raise ConfigError(f"swaprank export builds local cross-encoders; {spec.backend!r} is served elsewhere")
    options = spec.option_dict
    runtime = options.get("runtime", options.get("backend", "auto"))
    plan = choose(runtime, options.get("precision"), options.get("quantize", "none"), export=True)
    pairs_file = args.calibration or options.get("calibration")
    calibration = load_pairs(pairs_file) if pairs_file else None
    if calibration and plan.quantize != "int8":
        raise ConfigError("--calibration applies to quantize=int8 only")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    common: dict[str, Any] = {
        "calibration": calibration, "trust_remote_code": bool(options.get("trust_remote_code", False)),
        "parity_max_diff": options.get("parity_max_diff"),
        "parity_min_agreement": options.get("parity_min_agreement"), "threads": options.get("threads"),
    }
    if args.out is None:
        target = cached_artifact(spec.model, plan, **common)
    else:
        if is_artifact(args.out) and not args.force:
            print(f"{args.out} already holds an artifact; pass --force to rebuild it", file=sys.stderr)
            target = args.out
        else:
            target = export_to(spec.model, args.out, plan, replace=True, **common)
    manifest = Manifest.read(target)
    print(json.dumps({"artifact": str(target), "runtime": manifest.runtime, "precision": manifest.precision,
                      "quantize": manifest.quantize, "parity": manifest.parity}, indent=2))
    return 0
