"""Reading a vendor's answer: scores aligned with the texts sent, usage counters, request ids."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from swaprank.types import BadResponseError, Usage

# Headers vendors put their request / trace id in (first match wins).
REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-debug-trace-id", "x-trace-id", "x-amzn-requestid")


@dataclass(frozen=True, slots=True)
class Part:
    """The parsed answer to one request: scores aligned with the texts that were sent."""

    scores: list[float]
    usage: Usage | None = None
    request_id: str | None = None


def request_id_from(headers: Mapping[str, str] | None) -> str | None:
    if not headers:
        return None
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    return next((lowered[name] for name in REQUEST_ID_HEADERS if lowered.get(name)), None)


def ranked_scores(
    items: Any,
    count: int,
    *,
    vendor: str,
    index_key: str = "index",
    score_key: str = "relevance_score",
    request_id: str | None = None,
) -> list[float]:
    """Turn a vendor's ``[{index, score}]`` (any order) into scores aligned with the texts sent.

    We always ask for every document back, so anything but a permutation of ``range(count)``
    with a numeric score each means the vendor's answer cannot be mapped back safely.
    """

    def bad(problem: str) -> BadResponseError:
        return BadResponseError(f"{vendor} returned an unusable ranking: {problem}", vendor=vendor,
                                status=200, request_id=request_id)

    if items is None:
        raise bad("the answer has no results list")
    if not isinstance(items, list):
        raise bad(f"expected a list of results, got {type(items).__name__}")
    if len(items) != count:
        raise bad(f"{len(items)} results for {count} documents")
    scores: list[float | None] = [None] * count
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise bad(f"result {position} is {type(item).__name__}, not an object")
        index, score = item.get(index_key), item.get(score_key)
        if isinstance(index, bool) or not isinstance(index, int):
            raise bad(f"result {position} has {index_key}={index!r}, not an integer")
        if not 0 <= index < count:
            raise bad(f"result {position} has {index_key}={index}, outside 0..{count - 1}")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise bad(f"result {position} has {score_key}={score!r}, not a finite number")
        if scores[index] is not None:
            raise bad(f"document {index} is ranked twice")
        scores[index] = float(score)
    return [s for s in scores if s is not None]  # complete: count results, no duplicates


@dataclass(frozen=True, slots=True)
class Ranking:
    """Where a JSON answer keeps its ranking and its usage counter, so a vendor states its answer's
    shape instead of writing the reading again. The default is Jina's form, which most servers copy:
    ``{results: [{index, relevance_score}], usage: {total_tokens}}``."""

    results: tuple[str, ...] = ("results",)
    score_key: str = "relevance_score"
    usage: tuple[str, ...] = ("usage", "total_tokens")
    unit: str = "total_tokens"  # the Usage field the counter is reported as

    def read(self, data: Any, count: int, *, vendor: str, request_id: str | None) -> Part:
        scores = ranked_scores(dig(data, *self.results), count, vendor=vendor, score_key=self.score_key,
                               request_id=request_id)
        value = int_or_none(dig(data, *self.usage))
        return Part(scores, Usage(**{self.unit: value}) if value is not None else None, request_id)


def int_or_none(value: Any) -> int | None:
    """Usage counters are informative: a missing or odd value is dropped, never fatal."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return int(value)


def positive_int(value: Any) -> int | None:
    """A limit a server reports about itself, when it is a usable one (a positive integer, not a bool)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def dig(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data
