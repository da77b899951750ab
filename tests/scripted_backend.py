"""A scriptable backend for testing the Reranker's policy independently of any model.

It is a real backend (registered through the public ``register_backend``), whose scores are a
pure function of the text: the score written in the document ("s=0.7 ...") or a word-overlap
ratio. It records every call, so tests can assert what reached the backend (dedup, empty input).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Sequence
from typing import Any, ClassVar

from swaprank import register_backend
from swaprank.backends.contract import Backend, Scores
from swaprank.config import BackendSpec, Option
from swaprank.types import BackendUnavailableError

_SCORE = re.compile(r"s=([0-9.]+)")


class ScriptedBackend(Backend):
    vendor: ClassVar[str] = "scripted"
    default_model: ClassVar[str | None] = "default"
    options: ClassVar[dict[str, Option]] = {
        "fail": Option(bool, False, "raise BackendUnavailableError on every call"),
        "delay": Option(float, 0.0, "seconds to sleep per call (blocking)"),
        "wrong_count": Option(bool, False, "return one score too few"),
    }
    instances: ClassVar[list[ScriptedBackend]] = []
    builds: ClassVar[int] = 0
    _build_lock = threading.Lock()

    def __init__(self, spec: BackendSpec, *, api_key: Any = None) -> None:
        super().__init__(spec)
        with ScriptedBackend._build_lock:
            ScriptedBackend.builds += 1
        self.calls: list[tuple[str, list[str]]] = []
        ScriptedBackend.instances.append(self)

    @staticmethod
    def value(query: str, text: str) -> float:
        found = _SCORE.search(text)
        if found:
            return float(found.group(1))
        words = set(query.lower().split())
        return len(words & set(text.lower().split())) / max(1, len(words))

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        self.calls.append((query, list(texts)))
        if self.option("delay"):
            time.sleep(self.option("delay"))
        if self.option("fail"):
            raise BackendUnavailableError("scripted outage", vendor="scripted", status=503, attempts=3)
        values = [self.value(query, t) for t in texts]
        if self.option("wrong_count"):
            values = values[:-1]
        return Scores(raw=[v * 10 for v in values], normalized=values)


class AsyncScriptedBackend(ScriptedBackend):
    """Same scores, with a native async path that never blocks the loop."""

    in_flight: ClassVar[int] = 0
    most_in_flight: ClassVar[int] = 0

    async def ascore(self, query: str, texts: Sequence[str]) -> Scores:
        cls = AsyncScriptedBackend
        cls.in_flight += 1
        cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        try:
            await asyncio.sleep(self.option("delay"))
        finally:
            cls.in_flight -= 1
        return self.score_without_delay(query, texts)

    async def ascore_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        return [await self.ascore(q, t) for q, t in requests]

    def score_without_delay(self, query: str, texts: Sequence[str]) -> Scores:
        values = [self.value(query, t) for t in texts]
        self.calls.append((query, list(texts)))
        return Scores(raw=[v * 10 for v in values], normalized=values)


def install() -> None:
    register_backend("scripted", ScriptedBackend, replace=True)
    register_backend("scripted-async", AsyncScriptedBackend, replace=True)
