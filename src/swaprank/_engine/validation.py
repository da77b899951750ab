"""Checking what callers hand the Reranker: queries, documents, and the policy's own settings.

Every check names the offending position and what would be accepted, so a bad input is a typed
error the caller can fix, never a mis-ranking.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from swaprank.backends.contract import Scores
from swaprank.specs import BackendSpec
from swaprank.texts import unreadable
from swaprank.types import BadResponseError, ConfigError, Document, InvalidInputError

DocumentInput = str | Document | Sequence[Any] | Mapping[str, Any]

def check_query(query: Any, where: str = "query") -> str:
    if not isinstance(query, str):
        raise InvalidInputError(f"{where} must be a string, got {type(query).__name__}")
    if not query.strip():
        raise InvalidInputError(f"{where} is empty")
    _check_text(query, where)
    return query


def _check_text(text: str, where: str) -> None:
    problem = unreadable(text)
    if problem is not None:
        raise InvalidInputError(f"{where} {problem}")


def _to_document(item: Any, position: str) -> Document:
    if isinstance(item, Document):
        doc = item
    elif isinstance(item, str):
        _check_text(item, position)
        return Document(item)
    elif item is None:
        raise InvalidInputError(f"{position} is None; expected a string or (text, id, metadata)")
    elif isinstance(item, Mapping):
        if "text" not in item:
            raise InvalidInputError(f"{position} is a mapping without a 'text' key")
        doc = Document(item["text"], item.get("id"), item.get("metadata") or {})
    elif isinstance(item, (tuple, list)) and 1 <= len(item) <= 3:
        doc = Document(*item)
        if doc.metadata is None:
            doc = Document(doc.text, doc.id)
    else:
        raise InvalidInputError(
            f"{position} is {type(item).__name__}; expected a string, a swaprank.Document, "
            "a (text, id, metadata) tuple or a {'text': ...} mapping"
        )
    if not isinstance(doc.text, str):
        raise InvalidInputError(f"{position} has text of type {type(doc.text).__name__}; expected str")
    if not isinstance(doc.metadata, Mapping):
        raise InvalidInputError(f"{position} has metadata of type {type(doc.metadata).__name__}; expected a mapping")
    _check_text(doc.text, position)
    return doc


def normalize_documents(documents: Any, where: str = "documents") -> list[Document]:
    """Accept the shapes callers naturally have and reject the rest with the position named."""
    if isinstance(documents, (str, bytes, Mapping)) or not isinstance(documents, Iterable):
        raise InvalidInputError(f"{where} must be a list of documents, got {type(documents).__name__}")
    return [_to_document(item, f"{where}[{i}]") for i, item in enumerate(documents)]


def check_top_n(top_n: Any, error: type[ValueError] = InvalidInputError) -> int | None:
    if top_n is None:
        return None
    if isinstance(top_n, bool) or not isinstance(top_n, int):
        raise error(f"top_n must be a positive int or None, got {top_n!r}")
    if top_n <= 0:
        raise error(f"top_n must be a positive int or None, got {top_n}")
    return top_n


def check_min_results(value: Any, top_n: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"min_results must be a non-negative int, got {value!r}")
    if top_n is not None and value > top_n:
        raise ConfigError(f"min_results ({value}) cannot exceed top_n ({top_n})")
    return value


def check_threshold(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"score_threshold must be a number in [0, 1] (scores are normalised), got {value!r}")
    return float(value)


def dedup(texts: Sequence[str], enabled: bool) -> tuple[list[str], list[int]]:
    """Unique texts to score, and for each input the position of its text among them."""
    if not enabled:
        return list(texts), list(range(len(texts)))
    first: dict[str, int] = {}
    positions = [first.setdefault(text, len(first)) for text in texts]
    return list(first), positions


def check_scores(scores: Any, expected: int, spec: BackendSpec) -> Scores:
    """A backend that answers with the wrong shape must fail loudly, never mis-rank silently."""
    vendor = spec.backend
    if not isinstance(scores, Scores):
        raise BadResponseError(f"backend returned {type(scores).__name__}, not Scores", vendor=vendor)
    if len(scores.raw) != expected or len(scores.normalized) != expected:
        raise BadResponseError(
            f"backend returned {len(scores.raw)} raw / {len(scores.normalized)} scores for {expected} documents",
            vendor=vendor,
        )
    for value in scores.normalized:
        if not isinstance(value, float) or math.isnan(value) or not 0.0 <= value <= 1.0:
            raise BadResponseError(f"backend returned score {value!r} outside [0, 1]", vendor=vendor)
    return scores

