"""One local cross-encoder, the same SciFact candidates, every framework's own reranker, one process.

Contenders (each loads the same model directory):
  st-predict        sentence-transformers CrossEncoder.predict, default arguments (the raw model call)
  llamaindex-sbert  LlamaIndex SentenceTransformerRerank (llama-index-postprocessor-sbert-rerank)
  langchain-ce      LangChain CrossEncoderReranker + HuggingFaceCrossEncoder (langchain-community)
  rerankers         the `rerankers` library, model_type="cross-encoder" (skipped if not installed)
  swaprank          swaprank.Reranker("cross-encoder:<path>?long_docs=truncate")
  swaprank-llamaindex / swaprank-langchain   swaprank's RerankPostprocessor / RerankCompressor
  swaprank-window   swaprank's default long_docs=window (extra cost of scoring long documents fully;
                    excluded from the identical-top-10 check because it scores more text)
  fast-*            with --fast: the fast CPU path, one gain at a time (all with long_docs=truncate):
                    fast-onnx-fp32 / fast-openvino-fp32 (runtime alone, exact), fast-torch-bf16 (precision
                    alone, torch), fast-bf16 (precision=bf16: OpenVINO bf16), fast-onnx-int8 (ONNX Runtime
                    dynamic int8), fast-int8 (quantize=int8: OpenVINO static int8). Artifacts are exported
                    (or found in the cache) before timing starts. Their top-10 is compared with predict's
                    as an agreement fraction, not an identity (reduced precision may swap neighbours).

Every contender reranks the first stage's top `--candidates` BM25 candidates of the same queries.
Each query runs every contender in a rotated order, so slow drift (other processes on a shared
machine, thermal) spreads over all of them; we report medians and ratios, not absolute times alone.
Framework objects (nodes, LangChain Documents) are built outside the timed region: a pipeline has
them already. CrossEncoder.predict is wrapped with a timer, so for every contender built on it we
also know how much of its time was the model and how much was the framework around it.

    .venv/bin/python benchmarks/bench_local.py --queries 5 --candidates 100
    .venv/bin/python benchmarks/bench_local.py --queries 8 --candidates 100 --fast --skip rerankers,swaprank-window

Also reported: achieved GFLOP/s of each contender (the model's matmul FLOPs over the tokens it really
scores, divided by its time) against a plain fp32 GEMM on the same cores.

Writes benchmarks/results/bench_local.json (gitignored) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # ../shared is resolved in one place for tests and benchmarks

from tests.assets import missing_asset_hint, real_model_path, scifact_path  # noqa: E402

TOP = 10

Candidates = list[tuple[str, str]]  # (doc id, text)


# ----------------------------------------------------------------------------- model-time probe


class PredictTimer:
    """Wraps CrossEncoder.predict (class-wide) and accumulates the time spent inside it."""

    def __init__(self) -> None:
        self.seconds = 0.0
        from sentence_transformers import CrossEncoder

        original = CrossEncoder.predict
        timer = self

        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(self, *args, **kwargs)
            finally:
                timer.seconds += time.perf_counter() - start

        CrossEncoder.predict = timed  # type: ignore[method-assign]


# ----------------------------------------------------------------------------- contenders


@dataclass
class Contender:
    name: str
    prepare: Callable[[str, Candidates], Any]  # untimed: build the framework's own inputs
    run: Callable[[str, Any], Any]  # timed: rerank
    top_ids: Callable[[Any], list[str]]  # untimed: the returned top-10 ids, best first
    uses_predict: bool = True
    in_identity_check: bool = True
    framework: bool = False  # one of the frameworks' own rerankers (the speed baseline)
    seconds: list[float] = field(default_factory=list)
    model_seconds: list[float] = field(default_factory=list)
    tops: list[list[str]] = field(default_factory=list)


FAST = {
    "fast-onnx-fp32": "runtime=onnx",
    "fast-openvino-fp32": "runtime=openvino&precision=fp32",
    "fast-torch-bf16": "runtime=torch&precision=bf16",
    "fast-bf16": "precision=bf16",
    "fast-onnx-int8": "runtime=onnx&quantize=int8",
    "fast-int8": "quantize=int8",
}


def contenders(model: str, skip: set[str], fast: bool = False) -> tuple[list[Contender], dict[str, str]]:
    found: list[Contender] = []
    skipped: dict[str, str] = {}

    def add(name: str, build: Callable[[], Contender]) -> None:
        if name in skip:
            skipped[name] = "skipped by --skip"
            return
        try:
            found.append(build())
        except Exception as exc:  # a framework that fails to install/import/load is reported, not fatal
            skipped[name] = f"{type(exc).__name__}: {exc}"

    def st_predict() -> Contender:
        from sentence_transformers import CrossEncoder

        ce = CrossEncoder(model, device="cpu")

        def run(query: str, docs: Candidates) -> list[str]:
            scores = ce.predict([(query, text) for _, text in docs])
            order = sorted(range(len(docs)), key=lambda i: -float(scores[i]))
            return [docs[i][0] for i in order[:TOP]]

        return Contender("st-predict", lambda q, d: d, run, lambda out: out, framework=True)

    def llamaindex_sbert() -> Contender:
        from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode
        from llama_index.postprocessor.sbert_rerank import SentenceTransformerRerank

        post = SentenceTransformerRerank(model=model, top_n=TOP, device="cpu")

        def prepare(query: str, docs: Candidates) -> tuple[list[Any], Any]:
            return [NodeWithScore(node=TextNode(text=t, id_=i), score=0.0) for i, t in docs], QueryBundle(query)

        return Contender("llamaindex-sbert", prepare, lambda q, p: post.postprocess_nodes(p[0], query_bundle=p[1]),
                         lambda out: [n.node.node_id for n in out], framework=True)

    def langchain_ce() -> Contender:
        from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
        from langchain_community.cross_encoders import HuggingFaceCrossEncoder
        from langchain_core.documents import Document

        encoder = HuggingFaceCrossEncoder(model_name=model, model_kwargs={"device": "cpu"})
        compressor = CrossEncoderReranker(model=encoder, top_n=TOP)
        return Contender("langchain-ce", lambda q, d: [Document(page_content=t, id=i) for i, t in d],
                         lambda q, docs: compressor.compress_documents(docs, q), lambda out: [d.id for d in out],
                         framework=True)

    def rerankers_lib() -> Contender:
        from rerankers import Reranker as RerankersReranker

        ranker = RerankersReranker(model, model_type="cross-encoder", device="cpu", verbose=0)
        return Contender("rerankers", lambda q, d: d,
                         lambda q, d: ranker.rank(query=q, docs=[t for _, t in d], doc_ids=[i for i, _ in d]),
                         lambda out: [str(r.document.doc_id) for r in out.top_k(TOP)], uses_predict=False)

    spec = f"cross-encoder:{model}?long_docs=truncate"

    def swaprank_core() -> Contender:
        from swaprank import Document, Reranker

        reranker = Reranker(spec)
        reranker.warmup()
        return Contender("swaprank", lambda q, d: [Document(t, id=i) for i, t in d],
                         lambda q, docs: reranker.rerank(q, docs, top_n=TOP), lambda out: [r.id for r in out])

    def swaprank_llamaindex() -> Contender:
        from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

        from swaprank.llama_index import RerankPostprocessor

        post = RerankPostprocessor(model=spec, top_n=TOP)

        def prepare(query: str, docs: Candidates) -> tuple[list[Any], Any]:
            return [NodeWithScore(node=TextNode(text=t, id_=i), score=0.0) for i, t in docs], QueryBundle(query)

        return Contender("swaprank-llamaindex", prepare,
                         lambda q, p: post.postprocess_nodes(p[0], query_bundle=p[1]),
                         lambda out: [n.node.node_id for n in out])

    def swaprank_langchain() -> Contender:
        from langchain_core.documents import Document

        from swaprank.langchain import RerankCompressor

        compressor = RerankCompressor(model=spec, top_n=TOP)
        return Contender("swaprank-langchain", lambda q, d: [Document(page_content=t, id=i) for i, t in d],
                         lambda q, docs: compressor.compress_documents(docs, q), lambda out: [d.id for d in out])

    def swaprank_window() -> Contender:
        from swaprank import Document, Reranker

        reranker = Reranker(f"cross-encoder:{model}")
        reranker.warmup()
        return Contender("swaprank-window", lambda q, d: [Document(t, id=i) for i, t in d],
                         lambda q, docs: reranker.rerank(q, docs, top_n=TOP), lambda out: [r.id for r in out],
                         in_identity_check=False)

    add("st-predict", st_predict)
    add("llamaindex-sbert", llamaindex_sbert)
    add("langchain-ce", langchain_ce)
    add("rerankers", rerankers_lib)
    add("swaprank", swaprank_core)
    add("swaprank-llamaindex", swaprank_llamaindex)
    add("swaprank-langchain", swaprank_langchain)
    add("swaprank-window", swaprank_window)

    def fast_path(name: str, options: str) -> Callable[[], Contender]:
        def build() -> Contender:
            from swaprank import Document, Reranker

            reranker = Reranker(f"{spec}&{options}")
            reranker.warmup()  # exports (or finds) the artifact before anything is timed
            return Contender(name, lambda q, d: [Document(t, id=i) for i, t in d],
                             lambda q, docs: reranker.rerank(q, docs, top_n=TOP), lambda out: [r.id for r in out],
                             uses_predict=False, in_identity_check=False)

        return build

    if fast:
        for name, options in FAST.items():
            add(name, fast_path(name, options))
    return found, skipped


# ----------------------------------------------------------------------------- data


def candidates(data: str | Path, queries: int, depth: int) -> list[tuple[str, str, Candidates]]:
    from swaprank.eval.first_stage import bm25
    from swaprank.eval.loader import load_beir

    dataset = load_beir(data, "test").head(queries)
    ranking = bm25(dataset, depth)
    return [(q, dataset.queries[q], [(d, dataset.doc_text(d)) for d, _ in ranking[q][:depth]])
            for q in dataset.query_ids]


def over_length(model: str, work: list[tuple[str, str, Candidates]]) -> tuple[int, int, int]:
    """(pairs over the model's window, pairs in total, the window) as CrossEncoder would tokenize them."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    limit = int(min(tokenizer.model_max_length, 512))
    over = total = 0
    for _, query, docs in work:
        for _, text in docs:
            total += 1
            over += len(tokenizer(query, text, truncation=False)["input_ids"]) > limit
    return over, total, limit


def model_flops(model: str, work: list[tuple[str, str, Candidates]], window: int) -> list[float]:
    """Matmul FLOPs per query for a BERT-style encoder over the tokens each pair really has (no padding)."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(model)
    d, ff, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    tokenizer = AutoTokenizer.from_pretrained(model)
    per_query = []
    for _, query, docs in work:
        lengths = [len(ids) for ids in tokenizer([query] * len(docs), [t for _, t in docs], truncation=True,
                                                 max_length=window)["input_ids"]]
        per_query.append(float(sum(layers * (2 * n * (4 * d * d + 2 * d * ff) + 4 * n * n * d) for n in lengths)))
    return per_query


def gemm_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """A plain fp32 GEMM on the same cores (torch, the same BLAS threads): the machine's attainable rate."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=real_model_path(), help="a local cross-encoder directory")
    parser.add_argument("--data", default=scifact_path(), help="a BEIR folder (test split)")
    parser.add_argument("--queries", type=int, default=5, help="timed queries (default: 5)")
    parser.add_argument("--candidates", type=int, default=100, help="BM25 candidates per query (default: 100)")
    parser.add_argument("--skip", default="", help="comma-separated contender names to leave out")
    parser.add_argument("--fast", action="store_true", help="add the fast CPU path contenders (fast-*)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "bench_local.json")
    args = parser.parse_args(argv)
    if args.model is None:
        parser.error(missing_asset_hint("model"))
    if args.data is None:
        parser.error(missing_asset_hint("data"))

    import torch

    timer = PredictTimer()
    work = candidates(args.data, args.queries, args.candidates)
    over, total, limit = over_length(args.model, work)
    print(f"{len(work)} queries x {args.candidates} candidates; {over}/{total} pairs exceed {limit} tokens "
          f"(long_docs=truncate makes swaprank score exactly what CrossEncoder.predict scores)", flush=True)
    pool, skipped = contenders(args.model, {s.strip() for s in args.skip.split(",") if s.strip()}, args.fast)
    flops = model_flops(args.model, work, limit)
    gemm = gemm_gflops(torch.get_num_threads())
    print(f"plain fp32 GEMM (2048^3, {torch.get_num_threads()} threads): {gemm:.1f} GFLOP/s", flush=True)
    for name, why in skipped.items():
        print(f"skipped {name}: {why}", flush=True)
    # Untimed warm-up: the first forward pass of every model copy allocates and is slow.
    _, text0, docs0 = work[0]
    for c in pool:
        c.run(text0, c.prepare(text0, docs0[:8]))

    for n, (_, query, docs) in enumerate(work):
        order = pool[n % len(pool):] + pool[: n % len(pool)]
        for c in order:
            prepared = c.prepare(query, docs)
            timer.seconds = 0.0
            start = time.perf_counter()
            out = c.run(query, prepared)
            elapsed = time.perf_counter() - start
            c.seconds.append(elapsed)
            c.model_seconds.append(timer.seconds)
            c.tops.append(c.top_ids(out))
        print(f"query {n + 1}/{len(work)}: " + ", ".join(f"{c.name} {1000 * c.seconds[-1]:.0f} ms" for c in pool),
              flush=True)

    reference = next((c for c in pool if c.name == "st-predict"), pool[0])
    swap = next((c for c in pool if c.name == "swaprank"), None)
    swap_median = statistics.median(swap.seconds) if swap else None
    rows = []
    for c in pool:
        median = statistics.median(c.seconds)
        overhead = None
        model_median = None
        if c.uses_predict and all(m > 0 for m in c.model_seconds):
            model_median = statistics.median(c.model_seconds)
            overhead = 100.0 * statistics.median((s - m) / m for s, m in zip(c.seconds, c.model_seconds, strict=True))
        same = sum(t == r for t, r in zip(c.tops, reference.tops, strict=True))
        agreement = statistics.mean(len(set(t) & set(r)) / TOP for t, r in zip(c.tops, reference.tops, strict=True))
        gflops = statistics.median(f / s / 1e9 for f, s in zip(flops, c.seconds, strict=True))
        rows.append({
            "contender": c.name, "median_ms": 1000 * median, "max_ms": 1000 * max(c.seconds),
            "docs_per_s": args.candidates * len(c.seconds) / sum(c.seconds),
            "ratio_to_swaprank": median / swap_median if swap_median else None,
            "model_median_ms": None if model_median is None else 1000 * model_median,
            "overhead_over_model_pct": overhead,
            "top10_identical_to_st_predict": f"{same}/{len(c.tops)}",
            "top10_agreement_with_st_predict": agreement,
            "gflops": gflops, "gflops_share_of_gemm": gflops / gemm,
            "in_identity_check": c.in_identity_check,
            "seconds": c.seconds, "model_seconds": c.model_seconds,
        })
    checked = [r for r, c in zip(rows, pool, strict=True) if c.in_identity_check]
    identical = all(r["top10_identical_to_st_predict"] == f"{len(work)}/{len(work)}" for r in checked)
    st = next((r for r in rows if r["contender"] == "st-predict"), None)
    vs_direct = {r["contender"]: 100.0 * (r["median_ms"] / st["median_ms"] - 1.0)
                 for r in rows if st and r["contender"].startswith("swaprank")}

    frameworks = [r for r, c in zip(rows, pool, strict=True) if c.framework]
    fastest = min(frameworks, key=lambda r: r["median_ms"]) if frameworks else None
    for r in rows:
        r["speedup_vs_fastest_framework"] = fastest["median_ms"] / r["median_ms"] if fastest else None

    header = (f"{'contender':<20} {'median ms':>10} {'max ms':>9} {'docs/s':>8} {'x swaprank':>10} "
              f"{'model ms':>9} {'overhead%':>9} {'top-10 = predict':>16} {'top-10 agree':>12} {'speedup':>8} "
              f"{'GFLOP/s':>8}")
    print(header)
    print("-" * len(header))
    for r in rows:
        ratio = "-" if r["ratio_to_swaprank"] is None else f"{r['ratio_to_swaprank']:.3f}"
        model_ms = "-" if r["model_median_ms"] is None else f"{r['model_median_ms']:.0f}"
        overhead = "-" if r["overhead_over_model_pct"] is None else f"{r['overhead_over_model_pct']:.2f}"
        speedup = "-" if r["speedup_vs_fastest_framework"] is None else f"{r['speedup_vs_fastest_framework']:.2f}x"
        print(f"{r['contender']:<20} {r['median_ms']:>10.0f} {r['max_ms']:>9.0f} {r['docs_per_s']:>8.1f} {ratio:>10} "
              f"{model_ms:>9} {overhead:>9} {r['top10_identical_to_st_predict']:>16} "
              f"{100 * r['top10_agreement_with_st_predict']:>11.1f}% {speedup:>8} {r['gflops']:>8.1f}")
    print("overhead%: median over queries of (call time - time inside CrossEncoder.predict) / predict time")
    print("swaprank vs st-predict medians: " + ", ".join(f"{k} {v:+.2f}%" for k, v in vs_direct.items()))
    print("every contender returns the same top-10 as CrossEncoder.predict: " + ("YES" if identical else "NO"))
    if fastest:
        print(f"speedup: against the fastest framework reranker ({fastest['contender']}, "
              f"{fastest['median_ms']:.0f} ms); GFLOP/s against a plain fp32 GEMM of {gemm:.1f}")
    targets = {"fast-int8": (3.0, 0.95), "fast-bf16": (2.0, 0.99)}
    verdicts = {}
    for r in rows:
        if r["contender"] in targets and r["speedup_vs_fastest_framework"] is not None:
            speed, agree = targets[r["contender"]]
            ok = r["speedup_vs_fastest_framework"] >= speed and r["top10_agreement_with_st_predict"] >= agree
            verdicts[r["contender"]] = ok
            print(f"target {r['contender']}: >= {speed:.1f}x and top-10 agreement >= {100 * agree:.0f}%: "
                  f"{r['speedup_vs_fastest_framework']:.2f}x, {100 * r['top10_agreement_with_st_predict']:.1f}% -> "
                  f"{'MET' if ok else 'NOT MET'}")

    report = {
        "model": args.model, "data": str(args.data), "queries": len(work), "candidates": args.candidates,
        "pairs_over_window": over, "pairs": total, "window": limit,
        "swaprank_spec": "cross-encoder:<model>?long_docs=truncate",
        "skipped": skipped, "rows": rows, "gemm_gflops": gemm, "flops_per_query": flops,
        "fast_specs": {name: f"cross-encoder:<model>?long_docs=truncate&{o}" for name, o in FAST.items()},
        "targets_met": verdicts, "swaprank_vs_st_predict_pct": vs_direct, "identical_top10": identical,
        "query_ids": [q for q, _, _ in work],
        "environment": {"python": platform.python_version(), "torch": torch.__version__,
                        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
                        "platform": platform.platform(), "load_average_at_end": os.getloadavg()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
