"""BEIR loader: CRLF and BOM tolerance, and typed errors that name the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from swaprank.eval.loader import BeirDataset, DatasetError, MissingDatasetFileError, load_beir
from swaprank.types import SwapRankError


def write(folder: Path, *, corpus: str | None = None, queries: str | None = None, qrels: str | None = None,
          split: str = "test", newline: str = "\n") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if corpus is None:
        corpus = "\n".join(json.dumps({"_id": f"d{i}", "title": f"T{i}", "text": f"text {i}"}) for i in (1, 2, 3))
    if queries is None:
        queries = "\n".join(json.dumps({"_id": q, "text": f"query {q}"}) for q in ("q1", "q2", "q3"))
    if qrels is None:
        qrels = "query-id\tcorpus-id\tscore\nq2\td1\t1\nq1\td2\t2\nq1\td3\t0"
    for name, text in (("corpus.jsonl", corpus), ("queries.jsonl", queries), (f"qrels/{split}.tsv", qrels)):
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((text.replace("\n", newline) + newline).encode("utf-8"))
    return folder


def test_crlf_files_parse_exactly_like_lf(tmp_path: Path) -> None:
    lf = load_beir(write(tmp_path / "lf"))
    crlf = load_beir(write(tmp_path / "crlf", newline="\r\n"))
    assert crlf.qrels == lf.qrels == {"q2": {"d1": 1}, "q1": {"d2": 2, "d3": 0}}
    assert crlf.corpus == lf.corpus
    assert crlf.corpus["d1"] == ("T1", "text 1")
    assert crlf.queries == {"q2": "query q2", "q1": "query q1"}  # only queries with qrels, qrels order
    assert crlf.query_ids == ("q2", "q1")
    assert crlf.doc_text("d2") == "T2 text 2"


def test_utf8_bom_and_blank_lines_are_accepted(tmp_path: Path) -> None:
    folder = write(tmp_path, qrels="q1\td1\t1\n\nq2\td2\t1")  # no header, a blank line
    corpus = (folder / "corpus.jsonl").read_bytes()
    (folder / "corpus.jsonl").write_bytes(b"\xef\xbb\xbf" + corpus + b"\n\n")
    data = load_beir(folder)
    assert set(data.corpus) == {"d1", "d2", "d3"}
    assert data.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}


def test_missing_folder_and_missing_files_raise_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(MissingDatasetFileError, match="does not exist"):
        load_beir(tmp_path / "nowhere")
    folder = write(tmp_path / "ds")
    (folder / "queries.jsonl").unlink()
    found = r"has no queries\.jsonl; .*found: corpus\.jsonl, qrels/test\.tsv"
    with pytest.raises(MissingDatasetFileError, match=found):
        load_beir(folder)
    with pytest.raises(FileNotFoundError, match=r"has no qrels/dev\.tsv"):
        load_beir(write(tmp_path / "ds2"), split="dev")


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    corpus = '{"_id": "d1", "title": "", "text": "ok"}\n{"_id": "d2", "text": broken}'
    folder = write(tmp_path, corpus=corpus, newline="\r\n")
    with pytest.raises(DatasetError, match=r"corpus\.jsonl line 2: invalid JSON") as info:
        load_beir(folder)
    assert info.value.line == 2
    assert info.value.path == folder / "corpus.jsonl"
    assert isinstance(info.value, SwapRankError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("corpus", '{"_id": "d1", "text": "a"}\n["an", "array"]', r"corpus\.jsonl line 2: expected a JSON object"),
        ("corpus", '{"_id": "d1", "text": "a"}\n{"text": "no id"}', r"corpus\.jsonl line 2: document record has no"),
        ("corpus", '{"_id": "d1", "text": "a"}\n{"_id": "d1", "text": "b"}', r"line 2: duplicate document id 'd1'"),
        ("corpus", '{"_id": "d1", "text": 7}', r"line 1: document 'd1': 'text' must be a string, got int"),
        ("queries", '{"_id": "q1", "text": "  "}', r"queries\.jsonl line 1: query 'q1' has empty 'text'"),
        ("qrels", "query-id\tcorpus-id\tscore\nq1\td1", r"test\.tsv line 2: expected 3 tab-separated fields .*got 2"),
        ("qrels", "q1 d1 1", r"test\.tsv line 1: expected 3 tab-separated fields"),  # spaces, not tabs
        ("qrels", "q1\td1\t1\nq1\td2\tyes", r"test\.tsv line 2: score must be an integer, got 'yes'"),
        ("qrels", "q1\td1\t1\nq1\td1\t1", r"test\.tsv line 2: duplicate judgement for \('q1', 'd1'\)"),
        ("qrels", "q1\td1\t1\nq9\td1\t1", r"test\.tsv: 1 query id\(s\) of the qrels are not in queries\.jsonl"),
        ("qrels", "query-id\tcorpus-id\tscore\n", r"test\.tsv: qrels file has no judgements"),
    ],
)
def test_bad_lines_raise_dataset_error_with_location(tmp_path: Path, kind: str, text: str, message: str) -> None:
    folder = write(tmp_path, **{kind: text})
    with pytest.raises(DatasetError, match=message):
        load_beir(folder)


def test_integer_ids_are_read_as_strings(tmp_path: Path) -> None:
    folder = write(tmp_path, corpus='{"_id": 31715818, "title": "t", "text": "x"}',
                   queries='{"_id": 1, "text": "claim"}', qrels="1\t31715818\t1")
    data = load_beir(folder)
    assert data.qrels == {"1": {"31715818": 1}}
    assert data.queries == {"1": "claim"}


def test_head_keeps_qrels_order_and_rejects_non_positive(tmp_path: Path) -> None:
    data = load_beir(write(tmp_path))
    first = data.head(1)
    assert isinstance(first, BeirDataset)
    assert first.query_ids == ("q2",) and set(first.qrels) == {"q2"} and set(first.queries) == {"q2"}
    assert data.head(None) is data and data.head(10) is data
    with pytest.raises(ValueError, match="must be positive"):
        data.head(0)


def test_real_scifact_test_split(scifact: Path) -> None:
    data = load_beir(scifact, "test")  # its qrels have CRLF endings and a header
    assert len(data.corpus) == 5183
    assert len(data.query_ids) == 300
    assert sum(len(v) for v in data.qrels.values()) == 339
    assert all(not d.endswith("\r") for judged in data.qrels.values() for d in judged)
    assert {r for judged in data.qrels.values() for r in judged.values()} == {1}
