"""The output directory: Parquet parts written atomically, and which input rows they already hold.

``--output`` is a directory that Parquet readers (pandas, pyarrow, Ray, DuckDB, Spark) read as one
table. Each finished batch becomes one part, ``part-<first row>-<last row>.parquet`` (the input row
range it covers; the ``row`` column inside is the truth), written to a hidden temp file and renamed,
so a job killed at any instant leaves whole parts and at most a stray temp file, never half a part.
On restart the ``row`` columns of the parts are read back and only the rows missing from them are
scored again. Hidden (``.``) and ``_`` files are skipped by every Parquet dataset reader.

Exactly once: the driver is the only writer and keeps a bitmap of the rows on disk; rows that arrive
again (Ray re-executing a task whose result it had already delivered) are dropped before writing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from swaprank.batch.manifest import FILE_MODE

PART_GLOB = "part-*.parquet"
TEMP_PREFIX = ".part-"


class OutputDirectory:
    """Parts of one job's output, and the rows they cover."""

    def __init__(self, path: Path, rows: int) -> None:
        import numpy as np

        self.path = path
        self.rows = rows
        self.done = np.zeros(rows, dtype=bool)

    def parts(self) -> list[Path]:
        return sorted(self.path.glob(PART_GLOB))

    def scan(self) -> int:
        """Mark the rows already on disk as done (removing temp files a killed run left); return how many."""
        import pyarrow.parquet as pq

        for stray in self.path.glob(TEMP_PREFIX + "*"):
            stray.unlink(missing_ok=True)
        for part in self.parts():
            rows = pq.read_table(part, columns=["row"])["row"].to_numpy()
            if len(rows) and (rows.min() < 0 or rows.max() >= self.rows):
                raise ValueError(f"{part} holds rows outside the input's 0..{self.rows - 1}")
            self.done[rows] = True
        return int(self.done.sum())

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
        table = table.sort_by("row")
        first, last = int(pc.min(table["row"]).as_py()), int(pc.max(table["row"]).as_py())
        name = f"part-{first:012d}-{last:012d}.parquet"
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
    """The whole output as one Arrow table in input order (what pandas.read_parquet(path) reads, sorted)."""
    import pyarrow.dataset as ds

    return ds.dataset(str(path), format="parquet").to_table().sort_by("row")
