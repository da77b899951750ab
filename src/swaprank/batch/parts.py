"""The output directory: Parquet parts written atomically, and which input rows they already hold.

``--output`` is a directory that Parquet readers (pandas, pyarrow, Ray, DuckDB, Spark) read as one
table. Each finished batch becomes one part, ``part-<first row>-<last row>.parquet`` (the input row
range it covers; the ``row`` column inside is the truth), written to a hidden temp file and renamed,
so a job killed at any instant leaves whole parts and at most a stray temp file, never half a part.
On restart the parts are read back and only the rows missing from them are scored again. Hidden
(``.``) and ``_`` files are skipped by every Parquet dataset reader.

Nothing on disk is trusted blindly (issue 24): before resuming, and again before a run reports
success, every part is read whole and checked (:meth:`OutputDirectory.scan`): readable, exactly the
job's columns and types, no null or NaN score, rows inside the input, no row twice (in one part or
in two: a copied or overlapping part), the file name matching its rows, and the pairs' own columns
equal to the input's rows. Any file a Parquet reader of the directory would read that is not such a
part is refused too. Each refusal is a :class:`CorruptPartError` naming the file and the fix
(removing a part is always safe: the next run scores its rows again). Only one run may write a
directory at a time (``job`` holds :data:`LOCK_NAME`).

Exactly once: the driver is the only writer and keeps a bitmap of the rows on disk; rows that arrive
again (Ray re-executing a task whose result it had already delivered) are dropped before writing.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swaprank.batch.manifest import FILE_MODE
from swaprank.types import SwapRankError

PART_GLOB = "part-*.parquet"
PART_NAME = re.compile(r"part-(\d{12})-(\d{12})\.parquet")
TEMP_PREFIX = ".part-"
LOCK_NAME = "_swaprank_batch.lock"  # leading underscore: Parquet dataset readers skip it
SCORES = ("score", "raw_score")


class BatchOutputError(SwapRankError, RuntimeError):
    """The output directory cannot be used as it is; ``path`` is the file at fault."""

    def __init__(self, message: str, *, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


class CorruptPartError(BatchOutputError):
    """A file of the output is not a whole, unique part of this job: unreadable, wrong columns or
    types, null scores, rows outside the input or held by another part, or not this input's pairs."""


class OutputLockedError(BatchOutputError):
    """Another ``swaprank batch`` run is writing the same output directory (it holds the lock)."""


def _fix(path: Path) -> str:
    return f"delete {path} (the next run scores its rows again)"


