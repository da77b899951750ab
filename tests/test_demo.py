"""``swaprank demo`` (``make demo``): the negation example, then the SciFact part counted by a stated rule.

The SciFact mechanics run on a hand-made BEIR folder with the scripted backend, whose score is the
``s=`` value written in each abstract: the reranked order is known in advance, so the counts, the
chosen examples and the nDCG numbers are asserted exactly. The real model on real SciFact is a
quality test (skipped loudly without ../shared).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from swaprank.cli import main
from swaprank.demo import scifact
from tests import scripted_backend

# Four claims, each with its own words, so BM25's order is plain: more shared words rank higher.
# The scripted reranker then orders by the s= values: claim 1's relevant abstract rises #3 -> #1,
# claim 2's falls #1 -> #3, claim 3's stays #1, claim 4's relevant abstract shares no word with it.
CORPUS = {
    "1-a": ("alpha beta gamma delta", "s=0.3 alpha beta gamma delta"),
    "1-b": ("alpha beta gamma", "s=0.2 alpha beta"),
    "1-rel": ("alpha", "s=0.9 unrelated prose"),
    "2-rel": ("epsilon zeta eta theta", "s=0.05 epsilon zeta eta theta"),
    "2-b": ("epsilon zeta eta", "s=0.6 epsilon zeta"),
    "2-c": ("epsilon", "s=0.5 other text"),
    "3-rel": ("iota kappa lambda mu", "s=0.9 iota kappa lambda mu"),
    "3-b": ("iota kappa", "s=0.1 iota"),
    "3-c": ("iota", "s=0.2 filler"),
    "4-a": ("nu xi omicron pi", "s=0.4 nu xi omicron"),
    "4-b": ("nu xi omicron", "s=0.3 nu xi"),
    "4-c": ("nu xi", "s=0.2 nu"),
    "4-rel": ("rho sigma", "s=0.9 tau upsilon"),
}
CLAIMS = {"1": "alpha beta gamma delta", "2": "epsilon zeta eta theta", "3": "iota kappa lambda mu",
          "4": "nu xi omicron pi"}
RELEVANT = {"1": "1-rel", "2": "2-rel", "3": "3-rel", "4": "4-rel"}


@pytest.fixture
def beir(tmp_path: Path) -> Path:
    folder = tmp_path / "scifact"
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as f:
        for doc_id, (title, text) in CORPUS.items():
            f.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as f:
        for qid, text in CLAIMS.items():
            f.write(json.dumps({"_id": qid, "text": text}) + "\n")
    rows = "".join(f"{qid}\t{doc_id}\t1\n" for qid, doc_id in RELEVANT.items())
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + rows)
    return folder


@pytest.fixture
def scripted() -> str:
    scripted_backend.install()
    return "scripted:default"


def test_claims_are_counted_by_where_the_first_relevant_abstract_moves(beir: Path, scripted: str) -> None:
    outcome = scifact.measure(beir, scripted, claims=4, candidates=3, doc_words=0)
    by_id = {c.query_id: c for c in outcome.claims}
    assert [c.query_id for c in outcome.claims] == ["1", "2", "3", "4"]  # qrels order
    assert (by_id["1"].rank_before, by_id["1"].rank_after) == (3, 1)
    assert (by_id["2"].rank_before, by_id["2"].rank_after) == (1, 3)
    assert (by_id["3"].rank_before, by_id["3"].rank_after) == (1, 1)
    assert (by_id["4"].rank_before, by_id["4"].rank_after) == (None, None)
    assert outcome.counts == {"up": 1, "down": 1, "unchanged": 1, "not retrieved": 1}
    assert sorted(by_id["1"].after) == sorted(by_id["1"].before)  # the reranker reorders BM25's pool only
    # One relevant abstract at rank r: nDCG@10 = 1 / log2(r + 1); rank 3 -> 0.5.
    assert [c.ndcg_before for c in outcome.claims] == pytest.approx([0.5, 1.0, 1.0, 0.0])
    assert [c.ndcg_after for c in outcome.claims] == pytest.approx([1.0, 0.5, 1.0, 0.0])
    assert outcome.largest(1) is by_id["1"] and outcome.largest(-1) is by_id["2"]
    assert outcome.pairs == 12


def test_report_states_the_rule_the_counts_and_ndcg(beir: Path, scripted: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    outcome = scifact.measure(beir, scripted, claims=4, candidates=3, doc_words=0)
    scifact.report(outcome, beir, candidates=3, doc_words=0)
    out = capsys.readouterr().out
    flat = " ".join(out.split())
    assert "rule: the first 4 claims of qrels/test.tsv (in file order)" in flat
    assert "retrieves the top 3 of all 13 abstracts" in flat and "reading whole abstracts" in flat
    counts = {label: int(n) for label, n in re.findall(r"^  (moved up|moved down|unchanged|not in BM25's top 3"
                                                        r" \(no reranker can help\)|total)\s+(\d+)$", out, re.M)}
    assert counts == {"moved up": 1, "moved down": 1, "unchanged": 1,
                      "not in BM25's top 3 (no reranker can help)": 1, "total": 4}
    assert "nDCG@10 over the 4 claims: BM25 0.6250 -> reranked 0.6250 (+0.0000)" in out
    rise = out[out.index("largest rise"):out.index("largest fall")]
    assert "the claim whose first relevant abstract gains the most places; ties: the earliest" in rise
    assert "claim 1: alpha beta gamma delta" in rise and "#3 after BM25 -> #1 after reranking" in rise
    assert "1. ✓ alpha (BM25 #3)" in rise
    fall = out[out.index("largest fall"):]
    assert "claim 2: epsilon zeta eta theta" in fall and "#1 after BM25 -> #3 after reranking" in fall


def test_doc_words_cuts_what_the_reranker_reads(beir: Path, scripted: str) -> None:
    scripted_backend.ScriptedBackend.instances.clear()
    scifact.measure(beir, scripted, claims=1, candidates=3, doc_words=2)
    texts = [t for _, batch in scripted_backend.ScriptedBackend.instances[-1].calls for t in batch]
    assert texts and all(len(t.split()) <= 2 for t in texts), texts


def test_demo_without_data_shows_the_negation_example_and_how_to_get_scifact(
        monkeypatch: pytest.MonkeyPatch, scripted: str, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(scifact.ENV_DATA, raising=False)
    assert main(["demo", "--model", scripted]) == 0
    out = capsys.readouterr().out
    assert "part 1: the negation trap" in out and "both adapters agree: yes" in out
    assert "SciFact part skipped" in out and "SWAPRANK_DATA" in out and scifact.SCIFACT_URL in out
    assert "nDCG@10" not in out


def test_demo_runs_the_scifact_part_from_the_environment_variable(
        monkeypatch: pytest.MonkeyPatch, beir: Path, scripted: str, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(scifact.ENV_DATA, str(beir))
    assert main(["demo", "--model", scripted, "--candidates", "3"]) == 0
    out = capsys.readouterr().out
    assert f"data: {beir}" in out
    assert "rule: the first 4 claims" in out  # --claims 50 asks for more than the 4 there are
    assert re.search(r"^  total\s+4$", out, re.M)
    assert "nDCG@10 over the 4 claims: BM25 0.6250 -> reranked 0.6250" in out


def test_a_wrong_data_folder_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, scripted: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(scifact.ENV_DATA, raising=False)
    assert main(["demo", "--model", scripted, "--data", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "has no corpus.jsonl" in err and "SWAPRANK_DATA" in err and scifact.SCIFACT_URL in err


@pytest.mark.slow
@pytest.mark.quality
def test_demo_on_real_scifact_with_the_real_model(scifact: Path, real_model: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--model", f"cross-encoder:{real_model}", "--data", str(scifact), "--claims", "5"]) == 0
    out = capsys.readouterr().out
    assert "rule: the first 5 claims of qrels/test.tsv" in out
    assert re.search(r"^  total\s+5$", out, re.M)
    assert re.search(r"nDCG@10 over the 5 claims: BM25 0\.\d{4} -> reranked 0\.\d{4}", out)
