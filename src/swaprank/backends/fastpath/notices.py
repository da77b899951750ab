"""What the one-time export says while it runs: two lines a user sees, and none of the runtimes' chatter.

An export takes seconds to a minute (int8 includes calibration) and happens inside the first
``rerank`` call or ``warmup()``, so a silent one looks like a hang. Decision (issue 25): the two
lines (before: what is exported and where it will be cached; after: how long it took) are INFO
records of the ``swaprank.export`` logger, so an application that configured logging routes or
filters them like any other record; when nothing is configured (no handler on that logger or any
ancestor, root included: a script, a notebook), where Python's default would drop INFO, they are
written to stderr instead. Not ``warnings``: nothing is wrong. Meanwhile the runtimes' own INFO
logging (``INFO:nncf:...``, about sixty lines for an int8 export; OpenVINO and optimum) is
filtered out below WARNING for the duration of the export.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger("swaprank.export")

# Loggers of the export toolchain whose INFO lines are progress noise, not news for the user.
RUNTIME_LOGGERS = ("nncf", "openvino", "optimum", "onnxruntime", "onnx")


def announce(message: str) -> None:
    """An INFO record on ``swaprank.export``; on stderr when the application configured no logging."""
    if logger.hasHandlers():
        logger.info(message)
    else:
        print(f"swaprank: {message}", file=sys.stderr, flush=True)


def _below_warning(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.WARNING


@contextmanager
def quiet_runtimes() -> Iterator[None]:
    """Drop the export toolchain's records below WARNING (errors still show), then stop.

    A filter on each logger rather than a level: nncf sets its own logger's level to INFO when it is
    first imported, which happens inside the export."""
    loggers = [logging.getLogger(name) for name in RUNTIME_LOGGERS]
    for log in loggers:
        log.addFilter(_below_warning)
    try:
        yield
    finally:
        for log in loggers:
            log.removeFilter(_below_warning)
