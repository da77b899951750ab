"""Keep OpenVINO's and NNCF's usage telemetry off unless the user explicitly allows it.

``import openvino`` sends a usage event, and so do ``ov.convert_model`` and ``nncf.quantize``
(through the ``openvino_telemetry`` package, opted in unless a consent file in the home directory
or a CI variable says otherwise). A reranker inside someone's RAG service must not phone home on
their behalf, so before either library is first imported we make ``openvino_telemetry``
unimportable in this process: both libraries then fall back to their own no-op stubs (their
documented behaviour when the package is missing) and NNCF also honours ``NNCF_CI``. Nothing is
written to the user's home directory and nothing else in the process changes.
``SWAPRANK_ALLOW_RUNTIME_TELEMETRY=1`` leaves the libraries' defaults alone. If openvino was
imported before swaprank, its telemetry was set up already and this cannot undo it.
"""

from __future__ import annotations

import os
import sys

ALLOW_ENV = "SWAPRANK_ALLOW_RUNTIME_TELEMETRY"
_BLOCKED = ("openvino_telemetry", "openvino_telemetry.backend")


def disable_runtime_telemetry() -> None:
    if os.environ.get(ALLOW_ENV, "").strip().lower() in {"1", "true", "yes", "on"}:
        return
    os.environ.setdefault("NNCF_CI", "1")
    for name in _BLOCKED:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]  # None makes import raise ImportError
