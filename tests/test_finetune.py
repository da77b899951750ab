"""``swaprank finetune`` mechanics on a tiny BEIR folder and tiny random models (seconds, offline).

What a user relies on: the output directory is a cross-encoder that ``cross-encoder:DIR`` loads and the
fast CPU path exports; the report has its curve and its before/after; a rerun continues from the last
checkpoint; ``--max-minutes`` stops cleanly and says so; mined negatives never include a positive and
respect the margin rule; bad input fails with a typed error naming the problem. Quality is measured in
benchmarks/bench_finetune.py, not here.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from swaprank import Reranker
from swaprank.backends import registry
from swaprank.cli import main as swaprank_main
from swaprank.eval.loader import DatasetError, MissingDatasetFileError
from swaprank.finetune.data import carve_dev, load_splits, pairs_to_beir
from swaprank.finetune.errors import BaseModelNotFoundError, FinetuneError
from swaprank.finetune.mining import MarginRule, mine, sample_negatives
from swaprank.finetune.training import TrainConfig, build_loss
from tests.assets import build_tiny_cross_encoder, build_tiny_encoder

TOPICS = {
    "vitamin": ("vitamin d supplementation reduces bone fracture risk in older adults",
                "calcium intake and bone mineral density in women", "vitamin c and the common cold"),
    "sleep": ("short sleep duration raises the risk of obesity in children", "melatonin improves sleep onset",
              "night shift work and sleep quality of nurses"),
    "coffee": ("coffee consumption lowers the risk of type 2 diabetes", "caffeine and heart rhythm disorders",
               "green tea catechins and weight loss"),
    "smoking": ("smoking cessation reduces lung cancer mortality", "nicotine replacement therapy in pregnancy",
                "air pollution and asthma in cities"),
    "exercise": ("aerobic exercise improves memory in the elderly", "resistance training and muscle mass",
                 "sedentary time and cardiovascular disease"),
    "salt": ("high salt intake raises blood pressure", "potassium rich diets lower stroke risk",
             "sugar sweetened beverages and dental caries"),
}
QUERIES = {
    "vitamin": "does vitamin d reduce fracture risk", "sleep": "is short sleep linked to obesity in children",
    "coffee": "does coffee lower diabetes risk", "smoking": "does quitting smoking reduce lung cancer deaths",
    "exercise": "does exercise improve memory in older people", "salt": "does salt raise blood pressure",
}


def write_beir(folder: Path, *, train_qrels: bool = True) -> Path:
    """Six topics x three abstracts; each query's first abstract is its judged positive."""
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as out:
        for topic, texts in TOPICS.items():
            for i, text in enumerate(texts):
                out.write(json.dumps({"_id": f"{topic}{i}", "title": "", "text": text}) + "\n")
    with (folder / "queries.jsonl").open("w") as out:
        for topic, text in QUERIES.items():
            out.write(json.dumps({"_id": f"q-{topic}", "text": text}) + "\n")
    if train_qrels:
        lines = ["query-id\tcorpus-id\tscore"] + [f"q-{t}\t{t}0\t1" for t in QUERIES]
        (folder / "qrels" / "train.tsv").write_text("\r\n".join(lines) + "\r\n")
    return folder


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("encoder"))


@pytest.fixture(scope="module")
def beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_beir(tmp_path_factory.mktemp("beir") / "tiny")


def finetune_args(data: Path, base: Path | str, out: Path, *extra: str) -> list[str]:
    return ["finetune", "--data", str(data), "--base", str(base), "--out", str(out), "--dev-fraction", "0.34",
            "--negatives", "3", "--batch-size", "2", "--epochs", "2", "--eval-steps", "2", "--max-length", "64",
            "--eval-candidates", "5", "--no-progress", *extra]


