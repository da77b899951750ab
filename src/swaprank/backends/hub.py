"""Loading a model by Hugging Face hub id when the hub cannot be reached: fail in seconds, say how to fix it.

Without this, a hub id on a machine without the hub (an air-gapped server, a container without
egress) spends a minute in huggingface_hub's retries ("Retrying in 8s [Retry 5/5]") before the
error. Before a local backend loads a hub id, :func:`prepare` asks the hub endpoint once
(``HF_ENDPOINT``, default https://huggingface.co; a HEAD with a short timeout; proxies from the
environment honoured). Any HTTP answer means the hub is there and the normal download path runs
unchanged. No answer: a model already in the local cache is loaded from it (``local_files_only``);
otherwise one ``BackendUnavailableError`` names the hub, the model and the three ways out. It is a
``BackendUnavailableError`` (a chain falls back to its next backend): the configuration is right,
the machine cannot fetch the model. ``HF_HUB_OFFLINE=1`` skips the probe (huggingface_hub then
never touches the network); ``SWAPRANK_HUB_TIMEOUT`` sets the probe's timeout in seconds (3).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from swaprank.types import BackendUnavailableError

logger = logging.getLogger("swaprank.backends.hub")

DEFAULT_ENDPOINT = "https://huggingface.co"
ENV_TIMEOUT = "SWAPRANK_HUB_TIMEOUT"
_REMEMBER_SECONDS = 30.0  # several models loading together probe once

_lock = threading.Lock()
_last: dict[str, tuple[float, str | None]] = {}  # endpoint -> (when, problem or None)


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline() -> bool:
    return (os.environ.get("HF_HUB_OFFLINE") or "").strip().lower() in ("1", "true", "yes", "on")


def _timeout() -> float:
    try:
        return max(0.1, float(os.environ.get(ENV_TIMEOUT) or 3.0))
    except ValueError:
        return 3.0


def probe(url: str, timeout: float) -> str | None:
    """None when ``url`` answers at all (any status), else what went wrong (one attempt, no retry)."""
    import httpx

    try:
        httpx.head(url, timeout=timeout, follow_redirects=False)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return None


def hub_problem() -> str | None:
    """Why the hub endpoint cannot be reached now (remembered for a few seconds), or None."""
    url = endpoint()
    with _lock:
        seen = _last.get(url)
        if seen is not None and time.monotonic() - seen[0] < _REMEMBER_SECONDS:
            return seen[1]
        problem = probe(url, _timeout())
        _last[url] = (time.monotonic(), problem)
    return problem


def cached(model: str) -> bool:
    """Whether the hub id's files are in the local Hugging Face cache (its config.json is)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id=model, filename="config.json"), str)
    except Exception:  # no huggingface_hub, an id that is not a repo id, an unreadable cache
        return False


def prepare(model: str, vendor: str) -> bool:
    """Before loading ``model`` by hub id: True to load it from the local cache only (the hub is
    unreachable but the cache has it), False for the normal path; raise when neither can serve it."""
    if os.path.isdir(os.path.expanduser(model)) or offline():
        return False
    problem = hub_problem()
    if problem is None:
        return False
    if cached(model):
        logger.warning("%s %s: the Hugging Face hub (%s) is unreachable (%s); loading it from the local cache",
                       vendor, model, endpoint(), problem)
        return True
    raise BackendUnavailableError(
        f"{vendor} {model!r}: the Hugging Face hub ({endpoint()}) cannot be reached ({problem}) and the model is "
        f"not in the local cache. Point the config string at a local copy ({vendor}:/path/to/model, a directory "
        f"saved with save_pretrained or downloaded elsewhere with `hf download {model} --local-dir DIR`), copy a "
        "Hugging Face cache that has it (~/.cache/huggingface/hub, or $HF_HOME/hub) here and set HF_HUB_OFFLINE=1, "
        "or set HF_ENDPOINT to a mirror you can reach", vendor=vendor)
