"""The fast CPU path for local cross-encoders: export once, score without torch.

A cross-encoder is exported to ONNX once, optionally quantized (int8) or compiled for bf16, and
stored in an artifact directory (a cache keyed by the model files' hash, or a directory the user
exports ahead of time). Serving from an artifact needs only the runtime (ONNX Runtime or
OpenVINO), ``tokenizers`` and numpy: no torch, no transformers, no sentence-transformers, which
is what makes a container small and a cold start short.

Modules, one job each:
    tokenize     query/document pairs -> windows and padded id arrays (``tokenizers`` only)
    choice       which runtime serves which (runtime, precision, quantize) request
    artifact     the manifest, the cache directory, its key and atomic publication
    sessions     ONNX Runtime / OpenVINO scorers over an artifact (torch-free)
    calibration  the built-in generic text sample (calibration and parity probe)
    export       torch -> ONNX -> int8 / OpenVINO, and the parity probe against fp32
"""
