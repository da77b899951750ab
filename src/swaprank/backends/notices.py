"""Warnings a backend gives once per process (a misconfiguration that does not stop scoring)."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from swaprank.redaction import redacted_spec

if TYPE_CHECKING:
    from swaprank.specs import BackendSpec

_warned: set[tuple[str, ...]] = set()
_warned_lock = threading.Lock()


def warn_once(key: tuple[str, ...], message: str, *args: Any) -> bool:
    """Log ``message`` at WARNING the first time ``key`` is seen in this process; True if it was logged.

    A misconfiguration that does not stop scoring (an option a model cannot use) must be visible,
    but a service that builds a Reranker per request would otherwise repeat it on every call.
    """
    with _warned_lock:
        if key in _warned:
            return False
        _warned.add(key)
    logging.getLogger("swaprank").warning(message, *args)
    return True


def warn_instruction_ignored(spec: BackendSpec, reason: str) -> bool:
    """The one warning a backend gives when ``instruction=`` cannot reach its model (once per spec).

    Backends without instruction support call this instead of dropping the option silently: an
    instruction changes what "relevant" means to the user, so scores computed without it must
    never pass for scores computed with it. ``reason`` says why (e.g. the model takes no prompt).
    """
    return warn_once(("instruction-ignored", spec.backend, spec.model, reason),
                     "swaprank: %s ignores instruction=: %s", redacted_spec(spec), reason)
