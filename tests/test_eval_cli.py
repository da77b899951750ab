"""`swaprank eval` end to end: rows, score-cache replay, fusion rows, error rows, Ctrl-C, and the CI smoke run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from swaprank import Reranker
from swaprank.cli import main
from tests import scripted_backend
from tests.assets import real_model_path, scifact_path
from tests.test_eval_metrics import TINY_NDCG, write_tiny_beir

REPO = Path(__file__).resolve().parents[1]


def _report(out: Path, name: str = "tiny-test") -> dict[str, Any]:
    return json.loads((out / f"{name}.json").read_text())


def _row(report: dict[str, Any], label: str) -> dict[str, Any]:
    return next(r for r in report["rows"] if r["label"] == label)


@pytest.fixture()
def tiny(tmp_path: Path) -> Path:
    return write_tiny_beir(tmp_path / "tiny")


def test_baseline_only_run_reports_the_hand_computed_ndcg(tiny: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["eval", "--data", str(tiny), "--out", str(out), "--no-progress"]) == 0
    report = _report(out)
    (row,) = report["rows"]
    assert row["label"] == "bm25" and row["queries"] == 3
    assert row["metrics"]["ndcg@10"] == pytest.approx(TINY_NDCG)
    assert report["meta"]["interrupted"] is False
    assert (out / "tiny-test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert f"{TINY_NDCG:.4f}" in printed
    assert printed.count("\n") > 3 and (out / "tiny-test.txt").read_text().startswith("configuration")


def test_depth_sweep_and_fusion_rows_score_each_pair_once(tiny: Path, tmp_path: Path) -> None:
    scripted_backend.install()  # word-overlap scores: fast and deterministic
    out = tmp_path / "out"
    code = main(["eval", "--data", str(tiny), "--candidates", "1,2", "--model", "scripted:default",
                 "--fuse", "rrf", "--out", str(out), "--no-progress"])
    assert code == 0
    report = _report(out)
    labels = [r["label"] for r in report["rows"]]
    assert labels == ["bm25", "bm25 > scripted:default top-2", "bm25 > scripted:default top-2 +rrf",
                      "bm25 > scripted:default top-1", "bm25 > scripted:default top-1 +rrf"]
    deepest = _row(report, "bm25 > scripted:default top-2")
    assert deepest["docs_scored"] == 4  # pools of 1, 2 and 1 documents
    assert deepest["latency"]["median_ms"] >= 0 and deepest["latency"]["docs_per_s"] > 0
    for label in labels[2:]:
        replayed = _row(report, label)
        assert replayed["docs_scored"] == 0 and replayed["latency"] is None and "score cache" in replayed["note"]
    # Reranking a single candidate cannot change anything; q2's tie ("lion" ∩ both docs = 1/2 vs 2/2) can.
    assert _row(report, "bm25 > scripted:default top-1")["metrics"] == _row(report, "bm25")["metrics"]
    assert deepest["ceiling_recall_at_candidates"] == pytest.approx(2 / 3)
    assert report["verdicts"]["fusion"][0]["configuration"].endswith("+rrf")


def test_a_failing_model_becomes_an_error_row_and_the_run_goes_on(tiny: Path, tmp_path: Path) -> None:
    scripted_backend.install()
    out = tmp_path / "out"
    code = main(["eval", "--data", str(tiny), "--candidates", "2", "--model", "scripted:default?fail=true",
                 "--model", "scripted:default", "--out", str(out), "--no-progress"])
    assert code == 0
    rows = _report(out)["rows"]
    assert "BackendUnavailableError" in rows[1]["error"] and "scripted outage" in rows[1]["error"]
    assert rows[2]["error"] is None and rows[2]["queries"] == 3


def test_bad_arguments_fail_fast_with_a_clear_message(tiny: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", "--data", str(tiny), "--model", "nosuch:model", "--out", str(tmp_path)]) == 2
    assert "unknown backend 'nosuch'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["eval", "--data", str(tiny), "--candidates", "0"])
    with pytest.raises(SystemExit):
        main(["eval", "--data", str(tiny), "--first-stage", "splade"])


def test_ctrl_c_writes_a_partial_report_instead_of_a_traceback(tiny: Path, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    scripted_backend.install()
    original = Reranker.rerank
    calls = {"n": 0}

    def interrupt_on_second_query(self: Reranker, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Reranker, "rerank", interrupt_on_second_query)
    out = tmp_path / "out"
    code = main(["eval", "--data", str(tiny), "--candidates", "2", "--model", "scripted:default",
                 "--out", str(out), "--no-progress"])
    assert code == 130
    report = _report(out)
    assert report["meta"]["interrupted"] is True
    partial = report["rows"][1]
    assert partial["partial"] is True and partial["queries"] == 1
    assert "(partial)" in (out / "tiny-test.txt").read_text()


@pytest.mark.slow
def test_smoke_eval_20_queries(tmp_path: Path, tiny_spec: str) -> None:
    """The CI smoke run: the real model and SciFact when ../shared is there, else the tiny model and data."""
    data = scifact_path()
    model = real_model_path()
    spec = f"cross-encoder:{model}" if model else tiny_spec
    data_dir = data if data is not None else write_tiny_beir(tmp_path / "tiny")
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "swaprank.cli", "eval", "--data", str(data_dir), "--split", "test", "--queries", "20",
         "--first-stage", "bm25", "--candidates", "10", "--model", spec, "--fuse", "rrf", "--out", str(out),
         "--name", "smoke"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = _report(out, "smoke")
    expected_queries = 20 if data is not None else 3
    assert report["meta"]["queries"] == expected_queries
    reranked = report["rows"][1]
    assert reranked["queries"] == expected_queries and reranked["error"] is None
    assert reranked["latency"]["median_ms"] > 0
    assert 0.0 <= reranked["metrics"]["ndcg@10"] <= 1.0
    # Reranking reorders the top-10 only, so Recall@10 is at most the pool's and Recall@100 is unchanged.
    assert reranked["metrics"]["recall@100"] == report["rows"][0]["metrics"]["recall@100"]
    assert reranked["metrics"]["recall@10"] == pytest.approx(reranked["ceiling_recall_at_candidates"])
    assert "smoke: " in proc.stdout and (out / "smoke.png").is_file()


def test_bench_command_times_every_model_on_the_same_candidates(tiny: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    scripted_backend.install()
    out = tmp_path / "bench.json"
    code = main(["bench", "--data", str(tiny), "--model", "scripted:default", "--model", "scripted-async:default",
                 "--queries", "3", "--candidates", "2", "--out", str(out)])
    assert code == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["model"] for r in rows] == ["scripted:default", "scripted-async:default"]
    assert all(r["queries"] == 3 and r["median_ms"] >= 0 for r in rows)
    assert rows[0]["ratio_to_first"] == 1.0
    assert "3 queries x 2 BM25 candidates" in capsys.readouterr().out
    assert main(["bench", "--data", str(tiny), "--model", "nosuch:x"]) == 2
