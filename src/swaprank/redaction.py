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
from typing import Any, Protocol
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit


class BackendSpec(Protocol):
    """What this module reads of a ``swaprank.specs.BackendSpec`` (a protocol, so the low-level
    redaction module imports nothing of the config layer that itself uses it)."""

    @property
    def backend(self) -> str: ...

    @property
    def model(self) -> str: ...

    @property
    def options(self) -> tuple[tuple[str, Any], ...]: ...

MASK = "***"
# Option and query-parameter names whose values are secrets, matched on the name lower-cased with its
# separators removed (``X-Amz-Security-Token`` -> ``xamzsecuritytoken``): a name *ending* in one of
# these words (api_key, accessKey, client_secret, session_token, x-amz-signature, jwt, sig...) or
# equal to one of the exact names. Over-masking costs a debugging hint; under-masking leaks a key.
_SECRET_ENDINGS = ("key", "secret", "password", "passwd", "pwd", "passphrase", "token", "jwt", "signature",
                   "sig", "credential", "credentials", "auth", "authorization", "cookie", "sessionid")
# Names that are secrets only when they are the whole name: Azure Functions' ``?code=``, SAS ``sig``
# is covered above; ``code`` alone would otherwise mask ``trust_remote_code``.
_SECRET_EXACT = frozenset({"code", "sas", "hmac", "otp"})
_SEPARATORS = re.compile(r"[^a-z0-9]")
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>|]+")
# "user:pass@" outside a well-formed URL (a model written without its scheme): masked up to the "@".
_USERINFO = re.compile(r"[^/\s@]*@")
# How much of a malformed option ("?eyJhbGciOi..." without "=") an error may quote: a short word.
_SHOWABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]{0,39}")


def is_secret_name(name: str) -> bool:
    """Whether an option or query parameter called ``name`` holds a secret (see ``_SECRET_ENDINGS``)."""
    compact = _SEPARATORS.sub("", name.lower())
    return bool(compact) and (compact in _SECRET_EXACT or compact.endswith(_SECRET_ENDINGS))


def _netloc(netloc: str) -> str:
    if "@" in netloc:
        return f"{MASK}@{netloc.rpartition('@')[2]}"
    _, colon, port = netloc.rpartition(":")
    if colon and not port.isdigit() and not netloc.endswith("]"):
        # "user:pa" of "http://user:pa&ss@host" cut at the "&": never a port, maybe a password.
        return MASK
    return netloc


def redact_url(url: str) -> str:
    """``https://user:pw@host/p?api_key=k&x=1`` -> ``https://***@host/p?api_key=***&x=1``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = _netloc(parts.netloc)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_secret_name(name) for name, _ in pairs):
            query = urlencode([(n, MASK if is_secret_name(n) else v) for n, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_config(text: str) -> str:
    """A raw (maybe malformed) config string as an error message may quote it: URL credentials,
    secret-named options and unreadable option fragments masked, the structure kept."""
    out = []
    for entry in text.split("|"):
        head, question, query = entry.partition("?")
        parts = []
        for part in query.split("&") if question else ():
            name, equals, value = part.partition("=")
            if equals:
                plain = unquote(value)
                if is_secret_name(unquote(name)):
                    value = MASK
                elif "://" in plain or "@" in plain:
                    value = redact_url(plain) if "://" in plain else MASK
                parts.append(f"{name}={value}")
            else:
                parts.append(show_word(part))
        out.append(_USERINFO.sub(f"{MASK}@", redact_text(head)) + question + "&".join(parts))
    return "|".join(out)


def show_word(text: str) -> str:
    """``text`` if it is a short word (an option name), else ``***``: for fragments an error names."""
    return text if _SHOWABLE.fullmatch(text.strip()) and not is_secret_name(text) else MASK


def show_value(name: str, value: object) -> str:
    """The repr of option ``name``'s ``value`` for an error message: masked when the name is secret
    or the value carries URL credentials."""
    if is_secret_name(name):
        return MASK
    shown = repr(value)
    if "@" in shown and "://" not in shown:
        return MASK
    return redact_text(shown)


def redact_text(text: str) -> str:
    """Every URL inside free text (an SDK's error message, a log line) with its credentials masked."""
    return _URL.sub(lambda match: redact_url(match.group(0)), text) if "://" in text else text


def redacted_spec(spec: BackendSpec) -> str:
    """The spec's canonical string with URL credentials and secret-named options masked."""
    options = tuple(
        (name, MASK if is_secret_name(name) else redact_url(value) if isinstance(value, str) and "://" in value
         else value)
        for name, value in spec.options
    )
    model = redact_url(spec.model) if "://" in spec.model else spec.model
    # str() is format_spec: the masked copy is built from the spec's own class, so this module (which
    # specs imports for Option's error messages) imports nothing back.
    rebuilt: Any = type(spec)
    return str(rebuilt(spec.backend, model, options))


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
