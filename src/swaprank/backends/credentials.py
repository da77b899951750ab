"""Where a backend's API key comes from: the argument, else the vendor's environment variables."""

from __future__ import annotations

import os
from collections.abc import Sequence

from pydantic import SecretStr


def resolve_api_key(explicit: SecretStr | str | None, env_names: Sequence[str]) -> SecretStr | None:
    """The key from the argument, else the first env var set; always wrapped in SecretStr."""
    if explicit is not None:
        return explicit if isinstance(explicit, SecretStr) else SecretStr(explicit)
    for name in env_names:
        value = os.environ.get(name)
        if value:
            return SecretStr(value)
    return None
