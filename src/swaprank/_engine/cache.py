"""An LRU cache of (model, query, text) -> score, shared by every call of one Reranker.

RAG traffic repeats itself: the same popular question, a chat turn re-asked, an evaluation that
reranks prefixes of the same candidate list at several depths. A cross-encoder pair costs
milliseconds on CPU and an API pair costs money, so a hit is worth keeping. Keys include the
spec, because a fallback model's score is not the primary's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

from swaprank.backends.contract import Scores
from swaprank.specs import BackendSpec

Request = tuple[str, list[str]]
_Key = tuple[BackendSpec, str, str]


class ScoreCache:
    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0
        self._data: OrderedDict[_Key, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._data)

    def bypassed(self, requests: Sequence[Request]) -> None:
        """Count texts scored without the cache (a listwise backend's positions): every one a miss."""
        with self._lock:
            self.misses += sum(len(texts) for _, texts in requests)

    def missing(self, spec: BackendSpec, requests: Sequence[Request]) -> list[Request]:
        """The part of ``requests`` the backend still has to score (queries with nothing new are dropped)."""
        todo: list[Request] = []
        with self._lock:
            for query, texts in requests:
                new = [t for t in texts if (spec, query, t) not in self._data]
                self.hits += len(texts) - len(new)
                self.misses += len(new)
                if new:
                    todo.append((query, new))
        return todo

    def complete(self, spec: BackendSpec, requests: Sequence[Request], todo: Sequence[Request],
                 fresh: Sequence[Scores]) -> list[Scores]:
        """Store the fresh scores and answer every request from them and the cache.

        ``fresh`` must already be validated against ``todo``. Fresh scores are read from a local
        map, not back from the cache, so a cache smaller than one call still answers that call.
        """
        local: dict[tuple[str, str], tuple[float, float]] = {}
        extras: dict[str, Scores] = {}
        for (query, texts), scores in zip(todo, fresh, strict=True):
            for text, raw, norm in zip(texts, scores.raw, scores.normalized, strict=True):
                local[(query, text)] = (raw, norm)
            extras[query] = scores
        out: list[Scores] = []
        with self._lock:
            for query, texts in requests:
                pairs = []
                for text in texts:
                    key = (spec, query, text)
                    value = local.get((query, text))
                    if value is None:
                        value = self._data[key]
                        self._data.move_to_end(key)
                    else:
                        self._data[key] = value
                    pairs.append(value)
                fresh_part = extras.get(query)
                out.append(Scores(raw=[p[0] for p in pairs], normalized=[p[1] for p in pairs],
                                  usage=fresh_part.usage if fresh_part else None,
                                  truncated=fresh_part.truncated if fresh_part else 0))
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        return out
