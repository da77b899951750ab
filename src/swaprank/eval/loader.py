"""Load a BEIR-format folder: ``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``.

Official BEIR files have CRLF line endings in some qrels (SciFact's do), a header line, and the
occasional hand-edited line in user datasets. A loader that silently keeps a ``"1\\r"`` score or
skips a broken line produces plausible but wrong metrics, so every problem raises a
``DatasetError`` naming the file and the line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swaprank.types import SwapRankError

QRELS_HEADER = ("query-id", "corpus-id", "score")


class DatasetError(SwapRankError, ValueError):
    """A BEIR file is malformed; ``path`` and ``line`` (1-based, when known) say where."""

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None) -> None:
        where = ""
        if path is not None:
            where = f"{path}" + (f" line {line}" if line is not None else "") + ": "
        super().__init__(where + message)
        self.path = None if path is None else Path(path)
        self.line = line


class MissingDatasetFileError(DatasetError, FileNotFoundError):
    """A file the BEIR layout requires is absent (the message lists what the folder does hold)."""


@dataclass(frozen=True)
class BeirDataset:
    """One split of a BEIR dataset, with queries restricted to those that have qrels.

    ``query_ids`` keeps the order of first appearance in the qrels file, so ``head(n)`` is a
    reproducible subset ("the first n queries of the split") rather than a random one.
    """

    path: Path
    split: str
    corpus: dict[str, tuple[str, str]]  # doc id -> (title, text)
    queries: dict[str, str]  # query id -> text, only queries of this split
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: relevance}
    query_ids: tuple[str, ...] = field(default=())

    def doc_text(self, doc_id: str) -> str:
        """What first stages index and rerankers read: ``title + " " + text``, as BEIR does."""
        title, text = self.corpus[doc_id]
        return f"{title} {text}".strip()

    def head(self, n: int | None) -> BeirDataset:
        """The first ``n`` queries (all when ``n`` is None or larger than the split)."""
        if n is None or n >= len(self.query_ids):
            return self
        if n <= 0:
            raise ValueError(f"the number of queries must be positive, got {n}")
        keep = self.query_ids[:n]
        return BeirDataset(
            path=self.path,
            split=self.split,
            corpus=self.corpus,
            queries={q: self.queries[q] for q in keep},
            qrels={q: self.qrels[q] for q in keep},
            query_ids=keep,
        )


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Numbered lines without their terminator; CRLF, LF and a UTF-8 BOM are all accepted."""
    with path.open("r", encoding="utf-8-sig", newline="") as handle:
        for number, raw in enumerate(handle, start=1):
            yield number, raw.rstrip("\r\n")


def _require(folder: Path, relative: str) -> Path:
    path = folder / relative
    if path.is_file():
        return path
    if not folder.is_dir():
        raise MissingDatasetFileError(f"BEIR folder {folder} does not exist")
    present = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())[:20]
    error = MissingDatasetFileError(
        f"BEIR folder {folder} has no {relative}; a BEIR folder holds corpus.jsonl, queries.jsonl "
        f"and qrels/<split>.tsv (found: {', '.join(present) or 'nothing'})"
    )
    error.path = path
    raise error


def json_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSON-lines file; anything else is a
    DatasetError naming the line (also how ``swaprank finetune`` reads query/positive pairs)."""
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"invalid JSON ({exc.msg} at column {exc.colno})", path=path, line=number) from None
        if not isinstance(record, dict):
            raise DatasetError(f"expected a JSON object per line, got {type(record).__name__}", path=path, line=number)
        yield number, record


def _read_jsonl(path: Path, *, kind: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for number, record in json_objects(path):
        doc_id = record.get("_id")
        if isinstance(doc_id, int) and not isinstance(doc_id, bool):
            doc_id = str(doc_id)
        if not isinstance(doc_id, str) or not doc_id:
            raise DatasetError(f"{kind} record has no string '_id'", path=path, line=number)
        for key in ("title", "text"):
            value = record.get(key, "")
            if value is not None and not isinstance(value, str):
                raise DatasetError(f"{kind} {doc_id!r}: '{key}' must be a string, got {type(value).__name__}",
                                   path=path, line=number)
        record["_id"] = doc_id
        yield number, record


def load_corpus(path: Path) -> dict[str, tuple[str, str]]:
    corpus: dict[str, tuple[str, str]] = {}
    for number, record in _read_jsonl(path, kind="document"):
        doc_id = record["_id"]
        if doc_id in corpus:
            raise DatasetError(f"duplicate document id {doc_id!r}", path=path, line=number)
        corpus[doc_id] = (record.get("title") or "", record.get("text") or "")
    if not corpus:
        raise DatasetError("corpus is empty", path=path)
    return corpus


def load_queries(path: Path) -> dict[str, str]:
    queries: dict[str, str] = {}
    for number, record in _read_jsonl(path, kind="query"):
        query_id, text = record["_id"], record.get("text") or ""
        if query_id in queries:
            raise DatasetError(f"duplicate query id {query_id!r}", path=path, line=number)
        if not text.strip():
            raise DatasetError(f"query {query_id!r} has empty 'text'", path=path, line=number)
        queries[query_id] = text
    return queries


def load_qrels(path: Path) -> tuple[dict[str, dict[str, int]], list[str]]:
    """Qrels by query, and query ids in order of first appearance."""
    qrels: dict[str, dict[str, int]] = {}
    order: list[str] = []
    for number, line in _lines(path):
        if not line.strip():
            continue
        fields = line.split("\t")
        if number == 1 and tuple(f.strip().lower() for f in fields) == QRELS_HEADER:
            continue
        if len(fields) != 3:
            raise DatasetError(
                f"expected 3 tab-separated fields (query-id, corpus-id, score), got {len(fields)}: {line!r}",
                path=path, line=number,
            )
        query_id, doc_id, score_text = (f.strip() for f in fields)
        if not query_id or not doc_id:
            raise DatasetError(f"empty query-id or corpus-id: {line!r}", path=path, line=number)
        try:
            score = int(score_text)
        except ValueError:
            raise DatasetError(f"score must be an integer, got {score_text!r}", path=path, line=number) from None
        if query_id not in qrels:
            qrels[query_id] = {}
            order.append(query_id)
        if doc_id in qrels[query_id]:
            raise DatasetError(f"duplicate judgement for ({query_id!r}, {doc_id!r})", path=path, line=number)
        qrels[query_id][doc_id] = score
    if not qrels:
        raise DatasetError("qrels file has no judgements", path=path)
    return qrels, order


def load_beir(folder: Path | str, split: str = "test") -> BeirDataset:
    """Load one split; queries without qrels in that split are left out (as BEIR evaluates)."""
    folder = Path(folder).expanduser()
    corpus_path = _require(folder, "corpus.jsonl")
    queries_path = _require(folder, "queries.jsonl")
    qrels_path = _require(folder, f"qrels/{split}.tsv")
    qrels, order = load_qrels(qrels_path)
    all_queries = load_queries(queries_path)
    missing = [q for q in order if q not in all_queries]
    if missing:
        raise DatasetError(
            f"{len(missing)} query id(s) of the qrels are not in {queries_path.name}, e.g. {missing[:5]}",
            path=qrels_path,
        )
    corpus = load_corpus(corpus_path)
    return BeirDataset(
        path=folder,
        split=split,
        corpus=corpus,
        queries={q: all_queries[q] for q in order},
        qrels=qrels,
        query_ids=tuple(order),
    )
