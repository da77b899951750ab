"""Keeping keys and URL credentials out of the SDKs' and HTTP clients' log records."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import TYPE_CHECKING

from swaprank.redaction import redact_text

if TYPE_CHECKING:
    from swaprank.backends.hosted.base import HostedBackend


class RedactKeys(logging.Filter):
    """Scrubs live backends' keys, and credentials written into URLs, from SDK log records.

    SDK loggers quote vendor error bodies verbatim (voyage logs every error message at INFO),
    and a vendor that echoes the key back would otherwise put it in the application's logs;
    httpx logs every request's full URL at INFO, ``user:password@`` included.
    """

    def __init__(self) -> None:
        super().__init__()
        self._backends: weakref.WeakSet[HostedBackend] = weakref.WeakSet()

    def watch(self, backend: HostedBackend) -> None:
        self._backends.add(backend)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        scrubbed = redact_text(message)
        for backend in list(self._backends):
            scrubbed = backend._scrub(scrubbed)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


_redact_keys = RedactKeys()


# The HTTP clients the SDKs and JsonHTTP use; httpx logs each request's URL at INFO.
HTTP_LOGGERS = ("httpx", "httpcore")


def watch_secrets(backend: HostedBackend) -> None:
    """Scrub this backend's secrets (``backend._scrub``) from SDK and HTTP log records even when it
    has no API key: credentials from elsewhere (the AWS chain) are secrets too."""
    _redact_keys.watch(backend)


def redact_sdk_logs(backend: HostedBackend, logger_names: Sequence[str]) -> None:
    if backend.secret() is not None:
        _redact_keys.watch(backend)
    for name in (*logger_names, *HTTP_LOGGERS):
        sdk_logger = logging.getLogger(name)
        if _redact_keys not in sdk_logger.filters:
            sdk_logger.addFilter(_redact_keys)
