"""Exported artifacts: what one holds, where the cache keeps them, and how they are published.

An artifact is a directory: the model (``model.onnx`` or OpenVINO's ``model.xml``/``model.bin``),
``tokenizer.json`` and ``swaprank-artifact.json`` (this module's :class:`Manifest`: runtime,
precision, quantization, the inputs the model takes, how its output maps to [0, 1], the parity
numbers measured when it was made, the versions that made it, and the SHA-256 of every other file).

Nothing in an artifact directory is trusted blindly: the manifest's file names must stay inside the
directory (no absolute paths, no ``..``, no symlink leading out), and every file is checked against
its recorded digest before a runtime loads it (:func:`verify_files`; once per process and file
version, about 50 ms for a MiniLM-size fp32 artifact: benchmarks/RESULTS.md). A mismatch is an
:class:`ArtifactIntegrityError` naming the file and the fix, never a silently different ranking.

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
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from swaprank.types import BackendUnavailableError, ConfigError

# 2: the manifest records every file's SHA-256 (``files``), checked before loading. Format-1
# artifacts have no digests and are refused; cache entries are keyed by this number, so the cache
# exports a format-2 artifact beside the old one instead of serving it.
FORMAT_VERSION = 2
# The int8 export recipe (quantizer settings in export.py): part of the cache key of int8 artifacts,
# so a changed recipe is exported anew instead of serving an artifact built the old way.
# 2: SmoothQuant 0.75 for MatMuls and longer built-in calibration passages (benchmarks/RESULTS.md 2b).
INT8_RECIPE = 2
MANIFEST = "swaprank-artifact.json"
CACHE_ENV = "SWAPRANK_CACHE_DIR"
RUNTIME_PACKAGES = {"onnx": "onnxruntime", "openvino": "openvino"}
TOKENIZER_FILE = "tokenizer.json"


class ArtifactIntegrityError(BackendUnavailableError):
    """An artifact's files are not the ones its manifest recorded (modified, missing, or named
    outside the artifact directory); nothing of it was loaded.

    A subclass of BackendUnavailableError, like a model that fails to load: a fallback chain moves on
    to its next spec, and no byte of the refused artifact is served. The message names the directory
    and the fix (delete it so the cache exports it again, or ``swaprank export ... --force``).
    """


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
    files: dict[str, str] = field(default_factory=dict)  # relative name -> SHA-256 hex of its bytes
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
        if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
            found = data.get("format") if isinstance(data, dict) else None
            raise ConfigError(
                f"{directory} was exported by another swaprank (artifact format {found!r}, this version "
                f"reads {FORMAT_VERSION}, whose manifest records a digest of every file); export it again "
                f"with `swaprank export SPEC --out {directory} --force`, or delete it if it is a cache entry"
            )
        known = set(cls.__dataclass_fields__)
        manifest = cls(**{k: v for k, v in data.items() if k in known})
        manifest.check_names(directory)
        return manifest

    def check_names(self, directory: Path) -> None:
        """Refuse a manifest that names files outside ``directory`` or records no digest for a file
        the runtime loads (the model, OpenVINO's weights beside it, the tokenizer)."""
        files = self.files
        if not isinstance(files, dict) or not files or not all(
                isinstance(k, str) and isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v)
                for k, v in files.items()):
            raise _integrity(directory, "its manifest records no valid file digests")
        if not isinstance(self.model_file, str):
            raise _integrity(directory, f"its manifest's model_file is {self.model_file!r}")
        for name in files:
            confined(directory, name)
        needed = [self.model_file, TOKENIZER_FILE]
        if self.runtime == "openvino":
            needed.append(str(PurePosixPath(self.model_file).with_suffix(".bin")))
        for name in needed:
            confined(directory, name)
            if name not in files:
                raise _integrity(directory, f"its manifest records no digest for {name!r}, which the runtime loads")

    def paths(self, directory: Path) -> list[Path]:
        return [confined(directory, name) for name in sorted(self.files)]


def _integrity(directory: Path, problem: str) -> ArtifactIntegrityError:
    fix = ("delete the directory; the next load exports it again" if _in_cache(directory)
           else "export it again with `swaprank export SPEC --out DIR --force`, or delete it")
    return ArtifactIntegrityError(f"artifact {directory} was refused: {problem}. Nothing of it was loaded; {fix}",
                                  vendor="cross-encoder")


def _in_cache(directory: Path) -> bool:
    try:
        return directory.resolve().is_relative_to(cache_root().resolve())
    except (OSError, RuntimeError):
        return False


def confined(directory: Path, name: str) -> Path:
    """``directory / name``, refused unless ``name`` is a plain relative path whose target (symlinks
    followed) lies inside ``directory``."""
    if (not isinstance(name, str) or not name or "\\" in name or "\0" in name
            or PurePosixPath(name).is_absolute() or PureWindowsPath(name).anchor
            or any(part in ("..", "") for part in name.split("/"))):
        raise _integrity(directory, f"its manifest names {name!r}, which is not a plain file name inside it")
    path = directory / name
    try:
        inside = path.resolve().is_relative_to(directory.resolve())
    except (OSError, RuntimeError):  # a symlink loop
        inside = False
    if not inside:
        raise _integrity(directory, f"{name!r} leads outside the artifact directory (a symlink)")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    buffer = bytearray(1 << 20)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as handle:
        while size := handle.readinto(buffer):
            digest.update(view[:size])
    return digest.hexdigest()


def digest_files(directory: Path) -> dict[str, str]:
    """The SHA-256 of every file of a freshly built artifact but the manifest (recorded in it)."""
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            relative = path.relative_to(directory).as_posix()
            if relative != MANIFEST:
                found[relative] = sha256_file(path)
    return found


# (path, device, inode, size, mtime, ctime) of files whose digest matched in this process. ctime cannot
# be set back by a writer, so a file changed since it was checked is hashed again.
_VERIFIED: dict[tuple[str, int, int, int, int, int], str] = {}


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Raise :class:`ArtifactIntegrityError` unless every file the manifest lists has its recorded
    digest. Each file version is hashed once per process (re-loading the same artifact is free)."""
    for name, expected in sorted(manifest.files.items()):
        path = confined(directory, name)
        try:
            st = path.stat()
            if not path.is_file():
                raise _integrity(directory, f"{name!r} is not a regular file")
            key = (str(path.resolve()), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
            if _VERIFIED.get(key) == expected:
                continue
            actual = sha256_file(path)
        except OSError as exc:
            raise _integrity(directory, f"{name!r} cannot be read ({type(exc).__name__}: {exc.strerror or exc})") \
                from None
        if actual != expected:
            raise _integrity(directory, f"{name!r} has SHA-256 {actual[:16]}..., its manifest records "
                                        f"{expected[:16]}... (modified after export: disk corruption or tampering)")
        _VERIFIED[key] = expected


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
