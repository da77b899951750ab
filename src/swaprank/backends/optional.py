"""Optional dependencies: vendor SDKs, model runtimes and frameworks are imported only when needed.

A missing one is never a bare ``ModuleNotFoundError: No module named 'langchain_core'``: every
entry point (a backend, an adapter, a CLI command) names the pip extra that provides it, with a
command that can be pasted into any shell (double quotes: zsh expands ``[...]`` otherwise). The
error is a ``MissingDependencyError``, which is a ``ModuleNotFoundError`` (so ``except ImportError``
and ``except ModuleNotFoundError`` keep working) whose ``name`` is the missing module.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Iterable
from types import ModuleType

from swaprank.types import MissingDependencyError


def install_hint(extra: str) -> str:
    """The command that installs ``extra``, quoted for every shell."""
    return f'pip install "swaprank[{extra}]"'


def missing(extra: str, what: str, exc: ImportError | None = None, module: str | None = None) -> MissingDependencyError:
    """The error for ``what`` (a backend, ``swaprank.langchain``, ``swaprank eval``...) lacking ``extra``."""
    name = module or (exc.name if exc is not None else None) or ""
    cause = f" ({exc})" if exc is not None else (f" (no module named {name!r})" if name else "")
    return MissingDependencyError(f"{what} needs the {extra!r} extra: {install_hint(extra)}{cause}", name=name)


def require(module: str, extra: str, what: str = "this backend") -> ModuleType:
    """Import an optional dependency, or explain which pip extra provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise missing(extra, what, exc, module=exc.name or module) from exc


def first_missing(modules: Iterable[str]) -> str | None:
    """The first of ``modules`` that cannot be imported, found without importing it (None: all there)."""
    for module in modules:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except (ImportError, ValueError):  # a parent package missing, or a module set to None
            return module
    return None


def require_all(modules: Iterable[str], extra: str, what: str) -> None:
    """Refuse now, before any work, when one of ``modules`` (the extra's packages) is missing."""
    absent = first_missing(modules)
    if absent is not None:
        raise missing(extra, what, module=absent)
