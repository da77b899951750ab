"""The model part of a local backend's spec (cross-encoder, colbert): a directory or a hub id.

A model that starts like a path (``/``, ``./``, ``../``, ``~``) is a directory, and one that is not
there is refused when the config string is parsed, naming the path: a typo in a path is a
configuration mistake, not a reason to try the hub or to fall back to the next backend of a chain.
"""

from __future__ import annotations

import os

from swaprank.types import ConfigError

PATH_PREFIXES = ("/", "./", "../", "~", ".\\", "..\\")


def looks_like_path(model: str) -> bool:
    return model.startswith(PATH_PREFIXES)


def check_model_directory(vendor: str, model: str) -> None:
    """Refuse a path-looking model that is not a directory here (``ConfigError`` naming the path)."""
    if not looks_like_path(model):
        return
    expanded = os.path.expanduser(model)
    if os.path.isdir(expanded):
        return
    shown = repr(model) if expanded == model else f"{model!r} ({expanded})"
    problem = "is a file, not a model directory" if os.path.exists(expanded) else "does not exist"
    raise ConfigError(f"{vendor} model directory {problem}: {shown}; a model written as a path (starting with /, "
                      "./, ../ or ~) is loaded from that directory (a hub id is written org/name)")
