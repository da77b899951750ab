"""What checking an artifact's file digests adds to a cold start (issue 24, stores on disk).

Exports (or finds in the cache) the stand-in MiniLM-L6 as an artifact, then, in a fresh process per
run: hashes every file the manifest lists (``verify_files``, the check every load makes once per
process) and builds the runtime's session (``ArtifactScorer``), timing each; then checks again in
the same process (the memoised path a second load takes). The OS file cache is warm (the export or
an earlier run read the files): the number is the hashing, not the disk.

    .venv/bin/python benchmarks/bench_artifact_verify.py --runs 7 --spec '?runtime=onnx'

Writes benchmarks/results/bench_artifact_verify.json (gitignored) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.assets import missing_asset_hint, real_model_path  # noqa: E402

PROBE = """
import json, sys, time
from pathlib import Path
from swaprank.backends.fastpath.artifact import Manifest, verify_files
from swaprank.backends.fastpath.sessions import ArtifactScorer
directory = Path(sys.argv[1])
manifest = Manifest.read(directory)
t0 = time.perf_counter(); verify_files(directory, manifest); t1 = time.perf_counter()
ArtifactScorer(directory, manifest, precision=manifest.precision); t2 = time.perf_counter()
verify_files(directory, manifest); t3 = time.perf_counter()
size = sum((directory / name).stat().st_size for name in manifest.files)
print(json.dumps({"verify_s": t1 - t0, "load_s": t2 - t1, "again_s": t3 - t2, "bytes": size}))
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=real_model_path(), help="a local cross-encoder directory")
    parser.add_argument("--spec", default="?runtime=onnx", help="options of the artifact (default: onnx fp32)")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_artifact_verify.json")
    args = parser.parse_args(argv)
    if args.model is None:
        parser.error(missing_asset_hint("model"))
    from swaprank.backends.registry import default_registry
    from swaprank.config import parse_spec

    backend = default_registry().acquire(parse_spec(f"cross-encoder:{args.model}{args.spec}"))  # exports if needed
    directory = getattr(backend, "artifact", None)
    if directory is None:
        parser.error(f"{args.spec!r} is not served from an artifact (torch); pass an exported runtime")
    rows = []
    for _ in range(args.runs):
        done = subprocess.run([sys.executable, "-c", PROBE, str(directory)], capture_output=True, text=True,
                              check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    summary = {key: statistics.median(row[key] for row in rows) for key in ("verify_s", "load_s", "again_s")}
    summary["megabytes"] = rows[0]["bytes"] / 1e6
    summary["artifact"] = str(directory)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": rows, "median": summary}, indent=2) + "\n")
    print(f"artifact {directory} ({summary['megabytes']:.1f} MB), median of {args.runs} fresh processes:")
    print(f"  verify (SHA-256 of every file) {summary['verify_s'] * 1000:.1f} ms")
    print(f"  runtime session load           {summary['load_s'] * 1000:.1f} ms")
    print(f"  verify again, same process     {summary['again_s'] * 1000:.2f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