class OutputDirectory:
    """Parts of one job's output, and the rows they cover.

    ``expected`` is the input as the output must hold it (the pairs' columns of the manifest, without
    the scores), which is what every part's rows are compared with; ``columns`` the output's columns.
    """

    def __init__(self, path: Path, expected: Any, columns: Sequence[str]) -> None:
        import numpy as np

        self.path = path
        self.expected = expected
        self.columns = list(columns)
        self.rows = int(expected.num_rows)
        self.done = np.zeros(self.rows, dtype=bool)

    def parts(self) -> list[Path]:
        return sorted(self.path.glob(PART_GLOB))

    def scan(self) -> int:
        """Check every part (see the module docstring) and mark its rows done; return how many are.

        Temp files a killed run left are removed first (only the lock holder scans)."""
        import numpy as np

        for stray in self.path.glob(TEMP_PREFIX + "*"):
            stray.unlink(missing_ok=True)
        owner = np.full(self.rows, -1, dtype=np.int64)
        parts: list[Path] = []
        for entry in sorted(self.path.iterdir()):
            if entry.name.startswith((".", "_")):
                continue
            if not PART_NAME.fullmatch(entry.name) or not entry.is_file() or entry.is_symlink():
                raise CorruptPartError(
                    f"{entry} is not a part this job wrote, yet a Parquet reader of {self.path} would read it as "
                    f"rows; move it out of the directory (or {_fix(entry)})", path=entry)
            rows = self._check(entry)
            held = owner[rows]
            if (held >= 0).any():
                first = int(np.flatnonzero(held >= 0)[0])
                other = parts[int(held[first])]
                raise CorruptPartError(
                    f"{entry} and {other} both hold row {int(rows[first])} "
                    f"({int((held >= 0).sum())} rows in common): a copied or overlapping part would count those "
                    f"pairs twice; {_fix(entry)}, or delete {other}", path=entry)
            owner[rows] = len(parts)
            parts.append(entry)
        self.done = owner >= 0
        return int(self.done.sum())

    def _check(self, part: Path) -> Any:
        """The rows of one part, once it is proven to be a whole, well-formed part of this job."""
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(part)
        except (OSError, pa.ArrowException) as exc:
            raise CorruptPartError(f"{part} is not a readable Parquet part ({type(exc).__name__}: {exc}); "
                                   f"{_fix(part)}", path=part) from None
        if table.column_names != self.columns:
            missing = [c for c in self.columns if c not in table.column_names]
            extra = [c for c in table.column_names if c not in self.columns]
            raise CorruptPartError(
                f"{part} has columns {table.column_names}, this job writes {self.columns}"
                f"{f' (missing {missing})' if missing else ''}{f' (unexpected {extra})' if extra else ''}; "
                f"{_fix(part)}", path=part)
        for name in self.columns:
            kind = table.schema.field(name).type
            wanted = ("int64" if name == "row" else "double" if name in SCORES else "string")
            ok = (pa.types.is_int64(kind) if name == "row" else pa.types.is_float64(kind) if name in SCORES
                  else pa.types.is_string(kind) or pa.types.is_large_string(kind))
            if not ok:
                raise CorruptPartError(f"{part}: column {name!r} is {kind}, expected {wanted}; {_fix(part)}",
                                       path=part)
        for name in ("row", *SCORES):
            column = table[name]
            bad = pc.is_null(column, nan_is_null=name != "row")
            if pc.any(bad).as_py():
                at = int(pc.index(bad, True).as_py())
                raise CorruptPartError(f"{part}: {int(pc.sum(bad).as_py())} null or NaN {name!r} values (first at "
                                       f"position {at}): those pairs were never scored; {_fix(part)}", path=part)
        rows = table["row"].to_numpy()
        if len(rows) == 0:
            raise CorruptPartError(f"{part} holds no rows; {_fix(part)}", path=part)
        if rows.min() < 0 or rows.max() >= self.rows:
            raise CorruptPartError(f"{part} holds rows outside the input's 0..{self.rows - 1}; {_fix(part)}",
                                   path=part)
        unique, counts = np.unique(rows, return_counts=True)
        if len(unique) != len(rows):
            raise CorruptPartError(f"{part} holds row {int(unique[counts > 1][0])} more than once; {_fix(part)}",
                                   path=part)
        named = PART_NAME.fullmatch(part.name)
        assert named is not None  # scan() only checks well-named parts
        if (int(named[1]), int(named[2])) != (int(unique[0]), int(unique[-1])):
            raise CorruptPartError(f"{part} holds rows {int(unique[0])}..{int(unique[-1])}, not the rows its name "
                                   f"says (a renamed or edited part); {_fix(part)}", path=part)
        expected = self.expected.take(pa.array(rows))
        for name in expected.column_names:
            if name == "row" or name not in table.column_names:
                continue
            if not table[name].cast(pa.string()).equals(expected[name].cast(pa.string())):
                raise CorruptPartError(f"{part}: column {name!r} differs from the input's rows (a part of another "
                                       f"job or an edited part); {_fix(part)}", path=part)
        return rows

    def missing(self) -> Any:
        """Row numbers not yet scored, ascending (a numpy int64 array)."""
        import numpy as np

        return np.flatnonzero(~self.done).astype(np.int64)

    def write(self, table: Any) -> int:
        """Write the rows of ``table`` not yet on disk as one part; return how many were written."""
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        rows = table["row"].to_numpy()
        fresh = ~self.done[rows]
        if not fresh.all():
            table = table.filter(pa.array(fresh))
            rows = rows[fresh]
        if table.num_rows == 0:
            return 0
        for score in SCORES:
            if pc.any(pc.is_null(table[score], nan_is_null=True)).as_py():
                raise BatchOutputError(f"the scorer returned null or NaN {score!r} values; nothing of this batch "
                                       "was written (run again to retry its rows)")
        table = table.sort_by("row")
        first, last = int(pc.min(table["row"]).as_py()), int(pc.max(table["row"]).as_py())
        name = f"part-{first:012d}-{last:012d}.parquet"
        if (self.path / name).exists():  # never replace a part: its rows would silently go missing
            raise CorruptPartError(f"{self.path / name} already exists but this run did not count its rows as "
                                   f"done; {_fix(self.path / name)}", path=self.path / name)
        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=self.path)
        os.close(fd)
        os.chmod(temp, FILE_MODE)  # mkstemp makes 0600; parts are ordinary files
        try:
            pq.write_table(table, temp)
            with open(temp, "rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temp, self.path / name)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        self.done[rows] = True
        return int(table.num_rows)

    def complete(self) -> bool:
        return bool(self.done.all())


def read_scores(path: str | Path) -> Any:
    """The whole output as one Arrow table in input order (what pandas.read_parquet(path) reads, sorted).

    A partial output is returned as it is; rows held twice, null or NaN scores and unreadable parts
    are refused with :class:`CorruptPartError` (``swaprank batch`` on the same input and output runs
    the full check, and completes a partial output)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    path = Path(path)
    try:
        table = ds.dataset(str(path), format="parquet").to_table().sort_by("row")
    except (OSError, pa.ArrowException) as exc:
        raise CorruptPartError(f"{path} does not read as one table of scores ({type(exc).__name__}: {exc}); run "
                               "swaprank batch on it again for the file at fault", path=path) from None
    rows = table["row"].to_numpy(zero_copy_only=False)
    repeated = np.flatnonzero(np.diff(rows) == 0)
    if len(repeated):
        raise CorruptPartError(f"{path} holds row {int(rows[repeated[0]])} more than once ({len(repeated)} repeats: a "
                               "copied or overlapping part); run swaprank batch on it again for the file at fault",
                               path=path)
    for score in SCORES:
        if score in table.column_names and pc.any(pc.is_null(table[score], nan_is_null=True)).as_py():
            raise CorruptPartError(f"{path} has null or NaN {score!r} values (unscored rows); run swaprank batch on "
                                   "it again for the file at fault", path=path)
    return table
