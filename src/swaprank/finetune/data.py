"""Training data: a BEIR folder (train qrels, optional dev qrels) or a JSONL of query/positive pairs.

Everything is turned into ``swaprank.eval``'s ``BeirDataset`` so mining, evaluation and the report
reuse the eval module unchanged. Pairs are first written out as a BEIR folder inside the run
directory: a rerun (resume) then reads exactly the same ids, and ``swaprank eval`` can be pointed
at it. Without ``qrels/dev.tsv`` a held-out split is carved from train with a fixed seed, so model
selection never needs (or touches) a test split.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from swaprank.eval.loader import (
    BeirDataset,
    DatasetError,
    MissingDatasetFileError,
    json_objects,
    load_beir,
    load_corpus,
)

DEV_SPLIT = "dev"
TRAIN_SPLIT = "train"


@dataclass(frozen=True)
class Splits:
    """Train and held-out queries over one corpus; ``dev_source`` says where the held-out split came from."""

    train: BeirDataset
    dev: BeirDataset
    dev_source: str  # "qrels/dev.tsv" or "carved from train (fraction, seed)"
    data_dir: Path  # the BEIR folder actually read (the pairs' BEIR copy for JSONL input)


def _subset(dataset: BeirDataset, ids: list[str], split: str) -> BeirDataset:
    return BeirDataset(path=dataset.path, split=split, corpus=dataset.corpus,
                       queries={q: dataset.queries[q] for q in ids}, qrels={q: dataset.qrels[q] for q in ids},
                       query_ids=tuple(ids))


def carve_dev(train: BeirDataset, fraction: float, seed: int) -> tuple[BeirDataset, BeirDataset]:
    """Split train queries into (train, held-out) reproducibly: same ids for the same seed and fraction."""
    if not 0.0 < fraction < 1.0:
        raise DatasetError(f"the held-out fraction must be between 0 and 1 (exclusive), got {fraction}")
    ids = [q for q in train.query_ids if any(r > 0 for r in train.qrels[q].values())]
    if len(ids) < 2:
        raise DatasetError(f"{len(ids)} training query(ies) with a relevant document: need at least 2 to hold one "
                           "out for early stopping (or provide qrels/dev.tsv)", path=train.path)
    shuffled = sorted(ids)
    random.Random(seed).shuffle(shuffled)
    n_dev = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    held = set(shuffled[:n_dev])
    return (_subset(train, [q for q in ids if q not in held], TRAIN_SPLIT),
            _subset(train, [q for q in ids if q in held], DEV_SPLIT))


def _read_pairs(path: Path) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for number, record in json_objects(path):
        query, positive = record.get("query"), record.get("positive")
        for key, value in (("query", query), ("positive", positive)):
            if not isinstance(value, str) or not value.strip():
                raise DatasetError(f"'{key}' must be a non-empty string", path=path, line=number)
        pairs.append((str(query), str(positive)))
    if not pairs:
        raise DatasetError("no query/positive pairs", path=path)
    return pairs


def pairs_to_beir(pairs_file: Path, target: Path, corpus_file: Path | None = None) -> Path:
    """Write ``{"query", "positive"}`` lines as a BEIR folder (corpus = ``corpus_file`` plus every positive).

    A positive whose text equals a corpus document's text (or title + text) is that document; any other
    positive is added to the corpus. Identical queries become one query with several positives.
    """
    pairs = _read_pairs(pairs_file)
    corpus: dict[str, tuple[str, str]] = dict(load_corpus(corpus_file)) if corpus_file is not None else {}
    by_text: dict[str, str] = {}
    for doc_id, (title, text) in corpus.items():
        by_text.setdefault(text.strip(), doc_id)
        by_text.setdefault(f"{title} {text}".strip(), doc_id)
    query_ids: dict[str, str] = {}
    qrels: list[tuple[str, str]] = []
    for query, positive in pairs:
        q = query_ids.setdefault(query, f"q{len(query_ids)}")
        found = by_text.get(positive.strip())
        if found is not None:
            doc_id = found
        else:
            doc_id = f"p{len(corpus)}"
            while doc_id in corpus:
                doc_id += "_"
            corpus[doc_id] = ("", positive)
            by_text[positive.strip()] = doc_id
        if (q, doc_id) not in qrels:
            qrels.append((q, doc_id))
    (target / "qrels").mkdir(parents=True, exist_ok=True)
    with (target / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for doc_id, (title, text) in corpus.items():
            out.write(json.dumps({"_id": doc_id, "title": title, "text": text}) + "\n")
    with (target / "queries.jsonl").open("w", encoding="utf-8") as out:
        for query, q in query_ids.items():
            out.write(json.dumps({"_id": q, "text": query}) + "\n")
    with (target / "qrels" / "train.tsv").open("w", encoding="utf-8") as out:
        out.write("query-id\tcorpus-id\tscore\n")
        out.writelines(f"{q}\t{d}\t1\n" for q, d in qrels)
    return target


def load_splits(data: Path, *, workdir: Path, corpus: Path | None = None, dev_fraction: float = 0.1,
                seed: int = 0) -> Splits:
    """Train and held-out splits from a BEIR folder or a pairs file (see the module docstring)."""
    data = Path(data).expanduser()
    if not data.exists():
        raise MissingDatasetFileError(f"--data {data} does not exist (a BEIR folder or a JSONL of query/positive "
                                      "pairs)")
    if data.is_file():
        if corpus is not None and not Path(corpus).is_file():
            raise MissingDatasetFileError(f"--corpus {corpus} does not exist")
        data = pairs_to_beir(data, workdir / "data", corpus)
    elif corpus is not None:
        raise DatasetError("--corpus applies to a JSONL pairs file; a BEIR folder has its own corpus.jsonl")
    train = load_beir(data, TRAIN_SPLIT)
    if not any(r > 0 for judged in train.qrels.values() for r in judged.values()):
        raise DatasetError("the train qrels hold no relevant (score > 0) judgement", path=data / "qrels/train.tsv")
    if (data / "qrels" / f"{DEV_SPLIT}.tsv").is_file():
        dev = load_beir(data, DEV_SPLIT)
        return Splits(train=train, dev=dev, dev_source=f"qrels/{DEV_SPLIT}.tsv", data_dir=data)
    train, dev = carve_dev(train, dev_fraction, seed)
    return Splits(train=train, dev=dev, dev_source=f"carved from train ({dev_fraction:g} of queries, seed {seed})",
                  data_dir=data)
