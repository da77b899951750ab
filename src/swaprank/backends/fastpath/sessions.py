"""Scoring with an exported artifact: ONNX Runtime or OpenVINO, ``tokenizers`` and numpy only.

Nothing here imports torch, transformers or sentence-transformers; a process serving from a cached
or exported artifact starts in a fraction of the torch path's time (benchmarks/RESULTS.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from swaprank.backends.fastpath.artifact import Manifest
from swaprank.backends.fastpath.telemetry import disable_runtime_telemetry
from swaprank.backends.fastpath.tokenize import PairTokenizer
from swaprank.backends.optional import require

# Runs a list of batches (input name -> array) and returns each batch's raw outputs, in order.
Runner = Callable[[list[dict[str, np.ndarray]]], list[np.ndarray]]

# Pairs per forward pass on the exported runtimes. Small batches of length-sorted pairs keep the
# activations of a 512-token batch in the 2 cores' caches; measured on the stand-in (100 SciFact
# candidates, OpenVINO bf16): batch 4 took 3.9 s, batch 8 4.5 s, batch 32 5.7 s per query.
DEFAULT_BATCH_SIZE = 4

# OpenVINO's names for the precisions a user asks for.
_OV_PRECISION = {"fp32": "f32", "bf16": "bf16"}


def physical_cores() -> int:
    """Cores this process may run on, counting SMT siblings once (the right thread count for GEMMs)."""
    allowed = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    for cpu in allowed:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text().strip(),
                       (topology / "core_id").read_text().strip()))
        except OSError:
            return max(1, len(allowed))
    return max(1, len(cores))


def _onnx_runner(directory: Path, manifest: Manifest, threads: int) -> Runner:
    ort = require("onnxruntime", "onnx")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(directory / manifest.model_file), options,
                                   providers=["CPUExecutionProvider"])

    def run(batches: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        return [np.asarray(session.run(None, feeds)[0]) for feeds in batches]

    return run


def _openvino_runner(directory: Path, manifest: Manifest, threads: int, precision: str) -> Runner:
    """One OpenVINO stream per core, each batch on one stream: small batches run side by side.

    On 2 cores this beat one 2-thread stream by 10-20% (less synchronisation per small GEMM).
    """
    disable_runtime_telemetry()
    ov = require("openvino", "openvino")
    core = ov.Core()
    config = {
        "INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
        "INFERENCE_NUM_THREADS": threads,
        "PERFORMANCE_HINT": "THROUGHPUT",
        "NUM_STREAMS": threads,
    }
    compiled = core.compile_model(str(directory / manifest.model_file), "CPU", config)
    queue = ov.AsyncInferQueue(compiled, threads)

    def run(batches: list[dict[str, np.ndarray]]) -> list[np.ndarray]:
        outputs: list[np.ndarray] = [np.empty(0)] * len(batches)

        def done(request: Any, index: int) -> None:
            outputs[index] = np.array(request.get_output_tensor(0).data, copy=True)

        queue.set_callback(done)
        for index, feeds in enumerate(batches):
            queue.start_async(feeds, index)
        queue.wait_all()
        return outputs

    return run


class ArtifactScorer:
    """Raw model outputs for (query, passage) pairs from an artifact, in the pairs' order.

    Pairs are sorted by token length and batched, so padding stays small; each batch is padded to
    its own longest pair. Not thread-safe (one set of infer requests): the backend serialises calls.
    """

    def __init__(self, directory: Path, manifest: Manifest, *, precision: str, threads: int | None = None,
                 batch_size: int | None = None, max_length: int | None = None) -> None:
        self.directory = directory
        self.manifest = manifest
        self.threads = threads or physical_cores()
        self.batch_size = batch_size or DEFAULT_BATCH_SIZE
        self.max_length = min(max_length or manifest.max_length, manifest.max_length)
        self.tokenizer = PairTokenizer.from_file(str(directory / "tokenizer.json"), self.max_length,
                                                 manifest.pad_id)
        self._inputs = tuple(manifest.inputs)
        if manifest.runtime == "onnx":
            self._run = _onnx_runner(directory, manifest, self.threads)
        else:
            self._run = _openvino_runner(directory, manifest, self.threads, precision)

    def predict(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        if not pairs:
            return []
        encodings = self.tokenizer.encode(pairs)
        order = sorted(range(len(encodings)), key=lambda i: len(encodings[i].ids))
        groups = [order[start: start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        feeds = []
        for rows in groups:
            arrays = self.tokenizer.batch([encodings[i] for i in rows])
            feeds.append({name: arrays[name] for name in self._inputs})
        out = np.empty(len(encodings), dtype=np.float64)
        for rows, logits in zip(groups, self._run(feeds), strict=True):
            out[rows] = logits.reshape(len(rows), -1)[:, 0]
        return [float(v) for v in out]
