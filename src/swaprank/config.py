"""Config strings: the one knob that swaps the model behind every adapter.

Grammar (see docs/design.md, "Config strings")::

    spec  := backend ":" model [ "?" option ( "&" option )* ]
    chain := spec ( "|" spec )*

The backend is always explicit: we never guess it from the model name, because a model id like
``jinaai/jina-reranker-v2`` can be served by a local cross-encoder or by Jina's API, and routing
it by substring silently sends documents to a third party. Option values are typed by the
backend's own option table, so a typo fails at construction time with the list of what is valid,
not at the first query in production.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote

from swaprank.backends.registry import Registry, default_registry
from swaprank.specs import BackendSpec, Option, format_chain, format_spec
from swaprank.types import ConfigError

__all__ = ["DEFAULT_MODEL", "ENV_MODEL", "BackendSpec", "Option", "build_spec", "format_chain", "format_spec",
           "parse_chain", "parse_spec"]

ENV_MODEL = "SWAPRANK_MODEL"
DEFAULT_MODEL = "cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"

def _split_options(text: str, where: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for part in text.split("&"):
        if not part:
            continue
        if "=" not in part:
            raise ConfigError(f"option {part!r} in {where!r} must look like name=value")
        name, _, value = part.partition("=")
        pairs.append((unquote(name.strip()), unquote(value.strip())))
    return pairs


def build_spec(backend: str, model: str = "", options: Mapping[str, Any] | None = None, *,
               registry: Registry | None = None) -> BackendSpec:
    """Validate a backend name, model and options into a BackendSpec (all typed), against ``registry``
    (the process-wide one by default)."""
    found = (registry or default_registry()).registration(backend)
    name = found.name
    if not model:
        model = found.default_model or ""
        if not model:
            raise ConfigError(
                f"backend {name!r} has no default model; write it as {name}:<model>"
            )
    table = found.options
    typed: dict[str, Any] = {}
    for key, value in (options or {}).items():
        if table is None:  # a third-party factory without an option table takes any option
            typed[key] = value
            continue
        if key not in table:
            valid = ", ".join(sorted(table)) or "(none)"
            raise ConfigError(f"unknown option {key!r} for backend {name!r}; valid options: {valid}")
        typed[key] = table[key].coerce(key, value)
    return BackendSpec(backend=name, model=model, options=tuple(sorted(typed.items())))


def parse_spec(text: str, *, registry: Registry | None = None) -> BackendSpec:
    """Parse one ``backend:model?opt=value`` string."""
    if not isinstance(text, str) or not text.strip():
        raise ConfigError(f"a model config string must be a non-empty string, got {text!r}")
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
    seen: set[str] = set()
    for name, _ in options:
        if name in seen:
            raise ConfigError(f"option {name!r} given twice in {text!r}")
        seen.add(name)
    return build_spec(backend.strip(), model.strip(), dict(options), registry=registry)


def parse_chain(
    text: str | BackendSpec | Sequence[BackendSpec] | None, *, registry: Registry | None = None,
) -> tuple[BackendSpec, ...]:
    """Parse ``spec | spec | ...`` into the fallback order; ``None`` reads ``SWAPRANK_MODEL``."""
    if text is None:
        text = os.environ.get(ENV_MODEL) or DEFAULT_MODEL
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
        raise ConfigError(f"empty entry in fallback chain {text!r}")
    return tuple(parse_spec(part, registry=registry) for part in parts)
