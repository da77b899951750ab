"""Local cross-encoders: sentence-transformers on torch, or an exported ONNX/OpenVINO artifact.

Long documents are the classic silent failure of local rerankers: the tokenizer cuts everything
past ``max_length`` (512 tokens for MiniLM) and the answer in paragraph six never gets scored. This
backend tells the Reranker its limit and tokenizer (``windowing``); the Reranker then splits such
documents into overlapping token windows and keeps the best one (:mod:`swaprank.windows`);
``long_docs=truncate`` restores the plain behaviour (and what was cut is still counted).

Which engine computes the scores is the only thing ``runtime``/``precision``/``quantize`` change:
windows, batching and the [0, 1] mapping are the same code on every runtime. The default is exact
fp32 on torch; ``precision=bf16`` and ``quantize=int8`` export the model once into the artifact
cache (``swaprank.backends.fastpath``) and serve it without importing torch.

Modules, one step of loading each:
    resolve       what the spec asks for: an artifact directory, or a Plan (causal LMs: torch only)
    torch_loader  sentence-transformers on torch, LLM rerankers and ``instruction=`` included
    exported      an ONNX/OpenVINO artifact, exported into the cache on first use
    loaded        LoadedModel, the one value a loader returns, and the [0, 1] score mapping
    backend       CrossEncoderBackend: options, and scoring with its LoadedModel
"""

from swaprank.backends.cross_encoder.backend import CrossEncoderBackend
from swaprank.backends.cross_encoder.loaded import LoadedModel

__all__ = ["CrossEncoderBackend", "LoadedModel"]
