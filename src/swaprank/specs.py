"""What a config string means once parsed: ``BackendSpec`` and the typed ``Option`` table.

Kept apart from the parser (``swaprank.config``), which consults the registry: backends import
this module, the registry imports neither, so ``config -> registry -> backends -> specs`` has
no cycle.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from swaprank.redaction import is_secret_name, show_value
from swaprank.types import ConfigError

# What an option can do beyond tuning the model (docs/design.md, "Security"): a config string from a
# less trusted source (``trusted=False``) may not set an option that has one.
Risk = Literal["runs-code", "reads-files", "sends-credentials"]
RISKS: tuple[Risk, ...] = ("runs-code", "reads-files", "sends-credentials")

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
    # None, or what the option can do that a config string from an untrusted source must not
    # (``risk_reason`` says how, for the error and the option reference).
    risk: Risk | None = None
    risk_reason: str = ""
    # A check of the value beyond its type and choices (a device name...), run when the config string
    # is parsed: it returns what is wrong, with a suggestion ("did you mean 'cuda'?"), or None.
    check: Callable[[Any], str | None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.risk is not None and self.risk not in RISKS:
            raise ConfigError(f"Option risk must be one of {', '.join(RISKS)} or None, got {self.risk!r}")

    def coerce(self, name: str, value: Any) -> Any:
        """Turn a string (or an already typed value) into this option's type, or raise ConfigError."""
        try:
            result = self._convert(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"option {name!r} expects {self.type.__name__}, got {show_value(name, value)}"
            ) from None
        if self.choices is not None and result not in self.choices:
            close = difflib.get_close_matches(str(result).lower(), self.choices, n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close and not is_secret_name(name) else ""
            raise ConfigError(
                f"option {name!r} must be one of {', '.join(self.choices)}; got {show_value(name, value)}{hint}"
            )
        if self.minimum is not None and result < self.minimum:
            raise ConfigError(f"option {name!r} must be >= {self.minimum:g}; got {show_value(name, value)}")
        problem = self.check(result) if self.check is not None else None
        if problem:
            raise ConfigError(f"option {name!r} got {show_value(name, value)}: {problem}")
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
