"""Config strings: the one knob that swaps the model behind every adapter.

Grammar (see docs/design.md, "Config strings")::

    spec  := backend ":" model [ "?" option ( "&" option )* ]
    chain := spec ( "|" spec )*

The backend is always explicit: we never guess it from the model name, because a model id like
``jinaai/jina-reranker-v2`` can be served by a local cross-encoder or by Jina's API, and routing
it by substring silently sends documents to a third party. Option values are typed by the
backend's own option table, so a typo fails at construction time with the list of what is valid,
not at the first query in production.

A config string is code: ``cross-encoder:<dir>?trust_remote_code=true`` runs that directory's
Python, ``jina:...?base_url=...`` decides where the Jina key is sent. Strings from a less trusted
source (an admin panel, a query parameter) are parsed with ``trusted=False``, which refuses every
option marked with a ``risk`` and a local model path (docs/design.md, "Security").
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from swaprank.backends.registry import ALIASES, Registration, Registry, default_registry
from swaprank.redaction import is_secret_name, redact_config, show_word
from swaprank.specs import BackendSpec, Option, format_chain, format_spec
from swaprank.types import ConfigError, UntrustedOptionError

__all__ = ["DEFAULT_MODEL", "ENV_MODEL", "BackendSpec", "Option", "build_spec", "format_chain", "format_spec",
           "parse_chain", "parse_spec"]

ENV_MODEL = "SWAPRANK_MODEL"
DEFAULT_MODEL = "cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"

# A Hugging Face hub id (``org/name`` or ``name``); anything else given to a local backend is a path.
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}(/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95})?")
FIX = "set it in code (a trusted config string or build_spec), or pass trusted=True"


def _split_options(text: str, where: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in text.split("&"):
        if not part:
            continue
        if "=" not in part:
            # Neither the fragment nor the string is quoted raw: either may carry a credential.
            raise ConfigError(f"option {show_word(part)!r} in {redact_config(where)!r} must look like name=value")
        name, _, value = part.partition("=")
        pairs.append((unquote(name.strip()), unquote(value.strip())))
    return pairs


def local_path(model: str) -> bool:
    """Whether a local backend's model part names a file or directory rather than a hub id."""
    if ".." in model.split("/") or not _HUB_ID.fullmatch(model):
        return True  # absolute, ./relative, ~, C:\..., nested directories
    return os.path.exists(model)  # "org/name" that exists here is loaded from disk, not the hub


def check_untrusted(found: Registration, model: str, options: Mapping[str, Any]) -> None:
    """Refuse, for a config string from a less trusted source, what only code may decide: options
    marked with a ``risk``, options a backend cannot vouch for, and a local model path."""
    name = found.name
    if found.local and local_path(model):
        raise UntrustedOptionError(
            f"backend {name!r}: the model is a local path, and loading a model from disk (reads-files: "
            f"its weights, its config, its code with trust_remote_code) is refused in an untrusted config "
            f"string; use a hub id, or {FIX}", option="model", backend=name)
    if getattr(found.factory, "model_is_address", False):
        raise UntrustedOptionError(
            f"backend {name!r}: the model part is the server's address (sends-credentials: the documents, and "
            f"a key given in code, go there), refused in an untrusted config string; {FIX}",
            option="model", backend=name)
    for key in options:
        option = found.options.get(key) if found.options is not None else None
        if found.options is None:
            raise UntrustedOptionError(
                f"backend {name!r} declares no option table, so its option {key!r} cannot be checked in an "
                f"untrusted config string; {FIX}", option=key, backend=name)
        if option is not None and option.risk is not None:
            raise UntrustedOptionError(
                f"option {key!r} of backend {name!r} is refused in an untrusted config string "
                f"({option.risk}: {option.risk_reason}); {FIX}", option=key, backend=name)


def build_spec(backend: str, model: str = "", options: Mapping[str, Any] | None = None, *,
               registry: Registry | None = None, trusted: bool = True) -> BackendSpec:
    """Validate a backend name, model and options into a BackendSpec (all typed), against ``registry``
    (the process-wide one by default). ``trusted=False`` refuses risky options (``check_untrusted``)."""
    found = (registry or default_registry()).registration(backend)
    name = found.name
    if not model:
        model = found.default_model or ""
        if not model:
            raise ConfigError(
                f"backend {name!r} has no default model; write it as {name}:<model>"
            )
    if not trusted:
        check_untrusted(found, model, options or {})
    table = found.options
    typed: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if table is None:  # a third-party factory without an option table takes any option
            typed[key] = value
            continue
        if key not in table:
            raise unknown_option(key, name, table)
        typed[key] = table[key].coerce(key, value)
    return BackendSpec(backend=name, model=model, options=tuple(sorted(typed.items())))


# Keyword arguments of Reranker and the adapters (and names users give them) that are not config
# options: a config string says which model, the arguments say what to do with its scores.
_ARGUMENTS = {"top_n": "top_n", "top_k": "top_n", "topn": "top_n", "score_threshold": "score_threshold",
              "threshold": "score_threshold", "min_results": "min_results", "fuse": "fuse", "rrf_k": "rrf_k",
              "on_error": "on_error", "dedup": "dedup", "cache_size": "cache_size", "trusted": "trusted"}


