"""Compare two rows of a `swaprank eval` JSON report query by query: mean nDCG@10 difference,
queries up/down, and the paired randomization p-value (the test `swaprank eval` uses against the
first stage), e.g. an int8 row against its fp32 row.

    .venv/bin/python benchmarks/compare_rows.py benchmarks/results/scifact-300q-bm25-top30-fast-path.json \\
        "top-30" "?quantize=int8 top-30"

Rows are picked by the first label containing each string (the first argument is the reference).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from swaprank.eval.metrics import paired_p_value  # noqa: E402


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    rows = json.loads(Path(argv[0]).read_text())["rows"]

    def pick(text: str) -> dict:
        return next(r for r in rows if r["model"] and text in r["label"])

    ref, other = pick(argv[1]), pick(argv[2])
    queries = sorted(ref["per_query_ndcg@10"])
    a = [ref["per_query_ndcg@10"][q] for q in queries]
    b = [other["per_query_ndcg@10"][q] for q in queries]
    diff = [y - x for x, y in zip(a, b, strict=True)]
    print(json.dumps({
        "reference": ref["label"], "other": other["label"], "queries": len(queries),
        "ndcg@10": [round(ref["metrics"]["ndcg@10"], 4), round(other["metrics"]["ndcg@10"], 4)],
        "mean_difference": round(sum(diff) / len(diff), 4),
        "up": sum(d > 1e-12 for d in diff), "down": sum(d < -1e-12 for d in diff),
        "paired_p": round(paired_p_value(a, b), 3),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
