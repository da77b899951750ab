"""Read and validate the pairs of a batch job (JSON lines or Parquet) before any work starts.

A job of millions of pairs that dies on row 3,000,017 after an hour of scoring wastes the hour; so
the whole input is read and checked up front and the first bad row is named (row number, field,
what was wrong). The rows become one Arrow table with an explicit ``row`` column (the 0-based input
row number), which is what identifies a pair in the output and in resume bookkeeping.

The fingerprint (SHA-256 of the file's bytes) is what ties an output directory to its input: a
resumed job must read the same bytes it started on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swaprank.types import InvalidInputError

REQUIRED = ("query", "text")
# Carried through to the output when the input has them (pairs' identity besides the row number).
PASSTHROUGH = ("id", "query_id", "doc_id")
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


class BatchInputError(InvalidInputError):
    """A row of the batch input is unusable; ``row`` is its 0-based input row number, ``field`` the column."""

    def __init__(self, message: str, *, row: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.row = row
        self.field = field


@dataclass(frozen=True)
class Pairs:
    """The validated input: ``table`` has ``row``, ``query``, ``text`` and any of ``id``/``query_id``/``doc_id``."""

    path: Path
    table: Any  # pyarrow.Table
    fingerprint: str
    columns: tuple[str, ...]  # the passthrough columns present

    def __len__(self) -> int:
        return int(self.table.num_rows)


def fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def read_pairs(path: str | Path) -> Pairs:
    """Read ``path`` (.jsonl or .parquet), validate every row, and return the pairs."""
    path = Path(path)
    if not path.is_file():
        raise BatchInputError(f"input {str(path)!r} does not exist or is not a file")
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise BatchInputError(f"input {path.name!r}: expected a .jsonl or .parquet file")
    table = _read_jsonl(path) if kind == "jsonl" else _read_parquet(path)
    if table.num_rows == 0:
        raise BatchInputError(f"input {path.name!r} has no rows")
    columns = tuple(name for name in PASSTHROUGH if name in table.column_names)
    return Pairs(path=path.resolve(), table=table, fingerprint=fingerprint(path), columns=columns)


def _identity(value: Any, row: int, field: str, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise BatchInputError(f"{where}: row {row} field {field!r} is {type(value).__name__}; expected a string or int",
                              row=row, field=field)
    return str(value)


def _read_jsonl(path: Path) -> Any:
    import pyarrow as pa

    data: dict[str, list[Any]] = {"query": [], "text": []}
    seen: set[str] = set()
    row = 0
    with path.open("r", encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path.name} line {line_number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise BatchInputError(f"{where}: row {row} is not valid JSON ({exc.msg})", row=row) from None
            if not isinstance(record, dict):
                raise BatchInputError(f"{where}: row {row} is a JSON {type(record).__name__}; expected an object "
                                      'like {"query": ..., "text": ...}', row=row)
            for field in REQUIRED:
                if field not in record:
                    raise BatchInputError(f"{where}: row {row} has no {field!r} field", row=row, field=field)
            _check_query(record["query"], row, where)
            _check_text(record["text"], row, where)
            data["query"].append(record["query"])
            data["text"].append(record["text"])
            for field in PASSTHROUGH:
                if field in record:
                    if field not in seen:  # a column first seen late: earlier rows lacked it
                        data[field] = [None] * row
                        seen.add(field)
                    data[field].append(_identity(record[field], row, field, where))
                elif field in seen:
                    data[field].append(None)
            row += 1
    columns = {"row": pa.array(range(row), pa.int64()), "query": pa.array(data["query"], pa.string()),
               "text": pa.array(data["text"], pa.string())}
    for field in PASSTHROUGH:
        if field in seen:
            columns[field] = pa.array(data[field], pa.string())
    return pa.table(columns)


def _check_query(value: Any, row: int, where: str) -> None:
    if not isinstance(value, str):
        raise BatchInputError(f"{where}: row {row} field 'query' is {type(value).__name__}; expected a string",
                              row=row, field="query")
    if not value.strip():
        raise BatchInputError(f"{where}: row {row} field 'query' is empty", row=row, field="query")


def _check_text(value: Any, row: int, where: str) -> None:
    if not isinstance(value, str):
        raise BatchInputError(f"{where}: row {row} field 'text' is {type(value).__name__}; expected a string",
                              row=row, field="text")


def _read_parquet(path: Path) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise BatchInputError(f"{path.name}: not a readable Parquet file ({exc})") from None
    where = path.name
    for field in REQUIRED:
        if field not in table.column_names:
            raise BatchInputError(f"{where}: no {field!r} column (columns: {', '.join(table.column_names)})",
                                  field=field)
        kind = table.schema.field(field).type
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
            raise BatchInputError(f"{where}: column {field!r} is {kind}; expected strings", field=field)
        nulls = pc.is_null(table[field])
        if pc.any(nulls).as_py():
            row = pc.index(nulls, True).as_py()
            raise BatchInputError(f"{where}: row {row} field {field!r} is null; expected a string",
                                  row=row, field=field)
    empty = pc.equal(pc.utf8_trim_whitespace(table["query"]), "")
    if pc.any(empty).as_py():
        row = pc.index(empty, True).as_py()
        raise BatchInputError(f"{where}: row {row} field 'query' is empty", row=row, field="query")
    columns = {"row": pa.array(range(table.num_rows), pa.int64()),
               "query": table["query"].cast(pa.string()), "text": table["text"].cast(pa.string())}
    for field in PASSTHROUGH:
        if field in table.column_names:
            columns[field] = _identity_column(table[field], field, where)
    return pa.table(columns)


def _identity_column(column: Any, field: str, where: str) -> Any:
    import pyarrow as pa

    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind):
        return column.cast(pa.string())
    raise BatchInputError(f"{where}: column {field!r} is {kind}; expected strings or integers", field=field)