@pytest.fixture(scope="module")
def finished_run(beir: Path, tiny_encoder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One complete run from an encoder; shared by the tests that only read its outputs."""
    out = tmp_path_factory.mktemp("run") / "ft"
    assert swaprank_main(finetune_args(beir, tiny_encoder, out)) == 0
    return out, json.loads((out / "finetune_report.json").read_text())


# ----------------------------------------------------------------------------- mining


RANKING = {"q": [("d2", 10.0), ("d1", 9.0), ("d3", 8.8), ("d4", 5.0), ("d5", 4.0), ("d6", 1.0)]}


def test_mining_never_returns_a_positive_and_drops_candidates_within_the_relative_margin() -> None:
    mined = mine({"q": {"d1": 1, "d5": 0}}, RANKING, MarginRule(relative_margin=0.05))
    # best positive d1 scores 9.0: anything above 9.0 * 0.95 = 8.55 may be an unjudged relevant document
    assert mined.negatives["q"] == ["d4", "d6"]
    assert mined.dropped["q"] == ["d2", "d3"]
    assert mined.stats.positives_excluded == 1  # d1; d5 is judged 0 and keeps its judgement, not ours


def test_absolute_margin_zero_keeps_only_candidates_scoring_no_higher_than_the_positive() -> None:
    mined = mine({"q": {"d1": 1}}, RANKING, MarginRule(absolute_margin=0.0))
    assert mined.negatives["q"] == ["d3", "d4", "d5", "d6"] and mined.dropped["q"] == ["d2"]
    mined = mine({"q": {"d1": 1}}, RANKING, MarginRule(absolute_margin=1.0))  # keep only scores <= 8.0
    assert mined.negatives["q"] == ["d4", "d5", "d6"] and mined.dropped["q"] == ["d2", "d3"]


def test_without_a_margin_every_non_positive_is_a_candidate_and_range_min_and_depth_cut_ranks() -> None:
    assert mine({"q": {"d1": 1}}, RANKING, MarginRule()).negatives["q"] == ["d2", "d3", "d4", "d5", "d6"]
    assert mine({"q": {"d1": 1}}, RANKING, MarginRule(range_min=3, depth=5)).negatives["q"] == ["d4", "d5"]


def test_when_no_positive_was_retrieved_the_margin_rule_is_skipped_and_counted() -> None:
    mined = mine({"q": {"d9": 1}}, RANKING, MarginRule(relative_margin=0.05))
    assert mined.negatives["q"] == ["d2", "d1", "d3", "d4", "d5", "d6"]
    assert mined.stats.no_positive_retrieved == 1


def test_negative_sampling_strategies_are_deterministic_for_a_seed() -> None:
    eligible = [f"d{i}" for i in range(10)]
    assert sample_negatives(eligible, 4, random.Random(0), "top") == ["d0", "d1", "d2", "d3"]
    mixed = sample_negatives(eligible, 4, random.Random(0), "mixed")
    assert mixed[:2] == ["d0", "d1"] and set(mixed[2:]) <= set(eligible[2:]) and len(set(mixed)) == 4
    assert mixed == sample_negatives(eligible, 4, random.Random(0), "mixed")
    assert sample_negatives(eligible[:2], 4, random.Random(0)) == ["d0", "d1"]
    with pytest.raises(FinetuneError, match="unknown negative sampling"):
        sample_negatives(eligible, 4, random.Random(0), "hardest")
    with pytest.raises(FinetuneError, match="relative_margin"):
        MarginRule(relative_margin=1.5)


def test_bce_weights_each_positive_by_the_number_of_negatives(tiny_encoder: Path) -> None:
    """Unweighted, one positive per N negatives trains towards the base rate; the weight balances it."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(tiny_encoder), num_labels=1)
    loss = build_loss(model, TrainConfig(loss="bce", negatives=5))
    assert loss.pos_weight is not None and float(loss.pos_weight) == 5.0
    assert type(build_loss(model, TrainConfig(loss="lambda"))).__name__ == "LambdaLoss"


# ----------------------------------------------------------------------------- data


def test_held_out_split_is_carved_from_train_reproducibly_and_disjointly(beir: Path, tmp_path: Path) -> None:
    splits = load_splits(beir, workdir=tmp_path, dev_fraction=0.34, seed=3)
    assert len(splits.dev.query_ids) == 2 and len(splits.train.query_ids) == 4
    assert not set(splits.dev.query_ids) & set(splits.train.query_ids)
    again = load_splits(beir, workdir=tmp_path, dev_fraction=0.34, seed=3)
    assert again.dev.query_ids == splits.dev.query_ids
    assert "carved from train" in splits.dev_source
    train, dev = carve_dev(splits.train, 0.5, seed=3)
    assert len(dev.query_ids) == 2 and len(train.query_ids) == 2


def test_a_dev_qrels_file_is_used_as_the_held_out_split(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "d")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\nq-salt\tsalt0\t1\n")
    splits = load_splits(folder, workdir=tmp_path)
    assert splits.dev.query_ids == ("q-salt",) and splits.dev_source == "qrels/dev.tsv"
    assert len(splits.train.query_ids) == 6


def test_query_positive_pairs_become_a_beir_folder_with_the_positives_as_corpus(tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"query": q, "positive": TOPICS[t][0]}) for t, q in QUERIES.items())
                     + "\n" + json.dumps({"query": QUERIES["salt"], "positive": TOPICS["salt"][1]}) + "\n")
    splits = load_splits(pairs, workdir=tmp_path / "run", dev_fraction=0.34)
    assert len(splits.train.corpus) == 7 and splits.data_dir == tmp_path / "run" / "data"
    salt = next(q for q, text in {**splits.train.queries, **splits.dev.queries}.items() if "salt" in text)
    qrels = {**splits.train.qrels, **splits.dev.qrels}
    assert len(qrels[salt]) == 2  # the repeated query became one query with two positives
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(json.dumps({"_id": "salt0", "title": "", "text": TOPICS["salt"][0]}) + "\n"
                      + json.dumps({"_id": "other", "title": "", "text": "unrelated"}) + "\n")
    folder = pairs_to_beir(pairs, tmp_path / "with-corpus", corpus)
    qrels_text = (folder / "qrels" / "train.tsv").read_text()
    assert "\tsalt0\t1" in qrels_text  # a positive that is a corpus document keeps that document's id
    assert len((folder / "corpus.jsonl").read_text().splitlines()) == 8


