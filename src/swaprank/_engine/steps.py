"""The I/O a call needs, as values: what ``Reranker._steps`` (the decisions) yields and its two
drive loops (blocking and async) carry out. See ``swaprank._engine.reranker``."""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

from swaprank.backends.contract import Backend, BackendInfo, Request
from swaprank.specs import BackendSpec
from swaprank.types import RerankResult
from swaprank.windows import Expansion


@dataclass(frozen=True)
class Prepare:
    """I/O step: the live backend for ``spec``, its info and the windowed requests (blocking work)."""

    spec: BackendSpec
    requests: list[tuple[str, list[str]]]


@dataclass(frozen=True)
class Score:
    """I/O step: the backend's scores for ``requests``."""

    backend: Backend
    requests: list[Request]


@dataclass(frozen=True)
class Done:
    """The decisions are over: the call's results."""

    results: list[RerankResult]


Step = Prepare | Score
Prepared = tuple[Backend, BackendInfo, list[Expansion]]
Steps = Generator[Step, Any, list[RerankResult]]


def advance(steps: Steps, outcome: Any, error: Exception | None) -> Step | Done:
    """Hand the last I/O's outcome (or its error) to the decisions; the next I/O step, or the end."""
    try:
        return steps.send(outcome) if error is None else steps.throw(error)
    except StopIteration as done:
        return Done(done.value)
