"""Which ``device=`` values a local model (torch) accepts, checked when the config string is parsed.

torch names a device ``type`` or ``type:index``; a value it would reject (``gpu``, ``cuda0``) is refused
at construction with the name it probably meant, never at the first query and never as a reason to
fall back to the next backend of a chain. Whether a valid device exists on this machine (``cuda``
without a GPU) is known only to torch, whose import costs seconds: that is checked when the model
loads (``swaprank.backends.cross_encoder.torch_loader``), as a ``ConfigError`` too.
"""

from __future__ import annotations

import difflib
import re

from swaprank.types import ConfigError

# torch's device types that a sentence-transformers model can be moved to (torch.device accepts these).
DEVICE_TYPES = ("cpu", "cuda", "mps", "xpu", "npu", "hpu", "xla", "mtia", "meta")
_DEVICE = re.compile(r"(?P<type>[a-z]+)(:(?P<index>\d+))?")
# What people write for the device they mean.
_MEANT = {"gpu": "cuda", "nvidia": "cuda", "cuda0": "cuda:0", "cuda1": "cuda:1", "metal": "mps", "apple": "mps",
          "cpu0": "cpu", "auto": "", "default": "", "best": ""}


def check_device(value: object) -> str | None:
    """None when torch would accept ``value`` as a device, else what is wrong and the likely name."""
    text = str(value).strip().lower()
    match = _DEVICE.fullmatch(text)
    if match and match["type"] in DEVICE_TYPES:
        return None
    valid = "cpu, cuda, cuda:N, mps, xpu (torch device names)"
    meant = _MEANT.get(text)
    if meant == "":
        return f"leave device out to use the best available one; valid: {valid}"
    if meant is None:
        close = difflib.get_close_matches(match["type"] if match else text, DEVICE_TYPES, n=1, cutoff=0.5)
        meant = (f"{close[0]}:{match['index']}" if match and match["index"] else close[0]) if close else None
    hint = f"did you mean {meant!r}? " if meant else ""
    return f"{hint}valid: {valid}"


def check_device_present(vendor: str, device: str | None) -> None:
    """Refuse, just before a model loads onto it, a ``cuda``/``mps`` device this machine does not have.

    A ``ConfigError`` (the configuration does not fit this machine; moving to the next backend of a
    chain would hide it), raised at load because telling needs torch. torch is imported by then
    anyway; importing it at construction would cost seconds for every Reranker.
    """
    if not device:
        return
    kind, _, index = str(device).strip().lower().partition(":")
    if kind not in ("cuda", "mps"):
        return
    from swaprank.backends.optional import require

    torch = require("torch", vendor)
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count and (not index or int(index) < count):
            return
        have = f"{count} CUDA device(s) (cuda:0..cuda:{count - 1})" if count else "no CUDA device"
        build = "" if torch.version.cuda else " (this torch is a CPU-only build)"
        raise ConfigError(f"device={device}: torch sees {have}{build}; use device=cpu, or leave device out to "
                          "use the best available one")
    if not torch.backends.mps.is_available():
        raise ConfigError(f"device={device}: torch sees no Apple MPS device; use device=cpu, or leave device out")
