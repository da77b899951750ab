"""Keeping credentials out of everything swaprank prints, logs, traces or copies into documents.

A config string can carry secrets its author did not think of as secrets: a ``base_url`` (or a
TEI model URL) written as ``https://user:password@host``, a proxy URL with ``?api_key=...``. The
config string itself must keep them (it is how the backend reaches the server), so every place
that *shows* a spec goes through here instead: reprs, log lines, exception messages and
``RerankResult.model`` get :func:`redacted_spec` (the same string, credentials masked), and
anything copied into user data or traces gets :func:`spec_label` (``backend:model`` alone).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    from swaprank.specs import BackendSpec

MASK = "***"
# Option and query-parameter names whose values are secrets (api_key, x-api-key, access_token, sig...).
_SECRET_NAME = re.compile(r"(^|[_\-.])(api[_\-]?key|key|secret|password|passwd|pwd|token|auth|authorization|"
                          r"signature|sig|credentials?)$", re.IGNORECASE)
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>|]+")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def redact_url(url: str) -> str:
    """``https://user:pw@host/p?api_key=k&x=1`` -> ``https://***@host/p?api_key=***&x=1``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(name) for name, _ in pairs):
            query = urlencode([(n, MASK if is_secret_name(n) else v) for n, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every URL inside free text (an SDK's error message, a log line) with its credentials masked."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text) if "://" in text else text


def redacted_spec(spec: BackendSpec) -> str:
    """The spec's canonical string with URL credentials and secret-named options masked."""
    from swaprank.specs import BackendSpec, format_spec

    options = tuple(
        (name, MASK if is_secret_name(name) else redact_url(value) if isinstance(value, str) and "://" in value
         else value)
        for name, value in spec.options
    )
    model = redact_url(spec.model) if "://" in spec.model else spec.model
    return format_spec(BackendSpec(spec.backend, model, options))


def redacted_chain(specs: tuple[BackendSpec, ...]) -> str:
    return " | ".join(redacted_spec(spec) for spec in specs)


def spec_label(spec: BackendSpec) -> str:
    """``backend:model``: what a document's ``rerank_model`` and a trace name the model by.

    No options, and no URL: a model written as a server URL (``tei:http://10.0.0.5:8080``) is
    named by its backend alone (the TEI backend names it by the model id its server reports).
    """
    if "://" in spec.model:
        return spec.backend
    return f"{spec.backend}:{spec.model}"


def chain_label(specs: tuple[BackendSpec, ...]) -> str:
    return " | ".join(spec_label(spec) for spec in specs)
