"""Config strings: the one knob that swaps the model behind every adapter.

Grammar (see DESIGN.md section 2)::

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
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from swaprank.types import ConfigError

ENV_MODEL = "SWAPRANK_MODEL"
DEFAULT_MODEL = "cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Option:
    """One typed option a backend accepts in its config string."""

    type: type = str
    default: Any = None
    help: str = ""
    choices: tuple[str, ...] | None = None
    minimum: float | None = None

    def coerce(self, name: str, value: Any) -> Any:
        """Turn a string (or an already typed value) into this option's type, or raise ConfigError."""
        try:
            result = self._convert(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"option {name!r} expects {self.type.__name__}, got {value!r}"
            ) from None
        if self.choices is not None and result not in self.choices:
            raise ConfigError(
                f"option {name!r} must be one of {', '.join(self.choices)}; got {value!r}"
            )
        if self.minimum is not None and result < self.minimum:
            raise ConfigError(f"option {name!r} must be >= {self.minimum:g}; got {value!r}")
        return result

    def _convert(self, value: Any) -> Any:
        if self.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
                return True
            if text in _FALSE:
                return False
            raise ValueError(value)
        if self.type is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError(value)
            return int(value)
        if self.type is float:
            if isinstance(value, bool):
                raise ValueError(value)
            return float(value)
        return self.type(value)


@dataclass(frozen=True)
class BackendSpec:
    """A parsed config string: which backend, which model, which explicitly given options.

    Options hold only what the user wrote (typed), so ``format_spec`` reproduces the user's
    string and two specs compare equal exactly when they would build the same backend.
    """

    backend: str
    model: str
    options: tuple[tuple[str, Any], ...] = field(default=())

    @property
    def option_dict(self) -> dict[str, Any]:
        return dict(self.options)

    def get(self, name: str, default: Any = None) -> Any:
        return self.option_dict.get(name, default)

    def __str__(self) -> str:
        return format_spec(self)


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


def _option_table(factory: Any) -> Mapping[str, Option] | None:
    table = getattr(factory, "options", None)
    return table if isinstance(table, Mapping) else None


def build_spec(backend: str, model: str = "", options: Mapping[str, Any] | None = None) -> BackendSpec:
    """Validate a backend name, model and options into a BackendSpec (all typed)."""
    from swaprank import registry

    name = registry.canonical_name(backend)
    factory = registry.backend_factory(name)
    if not model:
        model = getattr(factory, "default_model", None) or ""
        if not model:
            raise ConfigError(
                f"backend {name!r} has no default model; write it as {name}:<model>"
            )
    table = _option_table(factory)
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


def parse_spec(text: str) -> BackendSpec:
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
    return build_spec(backend.strip(), model.strip(), dict(options))


def parse_chain(
    text: str | BackendSpec | Sequence[BackendSpec] | None,
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
    return tuple(parse_spec(part) for part in parts)


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return quote(str(value), safe=":/.,-_~@*")


def format_spec(spec: BackendSpec) -> str:
    """The canonical string of a spec; ``parse_spec(format_spec(s)) == s``."""
    text = f"{spec.backend}:{spec.model}"
    if spec.options:
        text += "?" + "&".join(f"{quote(k, safe='_')}={_format_value(v)}" for k, v in spec.options)
    return text


def format_chain(specs: tuple[BackendSpec, ...]) -> str:
    return " | ".join(format_spec(spec) for spec in specs)
