"""``swaprank batch``: scores equal to the Reranker's, resume after a crash, manifest checks, inputs.

Scoring runs on a real embedded Ray (one session for the module, loopback only) with the tiny
random cross-encoder; what is checked is what a user relies on: every input row scored exactly
once, the Reranker's scores, ids carried through, nothing recomputed that was already on disk,
and a clear typed error for bad input or a mismatched output directory.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from swaprank import Reranker
from swaprank.batch import (
    BatchInputError,
    BatchSettings,
    CorruptPartError,
    OutputLockedError,
    ResumeMismatchError,
    read_pairs,
    read_scores,
    run_batch,
)
from swaprank.cli import main
from tests.assets import build_tiny_cross_encoder
from tests.ray_support import ray_session

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

N_PAIRS = 90


@pytest.fixture(scope="module")
def ray() -> Iterator[Any]:
    yield from ray_session()


def make_rows(n: int = N_PAIRS, seed: int = 0) -> list[dict[str, Any]]:
    """Queries interleaved (so a batch holds several) and a few duplicate texts (scored once, shared)."""
    rng = random.Random(seed)
    words = ["vitamin", "fracture", "bone", "density", "trial", "cohort", "risk", "dose", "placebo", "calcium",
             "older", "adults"]
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(2, 40)))
        if i % 17 == 5:
            text = rows[i - 3]["text"]
        rows.append({"id": f"pair-{i}", "query": f"does {words[i % 5]} reduce {words[(i * 3) % 7]}", "text": text})
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def reference(spec: str, rows: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """What Reranker(spec) gives each pair: pairs grouped by query, one rerank_many call."""
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(row["query"], []).append(i)
    results = Reranker(spec).rerank_many(list(groups), [[rows[i]["text"] for i in groups[q]] for q in groups])
    scores: list[tuple[float, float]] = [(0.0, 0.0)] * len(rows)
    for query, result in zip(groups, results, strict=True):
        for ranked in result:
            scores[groups[query][ranked.index]] = (ranked.score, ranked.raw_score)
    return scores


@pytest.fixture(scope="module")
def onnx_spec(tiny_spec: str) -> str:
    """The tiny model on ONNX Runtime: exported once here, then each Ray actor loads it in well under a second
    (no torch import), which keeps the module fast; one test covers the torch path."""
    spec = f"{tiny_spec}?runtime=onnx"
    Reranker(spec).warmup()
    return spec


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("pairs") / "pairs.jsonl", make_rows())


def settings(input_path: Path, output: Path, spec: str, **kw: Any) -> BatchSettings:
    kw.setdefault("progress", False)
    return BatchSettings(input=input_path, output=output, model=spec, **kw)


def assert_exactly_once(output: Path, n: int) -> Any:
    table = read_scores(output)
    assert table["row"].to_pylist() == list(range(n))  # no gap, no duplicate, input order
    return table


# ------------------------------------------------------------------ scores


def test_one_batch_gives_the_rerankers_scores_exactly(ray: Any, tiny_spec: str, pairs_file: Path,
                                                      tmp_path: Path) -> None:
    """One batch holding every pair is the very same rerank_many call: bit-identical scores."""
    summary = run_batch(settings(pairs_file, tmp_path / "out", tiny_spec, batch_size=1000))
    assert (summary.total, summary.scored, summary.skipped, summary.remaining) == (N_PAIRS, N_PAIRS, 0, 0)
    table = assert_exactly_once(tmp_path / "out", N_PAIRS)
    expected = reference(tiny_spec, make_rows())
    assert list(zip(table["score"].to_pylist(), table["raw_score"].to_pylist(), strict=True)) == expected
    rows = make_rows()
    assert table["id"].to_pylist() == [row["id"] for row in rows]
    assert table["query"].to_pylist() == [row["query"] for row in rows]
    assert table["text"].to_pylist() == [row["text"] for row in rows]


def test_small_batches_on_two_actors_match_the_reranker(ray: Any, onnx_spec: str, pairs_file: Path,
                                                        tmp_path: Path) -> None:
    """Split into batches the pairs are padded with different neighbours: equal up to float32 rounding,
    the same difference the Reranker itself shows for a pair scored in two different calls."""
    pd = pytest.importorskip("pandas")
    summary = run_batch(settings(pairs_file, tmp_path / "out", onnx_spec, batch_size=8, num_actors=2))
    assert summary.scored == N_PAIRS
    assert len(list((tmp_path / "out").glob("part-*.parquet"))) == -(-N_PAIRS // 8)
    frame = pd.read_parquet(tmp_path / "out").sort_values("row")  # the directory reads as one table
    assert frame["row"].tolist() == list(range(N_PAIRS))
    expected = reference(onnx_spec, make_rows())
    assert frame["score"].tolist() == pytest.approx([s for s, _ in expected], abs=1e-5)
    assert frame["raw_score"].tolist() == pytest.approx([r for _, r in expected], abs=1e-4)
    assert all(0.0 <= s <= 1.0 for s in frame["score"])


# ------------------------------------------------------------------ resume


class Crash(RuntimeError):
    pass


def test_a_crashed_run_resumes_scoring_only_the_missing_pairs(ray: Any, onnx_spec: str, pairs_file: Path,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    parts_seen: list[int] = []

    def crash_after_three(rows: int) -> None:
        parts_seen.append(rows)
        if len(parts_seen) == 3:
            raise Crash("killed")

    with pytest.raises(Crash):
        run_batch(settings(pairs_file, out, onnx_spec, batch_size=10), on_part=crash_after_three)
    on_disk = sum(parts_seen)
    assert on_disk == 30
    (out / ".part-killed-mid-write.tmp").write_bytes(b"PAR1 half a file")  # a kill during a write

    last = run_batch(settings(pairs_file, out, onnx_spec, batch_size=10))
    assert (last.skipped, last.scored, last.remaining) == (on_disk, N_PAIRS - on_disk, 0)  # only the missing rows
    assert not list(out.glob(".part-*"))  # the stray temp file was removed, never read
    table = assert_exactly_once(out, N_PAIRS)
    expected = reference(onnx_spec, make_rows())
    assert table["score"].to_pylist() == pytest.approx([s for s, _ in expected], abs=1e-5)

    again = run_batch(settings(pairs_file, out, onnx_spec))  # nothing left: no Ray work at all
    assert (again.scored, again.skipped, again.remaining) == (0, N_PAIRS, 0)


def test_resuming_with_another_model_or_input_is_refused(tiny_spec: str, pairs_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "_swaprank_batch.json").write_text(json.dumps({
        "input_path": str(pairs_file), "input_fingerprint": read_pairs(pairs_file).fingerprint, "rows": N_PAIRS,
        "model": tiny_spec, "columns": ["row", "query", "text", "id", "score", "raw_score"],
        "swaprank_version": "0.1.0", "format": 1}))
    other_model = build_tiny_cross_encoder(tmp_path / "other-model", seed=1)
    with pytest.raises(ResumeMismatchError, match="model: it was written with"):
        run_batch(settings(pairs_file, out, f"cross-encoder:{other_model}"))
    edited = write_jsonl(tmp_path / "edited.jsonl", make_rows(seed=1))
    with pytest.raises(ResumeMismatchError, match="input: it was written for"):
        run_batch(settings(edited, out, tiny_spec))
    with pytest.raises(ResumeMismatchError, match="columns"):
        run_batch(settings(pairs_file, out, tiny_spec, keep_text=False))
    stranger = tmp_path / "not-ours"
    stranger.mkdir()
    (stranger / "data.parquet").write_bytes(b"x")
    with pytest.raises(ResumeMismatchError, match="without a swaprank batch manifest"):
        run_batch(settings(pairs_file, stranger, tiny_spec))


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(("line", "row", "field", "message"), [
    ({"text": "a document"}, 2, "query", "row 2 has no 'query' field"),
    ({"query": "q"}, 2, "text", "row 2 has no 'text' field"),
    ({"query": "   ", "text": "a document"}, 2, "query", "row 2 field 'query' is empty"),
    ({"query": "q", "text": 42}, 2, "text", "row 2 field 'text' is int; expected a string"),
    ({"query": "q", "text": None}, 2, "text", "row 2 field 'text' is NoneType"),
    ({"query": "q", "text": "t", "id": [1]}, 2, "id", "row 2 field 'id' is list"),
])
def test_bad_jsonl_rows_are_named(tmp_path: Path, line: dict[str, Any], row: int, field: str, message: str) -> None:
    path = tmp_path / "pairs.jsonl"
    good = json.dumps({"query": "q", "text": "t"})
    path.write_text(f"{good}\n\n{good}\n{json.dumps(line)}\n", encoding="utf-8")  # a blank line is skipped
    with pytest.raises(BatchInputError, match=message) as caught:
        read_pairs(path)
    assert (caught.value.row, caught.value.field) == (row, field)
    assert "line 4" in str(caught.value)


def test_bad_parquet_columns_are_named(tmp_path: Path) -> None:
    path = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"query": ["q", "q"], "doc": ["a", "b"]}), path)
    with pytest.raises(BatchInputError, match="no 'text' column"):
        read_pairs(path)
    pq.write_table(pa.table({"query": ["q", "q"], "text": [1, 2]}), path)
    with pytest.raises(BatchInputError, match="column 'text' is int64; expected strings"):
        read_pairs(path)
    pq.write_table(pa.table({"query": ["q", ""], "text": ["a", "b"]}), path)
    with pytest.raises(BatchInputError, match="row 1 field 'query' is empty"):
        read_pairs(path)
    pq.write_table(pa.table({"query": ["q", "q", "q"], "text": ["a", "b", None]}), path)
    with pytest.raises(BatchInputError, match="row 2 field 'text' is null") as caught:
        read_pairs(path)
    assert (caught.value.row, caught.value.field) == (2, "text")


def test_cli_reports_bad_input_before_starting_ray(tmp_path: Path, tiny_spec: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = write_jsonl(tmp_path / "pairs.jsonl", [{"query": "q", "text": "t"}, {"query": "q", "text": 3}])
    code = main(["batch", "--input", str(path), "--output", str(tmp_path / "out"), "--model", tiny_spec])
    assert code == 2
    assert "BatchInputError" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing written, nothing started
    code = main(["batch", "--input", str(path), "--output", str(tmp_path / "out"), "--model", "nope:x"])
    assert code == 2
    assert "ConfigError" in capsys.readouterr().err


def test_cli_parquet_input_limit_then_resume(ray: Any, onnx_spec: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Parquet in, integer ids carried through as strings, --no-text; --limit scores part, the rerun the rest."""
    rows = make_rows(30)
    source = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"query_id": [i % 4 for i in range(30)], "doc_id": list(range(100, 130)),
                             "query": [r["query"] for r in rows], "text": [r["text"] for r in rows]}), source)
    args = ["batch", "--input", str(source), "--output", str(tmp_path / "out"), "--model", onnx_spec,
            "--batch-size", "7", "--no-text", "--quiet", "--json"]
    assert main([*args, "--limit", "12"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["scored"], summary["skipped"], summary["remaining"]) == (12, 0, 18)
    assert main([*args, "--num-actors", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["scored"], summary["skipped"], summary["remaining"]) == (18, 12, 0)
    table = assert_exactly_once(tmp_path / "out", 30)
    assert "text" not in table.column_names
    assert table["doc_id"].to_pylist() == [str(i) for i in range(100, 130)]
    assert table["query_id"].to_pylist() == [str(i % 4) for i in range(30)]
    assert table["score"].to_pylist() == pytest.approx([s for s, _ in reference(onnx_spec, rows)], abs=1e-5)


# ------------------------------------------------------------------ untrusted output directories (issue 24)


@pytest.fixture(scope="module")
def finished(ray: Any, onnx_spec: str, pairs_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One complete output in parts of 10 rows; each test below damages a copy of it (no Ray needed:
    a damaged directory is refused by the scan, before any scoring)."""
    out = tmp_path_factory.mktemp("finished") / "out"
    summary = run_batch(settings(pairs_file, out, onnx_spec, batch_size=10))
    assert (summary.scored, summary.remaining) == (N_PAIRS, 0)
    return out


@pytest.fixture
def damaged(finished: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(finished, tmp_path / "out"))


def part(out: Path, first: int) -> Path:
    return next(p for p in out.glob("part-*.parquet") if p.name.startswith(f"part-{first:012d}-"))


def part_name(first: int, last: int) -> str:
    return f"part-{first:012d}-{last:012d}.parquet"


def rewrite(path: Path, change: Callable[[Any], Any]) -> None:
    pq.write_table(change(pq.read_table(path)), path)


def cli_refuses(damaged: Path, pairs_file: Path, spec: str, capsys: pytest.CaptureFixture[str], *expected: str) -> None:
    """The CLI stops with exit 2 and one line naming the error, the file and the fix; never 'complete'."""
    code = main(["batch", "--input", str(pairs_file), "--output", str(damaged), "--model", spec, "--quiet"])
    captured = capsys.readouterr()
    assert code == 2 and "complete" not in captured.out and "Traceback" not in captured.err, captured
    assert captured.err.startswith("swaprank batch: CorruptPartError: ")
    for text in expected:
        assert text in captured.err


def test_a_copied_part_is_refused_not_counted_twice(damaged: Path, pairs_file: Path, onnx_spec: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A copied part once made the CLI report "20/20 pairs, complete" over 25 rows."""
    source = part(damaged, 0)
    shutil.copy(source, damaged / "part-000000000000-000000000009 (copy).parquet")
    cli_refuses(damaged, pairs_file, onnx_spec, capsys, "(copy).parquet is not a part this job wrote",
                "move it out of the directory")
    with pytest.raises(CorruptPartError, match=r"holds row 0 more than once \(10 repeats"):
        read_scores(damaged)  # reading the output refuses the duplicates too
    (damaged / "part-000000000000-000000000009 (copy).parquet").unlink()
    # an overlapping part under a valid name: rows 5..14 again
    table = pa.concat_tables([pq.read_table(source), pq.read_table(part(damaged, 10))])
    overlap = damaged / part_name(5, 14)
    pq.write_table(table.filter(pa.compute.is_in(table["row"], pa.array(range(5, 15)))), overlap)
    with pytest.raises(CorruptPartError, match=r"both hold row 5 \(5 rows in common\)") as info:
        run_batch(settings(pairs_file, damaged, onnx_spec))
    assert info.value.path is not None and str(overlap) in str(info.value) and "delete" in str(info.value)
    overlap.unlink()
    same_rows_twice = damaged / part_name(0, 9)
    rewrite(same_rows_twice, lambda t: pa.concat_tables([t, t.slice(3, 1)]).sort_by("row"))
    with pytest.raises(CorruptPartError, match="holds row 3 more than once"):
        run_batch(settings(pairs_file, damaged, onnx_spec))


def test_a_second_run_on_the_same_output_fails_fast_naming_the_lock(damaged: Path, pairs_file: Path, onnx_spec: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Two runs on one output once interleaved their parts (18 rows for 10 pairs)."""
    from filelock import FileLock

    before = sorted(p.name for p in damaged.iterdir())
    with FileLock(str(damaged / "_swaprank_batch.lock")):  # what a running job holds
        started = time.perf_counter()
        with pytest.raises(OutputLockedError, match="another swaprank batch run is writing") as info:
            run_batch(settings(pairs_file, damaged, onnx_spec))
        assert time.perf_counter() - started < 10  # fails fast: no waiting, no Ray
    assert info.value.path == damaged / "_swaprank_batch.lock" and "_swaprank_batch.lock" in str(info.value)
    assert sorted(p.name for p in damaged.iterdir()) == before
    # another process holding it (a run in another terminal): the same fast refusal, through the CLI
    holder = subprocess.Popen([sys.executable, "-c", "import sys; from filelock import FileLock; "
                               f"lock = FileLock({str(damaged / '_swaprank_batch.lock')!r}); lock.acquire(); "
                               "print('held', flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code = main(["batch", "--input", str(pairs_file), "--output", str(damaged), "--model", onnx_spec, "--quiet"])
        captured = capsys.readouterr()
        assert code == 2 and captured.err.startswith("swaprank batch: OutputLockedError: ") and not captured.out
    finally:
        holder.communicate("")  # the holder exits; the OS drops its lock
    again = run_batch(settings(pairs_file, damaged, onnx_spec))  # the lock is released with its holder
    assert (again.scored, again.skipped, again.remaining) == (0, N_PAIRS, 0)


@pytest.mark.parametrize(("damage", "message"), [
    (lambda t: t.drop_columns(["score"]), r"missing \['score'\]"),
    (lambda t: t.set_column(t.column_names.index("score"), "score", pa.array([None] * t.num_rows, pa.float64())),
     "10 null or NaN 'score' values"),
    (lambda t: t.set_column(t.column_names.index("raw_score"), "raw_score",
                            pa.array([float("nan")] + [0.5] * (t.num_rows - 1), pa.float64())),
     "1 null or NaN 'raw_score' values"),
    (lambda t: t.set_column(t.column_names.index("score"), "score", t["score"].cast(pa.string())),
     "column 'score' is string, expected double"),
    (lambda t: t.set_column(t.column_names.index("query"), "query", pa.array(["another query"] * t.num_rows)),
     "column 'query' differs from the input's rows"),
    (lambda t: t.set_column(0, "row", pa.compute.add(t["row"], 100)), "rows outside the input"),
])
def test_a_part_with_wrong_columns_or_unscored_rows_is_refused(damaged: Path, pairs_file: Path, onnx_spec: str,
                                                               damage: Callable[[Any], Any], message: str) -> None:
    """A part without a score column was once counted as done and left null scores."""
    target = part(damaged, 20)
    rewrite(target, damage)
    if "NaN" in message:
        with pytest.raises(CorruptPartError, match="null or NaN"):
            read_scores(damaged)
    with pytest.raises(CorruptPartError, match=message) as info:
        run_batch(settings(pairs_file, damaged, onnx_spec))
    assert info.value.path == target and f"delete {target}" in str(info.value)


def test_a_truncated_part_is_a_typed_error_not_an_arrow_traceback(damaged: Path, pairs_file: Path, onnx_spec: str,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    target = part(damaged, 30)
    data = target.read_bytes()
    target.write_bytes(data[: len(data) // 2])
    cli_refuses(damaged, pairs_file, onnx_spec, capsys, str(target), "is not a readable Parquet part",
                "(the next run scores its rows again)")
    with pytest.raises(CorruptPartError, match="does not read as one table"):
        read_scores(damaged)
    target.unlink()  # the advised fix; the next run would rescore exactly rows 30..39
    renamed = part(damaged, 40)
    renamed.rename(damaged / part_name(41, 49))
    with pytest.raises(CorruptPartError, match="not the rows its name says"):
        run_batch(settings(pairs_file, damaged, onnx_spec))


def test_success_is_reported_only_after_the_output_on_disk_is_checked(ray: Any, onnx_spec: str, pairs_file: Path,
                                                                      tmp_path: Path) -> None:
    """A part duplicated while the job runs is found by the final check, not reported as complete."""
    out = tmp_path / "out"

    copied: list[int] = []

    def duplicate_first_part(rows: int) -> None:
        if not copied:  # after the first part: its first row copied into a part of its own
            table = pq.read_table(next(out.glob("part-*.parquet"))).slice(0, 1)
            copied.append(table["row"][0].as_py())
            pq.write_table(table, out / part_name(copied[0], copied[0]))

    with pytest.raises(CorruptPartError, match="both hold row"):
        run_batch(settings(pairs_file, out, onnx_spec, batch_size=30), on_part=duplicate_first_part)