def unknown_option(key: str, backend: str, table: Mapping[str, Option]) -> ConfigError:
    """The error for an option ``backend`` does not take: the likely fix first, the valid options after."""
    valid = f"valid options: {', '.join(sorted(table)) or '(none)'}"
    shown = show_word(key)
    if key.lower() in _ARGUMENTS:
        argument = _ARGUMENTS[key.lower()]
        return ConfigError(
            f"{shown!r} is not a config-string option of backend {backend!r}: {argument} is an argument of "
            f"Reranker and of the adapters, e.g. Reranker(model, {argument}=...) or "
            f"RerankCompressor(model=..., {argument}=...); {valid}")
    if is_secret_name(key):  # never echo it: its value is a credential
        return ConfigError(f"a credential never goes in a config string (backend {backend!r}): pass api_key= to "
                           "Reranker or the adapter, or set the vendor's environment variable; " + valid)
    close = difflib.get_close_matches(key.lower(), sorted(table), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(f"unknown option {shown!r} for backend {backend!r}; {hint}{valid}")


def _no_backend_hint(text: str, backend: str, registry: Registry) -> ConfigError | None:
    """A config string without a known backend: a bare hub id gets the backend it most likely needs
    (never guessed silently: the same id can be a local model or a vendor's API)."""
    if ":" in text or registry.canonical_name(backend) in registry.names() or \
            registry.canonical_name(backend) in ALIASES:
        return None
    if "/" in backend and _HUB_ID.fullmatch(backend):
        return ConfigError(
            f"{backend!r} names no backend: did you mean \"cross-encoder:{backend}\"? A config string is "
            f"backend:model, and the backend is never guessed from the model id (it could be a local model "
            f"or a vendor's API); {registry.suggest('')}")
    return ConfigError(f"unknown backend {show_word(backend)!r}; {registry.suggest(backend)}; a config string is "
                       "backend:model, e.g. cross-encoder:<hub id or directory>, or a bare backend name")


def parse_spec(text: str, *, registry: Registry | None = None, trusted: bool = True) -> BackendSpec:
    """Parse one ``backend:model?opt=value`` string; ``trusted=False`` for strings from a less trusted
    source (refuses options that run code, read files or send credentials: docs/design.md, "Security")."""
    if not isinstance(text, str):
        raise ConfigError(f"a model config string must be a non-empty string, got {type(text).__name__}")
    if not text.strip():
        raise ConfigError("a model config string must be a non-empty string, got an empty one")
    text = text.strip()
    # The backend name ends at the first ':' (or '?' for "cohere?opt=1", a bare name with options);
    # the model may itself contain ':' (URLs, Windows paths); options start at the first '?' after it.
    colon, question = text.find(":"), text.find("?")
    if colon == -1 or (question != -1 and question < colon):
        backend, _, query = text.partition("?")
        model = ""
    else:
        backend, rest = text[:colon], text[colon + 1:]
        model, _, query = rest.partition("?")
    options = _split_options(query, text)
    found = registry or default_registry()
    bare = _no_backend_hint(text.partition("?")[0], backend.strip(), found) if colon == -1 else None
    if bare is not None:
        raise bare
    if "@" in model and "://" not in model and found.canonical_name(backend) not in found.names():
        # "user:pass@host" (a URL without its scheme): the "backend" is a user name, never quoted.
        raise ConfigError(f"unknown backend in {redact_config(text)!r} (a URL needs its backend first, like "
                          f"tei:http://host:8080); valid backends: {', '.join(found.names())}")
    seen: set[str] = set()
    for name, _ in options:
        if name in seen:
            raise ConfigError(f"option {show_word(name)!r} given twice in {redact_config(text)!r}")
        seen.add(name)
    return build_spec(backend.strip(), model.strip(), dict(options), registry=registry, trusted=trusted)


def parse_chain(
    text: str | BackendSpec | Sequence[BackendSpec] | None, *, registry: Registry | None = None,
    trusted: bool = True,
) -> tuple[BackendSpec, ...]:
    """Parse ``spec | spec | ...`` into the fallback order; ``None`` reads ``SWAPRANK_MODEL``.

    ``trusted=False`` applies to strings only (``parse_spec``); a ``BackendSpec`` was built in code.
    """
    if text is None:  # the operator's environment, not the caller's input: trusted
        text, trusted = os.environ.get(ENV_MODEL) or DEFAULT_MODEL, True
    if isinstance(text, BackendSpec):
        return (text,)
    if isinstance(text, (tuple, list)):
        if not text or not all(isinstance(s, BackendSpec) for s in text):
            raise ConfigError("a chain must be a non-empty sequence of BackendSpec")
        return tuple(text)
    if not isinstance(text, str):
        raise ConfigError(f"model must be a config string, got {type(text).__name__}")
    if not text.strip():
        raise ConfigError("the model config string is empty; write e.g. 'cross-encoder:<model>'")
    parts = [part.strip() for part in text.split("|")]
    if any(not part for part in parts):
        raise ConfigError(f"empty entry in fallback chain {redact_config(text)!r}")
    return tuple(parse_spec(part, registry=registry, trusted=trusted) for part in parts)