def test_bad_input_fails_with_typed_errors_naming_the_problem(tmp_path: Path, tiny_encoder: Path) -> None:
    with pytest.raises(MissingDatasetFileError, match="does not exist"):
        load_splits(tmp_path / "nowhere", workdir=tmp_path)
    no_train = write_beir(tmp_path / "no-train", train_qrels=False)
    with pytest.raises(MissingDatasetFileError, match=r"qrels/train\.tsv"):
        load_splits(no_train, workdir=tmp_path)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DatasetError, match="no query/positive pairs"):
        load_splits(empty, workdir=tmp_path)
    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"query": "q", "positive": ""}) + "\n")
    with pytest.raises(DatasetError, match="line 1: 'positive' must be a non-empty string"):
        load_splits(broken, workdir=tmp_path)
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"query": "q", "positive": "p"}) + "\n")
    with pytest.raises(DatasetError, match="need at least 2"):
        load_splits(one, workdir=tmp_path / "one")
    # the CLI turns them into a message and exit code 2, before any model is loaded
    assert swaprank_main(finetune_args(no_train, tiny_encoder, tmp_path / "o1")) == 2
    beir = write_beir(tmp_path / "ok")
    with pytest.raises(BaseModelNotFoundError, match="no such directory"):
        _run_direct(beir, str(tmp_path / "no-model"), tmp_path)
    with pytest.raises(FinetuneError, match="unknown loss"):
        _run_direct(beir, str(tiny_encoder), tmp_path, loss="hinge")
    assert swaprank_main(finetune_args(beir, tmp_path / "no-model", tmp_path / "o3")) == 2


def _run_direct(data: Path, base: str, tmp_path: Path, **train: object) -> None:
    from swaprank.finetune.pipeline import RunOptions, run
    from swaprank.finetune.training import TrainConfig

    run(RunOptions(data=data, base=base, out=tmp_path / "direct", dev_fraction=0.34,
                   train=TrainConfig(**train)))  # type: ignore[arg-type]


