#!/usr/bin/env bash
# The SciFact quality runs behind benchmarks/RESULTS.md. Run from the repository root:
#   bash benchmarks/run_scifact.sh            (all five; 1.5-2.5 h on 2 shared CPU cores)
#   bash benchmarks/run_scifact.sh A          (only run A; B, C, D, E, F likewise)
# Needs ../shared (model and data) beside the checkout. Outputs go to benchmarks/results/ (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/swaprank}
DATA=${DATA:-../shared/data/beir/scifact}
MODEL=${MODEL:-cross-encoder:../shared/models/minilm-l6-scifact-ce}
OUT=benchmarks/results
CACHE="$OUT/cache"
which=${1:-ABC}

# A: all 300 test queries; three first stages; each reranked at top-30 and fused with its first stage.
if [[ $which == *A* ]]; then
  $PY eval --data "$DATA" --split test --first-stage bm25,dense,hybrid --candidates 30 \
    --model "$MODEL" --fuse rrf --out "$OUT" --name scifact-300q-top30 --cache-dir "$CACHE" --no-progress
fi
# B: depth sweep on the first 60 queries in qrels order (not the same 60 as the model's own
# RESULTS.md, which took the first 60 by id): where does reranking BM25's pool stop paying?
# One thread: it shared the 2 cores with run A.
if [[ $which == *B* ]]; then
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} \
  $PY eval --data "$DATA" --split test --first-stage bm25 --candidates 10,20,30,50,100 --queries 60 \
    --model "$MODEL" --fuse rrf --out "$OUT" --name scifact-60q-depth-sweep --cache-dir "$CACHE" --no-progress
fi
# C: BM25 with an English stemmer (PyStemmer), to explain the gap to the BEIR paper's 0.665.
if [[ $which == *C* ]]; then
  $PY eval --data "$DATA" --split test --first-stage bm25 --bm25-stemmer english \
    --out "$OUT" --name scifact-300q-bm25-stemmed --no-progress
fi
# D: the model card's own setting (BM25 top-30, max_length 224, plain truncation), to check that
# swaprank reproduces the model's RESULTS.md and to measure what the default 512-token windows cost.
if [[ $which == *D* ]]; then
  $PY eval --data "$DATA" --split test --first-stage bm25 --candidates 30 \
    --model "$MODEL?max_length=224&long_docs=truncate" --fuse rrf \
    --out "$OUT" --name scifact-300q-bm25-top30-len224 --no-progress
fi
# E: which half of D's difference from run A is the length and which the long-document policy?
# BM25 top-30 at 512 tokens truncated, and at 224 tokens with windows.
if [[ $which == *E* ]]; then
  $PY eval --data "$DATA" --split test --first-stage bm25 --candidates 30 \
    --model "$MODEL?long_docs=truncate" --model "$MODEL?max_length=224" --fuse rrf \
    --out "$OUT" --name scifact-300q-bm25-top30-length-vs-windows --no-progress
fi
# F: the fast CPU path at the defaults (512 tokens, windows): exact fp32 torch, OpenVINO bf16 and
# OpenVINO static int8, BM25 top-30, all 300 queries. The artifacts are exported on first use.
if [[ $which == *F* ]]; then
  $PY eval --data "$DATA" --split test --first-stage bm25 --candidates 30 \
    --model "$MODEL" --model "$MODEL?precision=bf16" --model "$MODEL?quantize=int8" \
    --out "$OUT" --name scifact-300q-bm25-top30-fast-path --no-progress
fi
