"""Scoring a local model's work in bounded chunks, and joining the chunks' answers.

A local model scores on this process's cores, so one call's pairs are scored in chunks of at most
``chunk_chars`` characters (query + text per pair: the cheap, tokenizer-free proxy of model work,
about 4 characters a token in English). Between two chunks the async call can be cancelled (a
service whose client hung up or whose deadline passed stops using the model at the next chunk, not
minutes later), and other calls' chunks get the cores in turn (a small request never waits behind
the whole of a large one). A chunk is far larger than one forward batch (32 pairs on torch), so the
model still runs full batches. Hosted backends split requests themselves (per vendor limits) and a
listwise backend's scores are positions in the whole list, so neither is chunked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from swaprank._engine.validation import check_scores
from swaprank.backends.contract import Request, Scores
from swaprank.specs import BackendSpec
from swaprank.types import BadResponseError, Usage

Piece = tuple[int, int, int]  # (request, first text, end)

DEFAULT_CHUNK_CHARS = 65_536  # about 16,000 tokens: 50 SciFact pairs, a few seconds of a MiniLM on two AVX2 cores


def split(requests: Sequence[Request], budget: int) -> list[list[Piece]]:
    """Consecutive runs of pairs of at most ``budget`` characters (a single larger pair goes alone)."""
    chunks: list[list[Piece]] = []
    pieces: list[Piece] = []
    size = 0
    for r, (query, texts) in enumerate(requests):
        start = 0
        for i, text in enumerate(texts):
            cost = len(query) + len(text)
            if size and size + cost > budget:
                if i > start:
                    pieces.append((r, start, i))
                chunks.append(pieces)
                pieces, size, start = [], 0, i
            size += cost
        if len(texts) > start:
            pieces.append((r, start, len(texts)))
    if pieces:
        chunks.append(pieces)
    return chunks


def chunk_requests(requests: Sequence[Request], pieces: list[Piece]) -> list[Request]:
    return [(requests[r][0], list(requests[r][1][a:b])) for r, a, b in pieces]


def join(requests: Sequence[Request], chunks: list[list[Piece]], answers: list[Any],
         spec: BackendSpec) -> list[Scores]:
    """One ``Scores`` per request from the chunks' answers (each checked before it is used)."""
    raw: list[list[float]] = [[] for _ in requests]
    normalized: list[list[float]] = [[] for _ in requests]
    usage: list[list[Usage | None]] = [[] for _ in requests]
    truncated = [0] * len(requests)
    for pieces, answer in zip(chunks, answers, strict=True):
        if not isinstance(answer, list) or len(answer) != len(pieces):
            raise BadResponseError(f"backend answered {len(answer) if isinstance(answer, list) else answer!r} "
                                   f"of {len(pieces)} queries", vendor=spec.backend)
        for (r, a, b), scores in zip(pieces, answer, strict=True):
            checked = check_scores(scores, b - a, spec)
            raw[r].extend(checked.raw)
            normalized[r].extend(checked.normalized)
            usage[r].append(checked.usage)
            truncated[r] += checked.truncated
    return [Scores(raw=raw[i], normalized=normalized[i], usage=Usage.total(usage[i]), truncated=truncated[i])
            for i in range(len(requests))]