def test_a_rerun_with_different_training_settings_is_refused(finished_run: tuple[Path, dict], beir: Path,
                                                             tiny_encoder: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = finished_run
    assert swaprank_main([*finetune_args(beir, tiny_encoder, out), "--learning-rate", "1e-3"]) == 2
    assert "different settings (learning_rate)" in capsys.readouterr().err


# ----------------------------------------------------------------------------- a full run


def test_output_is_a_cross_encoder_that_reranks_and_the_report_has_curve_and_before_after(
        finished_run: tuple[Path, dict]) -> None:
    out, report = finished_run
    assert (out / "finetune_report.png").stat().st_size > 0
    assert report["base"]["kind"] == "encoder (new 1-label head)"
    training = report["training"]
    assert training["stop_reason"] == "completed" and training["global_step"] == training["max_steps"] == 4
    # 4 training queries x 2 epochs / 2 per step; evaluations at steps 2 and 4
    assert [p["step"] for p in report["curve"]["held_out"]] == [2, 4]
    assert report["curve"]["loss"] and all("loss" in p for p in report["curve"]["loss"])
    held = report["held_out"]
    assert held["queries"] == 2 and held["candidates"] == 5
    for row in ("first_stage_row", "before", "after"):
        assert 0.0 <= held[row]["ndcg@10"] <= 1.0 and 0.0 <= held[row]["mrr@10"] <= 1.0
    assert 0.0 < held["p_value_after_vs_before"] <= 1.0
    assert report["mining"]["stats"]["queries"] == 4
    result = Reranker(f"cross-encoder:{out}").rerank(QUERIES["salt"], list(TOPICS["salt"]))
    assert sorted(r.index for r in result) == [0, 1, 2] and all(0.0 <= r.score <= 1.0 for r in result)


def test_output_exports_on_the_fast_cpu_path_with_the_same_scores(finished_run: tuple[Path, dict], tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = finished_run
    monkeypatch.setenv("SWAPRANK_CACHE_DIR", str(tmp_path / "cache"))
    registry.default_registry().close()
    exported = tmp_path / "exported"
    assert swaprank_main(["export", f"cross-encoder:{out}?runtime=openvino", "--out", str(exported)]) == 0
    docs = list(TOPICS["coffee"])
    fast = {r.index: r.raw_score for r in Reranker(f"cross-encoder:{exported}").rerank(QUERIES["coffee"], docs)}
    exact = {r.index: r.raw_score for r in Reranker(f"cross-encoder:{out}").rerank(QUERIES["coffee"], docs)}
    assert fast == pytest.approx(exact, abs=1e-3)
    registry.default_registry().close()


def test_max_minutes_stops_cleanly_and_a_rerun_resumes_from_the_checkpoint(beir: Path, tmp_path: Path) -> None:
    base = build_tiny_cross_encoder(tmp_path / "ce")  # a cross-encoder base is trained as it is
    out = tmp_path / "run"
    # a budget that is over after the first step: stop there, evaluate, save, keep the best, still report
    assert swaprank_main([*finetune_args(beir, base, out), "--max-minutes", "0.0001", "--no-report"]) == 0
    first = json.loads((out / "finetune_report.json").read_text())
    assert first["training"]["stop_reason"] == "time_budget" and first["training"]["global_step"] == 1
    assert first["base"]["kind"] == "cross-encoder"
    assert (out / "checkpoints" / "checkpoint-1").is_dir() and (out / "config.json").is_file()
    assert [p["step"] for p in first["curve"]["held_out"]] == [1]
    # the same command without the budget continues at step 1 and finishes the 4 planned steps
    assert swaprank_main([*finetune_args(beir, base, out), "--no-report"]) == 0
    second = json.loads((out / "finetune_report.json").read_text())
    assert second["training"]["resumed_from"].endswith("checkpoint-1")
    assert second["training"]["stop_reason"] == "completed" and second["training"]["global_step"] == 4
    assert [p["step"] for p in second["curve"]["held_out"]] == [1, 2, 4]


# ----------------------------------------------------------------------------- bi-encoder teacher


def test_soft_labels_put_every_positive_a_margin_above_the_best_negative_and_keep_the_teachers_order() -> None:
    from swaprank.finetune.teacher import soft_labels

    # the teacher likes negative 2 (0.5) more than the positive (0.4): the label overrules it by the margin
    labels = soft_labels([0.4, 0.3, 0.5, 0.1], [True, False, False, False], temperature=0.05, margin=3.0)
    assert labels == pytest.approx([0.5 / 0.05 + 3.0, 6.0, 10.0, 2.0])
    # a positive the teacher already puts far above the negatives keeps its own, higher logit
    assert soft_labels([0.9, 0.2], [True, False], 0.05, 3.0) == pytest.approx([18.0, 4.0])
    # several positives: each at least the margin above the best negative, their own order otherwise kept
    assert soft_labels([0.1, 0.8, 0.3], [True, True, False], 0.1, 1.0) == pytest.approx([4.0, 8.0, 3.0])
    with pytest.raises(FinetuneError, match="2 teacher scores for 3 documents"):
        soft_labels([0.1, 0.2], [True, False, False], 0.05, 3.0)


def test_a_teacher_needs_a_listwise_loss_and_sane_settings() -> None:
    with pytest.raises(FinetuneError, match="use it with --loss listnet, not 'bce'"):
        TrainConfig(loss="bce", teacher="dense").check()
    with pytest.raises(FinetuneError, match="--teacher-temperature must be positive"):
        TrainConfig(loss="listnet", teacher="dense", teacher_temperature=0.0).check()
    TrainConfig(loss="listnet", teacher="dense").check()


def test_teacher_labels_are_the_real_bi_encoders_cosines_over_each_training_row(beir: Path, tmp_path: Path) -> None:
    """all-MiniLM-L6-v2 (the pip package) scores the rows; the labels are its cosines / T, positives lifted."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from swaprank.eval.first_stage import bm25, default_bi_encoder
    from swaprank.finetune.teacher import bi_encoder_scores
    from swaprank.finetune.training import training_rows

    splits = load_splits(beir, workdir=tmp_path, dev_fraction=0.34)
    mined = mine(splits.train.qrels, bm25(splits.train, 10), MarginRule())
    scores = bi_encoder_scores(splits.train, mined, default_bi_encoder(), cache_dir=tmp_path / "cache")
    assert (tmp_path / "cache").is_dir() and any((tmp_path / "cache").iterdir())  # shared with the dense stage
    model = SentenceTransformer(default_bi_encoder(), device="cpu")
    q = splits.train.query_ids[0]
    for doc, cosine in scores[q].items():
        a, b = model.encode([splits.train.queries[q], splits.train.doc_text(doc)], normalize_embeddings=True)
        assert cosine == pytest.approx(float(np.dot(a, b)), abs=1e-4)
    config = TrainConfig(loss="listnet", teacher="dense", negatives=3, epochs=1)
    rows = training_rows(splits.train, mined, config, scores)
    assert len(rows["query"]) == len(splits.train.query_ids)
    for labels in rows["labels"]:  # the positive first, then up to 3 negatives (BM25 finds few here)
        assert 2 <= len(labels) <= 4 and labels[0] >= max(labels[1:]) + config.teacher_margin - 1e-9
        assert all(-1 / config.teacher_temperature <= v <= 1 / config.teacher_temperature for v in labels[1:])
    with pytest.raises(FinetuneError, match="no teacher scores were computed"):
        training_rows(splits.train, mined, config)


def test_a_run_with_the_dense_teacher_trains_and_records_it(beir: Path, tiny_encoder: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "teacher-run"
    assert swaprank_main([*finetune_args(beir, tiny_encoder, out), "--loss", "listnet", "--teacher", "dense",
                          "--no-report"]) == 0
    report = json.loads((out / "finetune_report.json").read_text())
    assert report["settings"]["teacher"] == "dense" and report["settings"]["teacher_margin"] == 3.0
    assert report["training"]["stop_reason"] == "completed" and report["training"]["global_step"] == 4
    assert Reranker(f"cross-encoder:{out}").rerank(QUERIES["salt"], list(TOPICS["salt"]))
    assert swaprank_main([*finetune_args(beir, tiny_encoder, tmp_path / "t2"), "--loss", "bce",
                          "--teacher", "dense"]) == 2
    assert "use it with --loss listnet" in capsys.readouterr().err
    assert swaprank_main([*finetune_args(beir, tiny_encoder, tmp_path / "t3"), "--loss", "listnet",
                          "--teacher", str(tmp_path / "no-such-model")]) == 2
    assert "not a directory" in capsys.readouterr().err
