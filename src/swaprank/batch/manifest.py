"""The manifest that ties an output directory to one input and one model.

Resuming into a directory written for another input (or the same file edited since) would mix
scores of different pairs under the same row numbers; resuming with another model would mix two
models' scores in one table. Both are silent corruptions, so the manifest records what the output
was written for and a mismatch is refused with both values named. Batch size, actor count and the
cluster address may change between runs: they change how the work is done, not what it computes.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from swaprank._version import __version__
from swaprank.types import ConfigError

MANIFEST_NAME = "_swaprank_batch.json"  # leading underscore: Parquet dataset readers skip it
FORMAT = 1


def _file_mode() -> int:
    """0666 less the umask, read once at import (os.umask is process-wide: not while Ray's threads run)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


FILE_MODE = _file_mode()  # what open() would have created: what mkstemp's 0600 files are changed to


class ResumeMismatchError(ConfigError):
    """``--output`` already holds scores written for a different input, model or output layout."""


@dataclass(frozen=True)
class Manifest:
    input_path: str
    input_fingerprint: str
    rows: int
    model: str  # the config string with any credentials masked (swaprank.redaction)
    columns: list[str]  # the output's columns, which a resumed run must produce identically
    swaprank_version: str = __version__
    format: int = FORMAT

    def checked_against(self, existing: Manifest) -> None:
        """Raise :class:`ResumeMismatchError` unless ``existing`` (on disk) describes the same job."""
        problems = []
        if existing.input_fingerprint != self.input_fingerprint or existing.rows != self.rows:
            problems.append(f"input: it was written for {existing.input_path} ({existing.rows} rows, "
                            f"{existing.input_fingerprint[:19]}...), this run reads {self.input_path} "
                            f"({self.rows} rows, {self.input_fingerprint[:19]}...)")
        if existing.model != self.model:
            problems.append(f"model: it was written with {existing.model!r}, this run uses {self.model!r}")
        if existing.columns != self.columns:
            problems.append(f"columns: it has {existing.columns}, this run writes {self.columns}")
        if existing.format != self.format:
            problems.append(f"format: it is batch output format {existing.format}, this swaprank writes {self.format}")
        if problems:
            raise ResumeMismatchError("the output directory holds another job's scores; refusing to resume into it ("
                                      + "; ".join(problems) + "). Use a new --output, or delete the old one.")


def read_manifest(directory: Path) -> Manifest | None:
    path = directory / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return Manifest(**data)
    except (ValueError, TypeError) as exc:
        raise ResumeMismatchError(f"{path} is not a swaprank batch manifest ({exc}); refusing to resume") from None


def write_manifest(directory: Path, manifest: Manifest) -> None:
    """Write atomically (temp file + rename): a job killed mid-write leaves the old manifest or none."""
    directory.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".manifest-", suffix=".tmp", dir=directory)
    os.chmod(temp, FILE_MODE)  # mkstemp makes 0600; the manifest is an ordinary file
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(asdict(manifest), handle, indent=2)
        handle.write("\n")
    os.replace(temp, directory / MANIFEST_NAME)
