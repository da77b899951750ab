"""Optional dependencies: vendor SDKs and model runtimes are imported only when a backend needs them."""

from __future__ import annotations

import importlib
from types import ModuleType

from swaprank.types import MissingDependencyError


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or explain which pip extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"this backend needs the {module!r} package: pip install 'swaprank[{extra}]' ({exc})"
        ) from exc
