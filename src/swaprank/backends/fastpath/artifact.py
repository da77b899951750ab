"""Exported artifacts: what one holds, where the cache keeps them, and how they are published.

An artifact is a directory: the model (``model.onnx`` or OpenVINO's ``model.xml``/``model.bin``),
``tokenizer.json`` and ``swaprank-artifact.json`` (this module's :class:`Manifest`: runtime,
precision, quantization, the inputs the model takes, how its output maps to [0, 1], the parity
numbers measured when it was made, and the versions that made it).

The cache lives under ``$SWAPRANK_CACHE_DIR`` (default: the platform's user cache directory,
e.g. ``~/.cache/swaprank``) in ``artifacts/``. Its key hashes the model files' contents, the
options that change the artifact, the runtime's version and this module's format version, so
editing the model, changing an option or upgrading the runtime makes a new artifact rather than
reusing a stale one. Publication is atomic: an artifact is built in a temporary sibling directory
and renamed into place, and a file lock makes a second process wait for the first one's export
instead of repeating it; a crashed export leaves only a temporary directory, never a half
artifact under a real key.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from swaprank.types import ConfigError

FORMAT_VERSION = 1
# The int8 export recipe (quantizer settings in export.py): part of the cache key of int8 artifacts,
# so a changed recipe is exported anew instead of serving an artifact built the old way.
# 2: SmoothQuant 0.75 for MatMuls and longer built-in calibration passages (benchmarks/RESULTS.md 2b).
INT8_RECIPE = 2
MANIFEST = "swaprank-artifact.json"
CACHE_ENV = "SWAPRANK_CACHE_DIR"
RUNTIME_PACKAGES = {"onnx": "onnxruntime", "openvino": "openvino"}


@dataclass(frozen=True)
class Manifest:
    """Everything a scorer needs to serve an artifact without the original model or torch."""

    runtime: str  # onnx | openvino
    precision: str  # fp32 | bf16: what the runtime computes in (OpenVINO's inference precision)
    quantize: str  # none | int8
    model_file: str
    inputs: list[str]
    max_length: int
    pad_id: int
    activation: str  # identity (outputs are logits) | sigmoid (outputs are probabilities)
    source: str = ""  # the model id or directory name it was exported from (never a URL)
    source_digest: str = ""
    parity: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    def write(self, directory: Path) -> None:
        (directory / MANIFEST).write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n")

    @classmethod
    def read(cls, directory: Path) -> Manifest:
        path = directory / MANIFEST
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{directory} is not a readable swaprank artifact: {exc}") from None
        if data.get("format") != FORMAT_VERSION:
            raise ConfigError(
                f"{directory} was exported by another swaprank (artifact format {data.get('format')!r}, "
                f"this version reads {FORMAT_VERSION}); export it again with `swaprank export`"
            )
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


def is_artifact(directory: Path) -> bool:
    return (directory / MANIFEST).is_file()


def cache_root() -> Path:
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit).expanduser() / "artifacts"
    import platformdirs

    return Path(platformdirs.user_cache_dir("swaprank", appauthor=False)) / "artifacts"


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not-installed"


# ----------------------------------------------------------------------------- keys

_SKIP_DIRS = {"onnx", "openvino", ".cache", ".git", "__pycache__"}


def model_files(directory: Path) -> Iterator[Path]:
    """The files that define a model (weights, config, tokenizer), in a stable order."""
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and not name.endswith(".lock"):
                yield Path(root) / name


def digest_model(directory: Path) -> str:
    """SHA-256 over the model files' relative names and contents."""
    total = hashlib.sha256()
    for path in model_files(directory):
        total.update(str(path.relative_to(directory)).encode() + b"\0")
        one = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                one.update(block)
        total.update(one.digest())
    return total.hexdigest()


def cache_key(source_digest: str, runtime: str, precision: str, quantize: str,
              calibration_digest: str = "") -> str:
    described = json.dumps({
        "format": FORMAT_VERSION,
        "source": source_digest,
        "runtime": runtime,
        "runtime_version": package_version(RUNTIME_PACKAGES[runtime]),
        "precision": precision,
        "quantize": quantize,
        "calibration": calibration_digest if quantize != "none" else "",
        "recipe": INT8_RECIPE if quantize != "none" else 0,
    }, sort_keys=True)
    return hashlib.sha256(described.encode()).hexdigest()


def cache_dir_for(model_name: str, key: str, runtime: str, precision: str, quantize: str) -> Path:
    readable = re.sub(r"[^A-Za-z0-9._-]+", "-", model_name).strip("-.")[-48:] or "model"
    suffix = precision if quantize == "none" else quantize
    return cache_root() / f"{readable}-{runtime}-{suffix}-{key[:16]}"


# ----------------------------------------------------------------------------- publication


@contextmanager
def _locked(target: Path) -> Iterator[None]:
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        yield


def publish(target: Path, build: Callable[[Path], Any], *, replace: bool = False) -> Path:
    """Make ``target`` exist, building it at most once across processes.

    ``build(tmp)`` writes a complete artifact into an empty temporary directory beside ``target``;
    it is renamed into place only when ``build`` returns, so readers see no artifact or a whole one.
    ``replace`` overwrites an existing target (``swaprank export --out DIR`` into a used directory).
    """
    with _locked(target):
        if is_artifact(target) and not replace:
            return target  # another process finished the same export while we waited
        if target.exists() and not is_artifact(target) and (not target.is_dir() or any(target.iterdir())):
            raise ConfigError(f"refusing to overwrite {target}: it exists and is not a swaprank artifact")
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            build(tmp)
            if target.exists():
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                os.replace(target, old)
                os.replace(tmp, target)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def describe_source(model: str) -> str:
    """A name for the source model that is safe to record: a directory's name, or a hub id."""
    expanded = Path(os.path.expanduser(model))
    return expanded.name if expanded.is_dir() else model


def manifest_summary(manifest: Manifest) -> Mapping[str, Any]:
    return {"runtime": manifest.runtime, "precision": manifest.precision, "quantize": manifest.quantize,
            **{k: manifest.parity[k] for k in ("max_abs_diff", "top_k_agreement") if k in manifest.parity}}
