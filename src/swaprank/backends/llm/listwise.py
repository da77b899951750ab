"""Listwise ranking, RankGPT-style (Sun et al., 2023): one window per request, a sliding pass per query.

The model sees up to ``window_size`` passages at once and answers a permutation. Longer lists are
ranked from the back of the list to the front, ``step`` positions at a time, so a relevant passage
found late can climb up to ``step`` places per window towards the top. A query's whole list stays
in one pass (ranking needs every candidate), but its windows are sent one by one, each retried on
its own, so a 500 on the fifth window does not pay for the first four again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

from swaprank.backends.hosted import Part
from swaprank.backends.llm.parsing import Answer, parse_permutation
from swaprank.backends.llm.prompts import Prompts, Request
from swaprank.backends.llm.steps import Steps
from swaprank.types import BackendError, Usage

logger = logging.getLogger("swaprank")


def listwise_windows(count: int, window_size: int, step: int) -> list[tuple[int, int]]:
    """The (start, end) windows of one sliding pass, back to front; the last one starts at 0.

    ``step < window_size``, so consecutive windows overlap by ``window_size - step`` positions and
    the best passages seen so far are carried forward into the next window.
    """
    spans: list[tuple[int, int]] = []
    end = count
    while True:
        start = max(0, end - window_size)
        spans.append((start, end))
        if start == 0:
            return spans
        end -= step


def position_scores(order: Sequence[int]) -> list[float]:
    """Scores aligned with the input from a final order: ``(n - r) / n`` for rank ``r`` (0-based).

    Positions, not calibrated relevance: the model answers an order, not a number.
    """
    count = len(order)
    scores = [0.0] * count
    for rank, index in enumerate(order):
        scores[index] = (count - rank) / count
    return scores


def bill_others(error: BaseException, others: Iterable[Usage | None]) -> None:
    """A failing query's error carries what the other queries were billed: a fallback's bill stays complete."""
    if isinstance(error, BackendError):
        error.usage = Usage.total([error.usage, *others])


class Listwise:
    """The listwise decisions of one backend; the backend only sends what these steps yield."""

    def __init__(self, prompts: Prompts, window_size: int, step: int, label: str,
                 scrub: Callable[[str], str]) -> None:
        self.prompts = prompts
        self.window_size = window_size
        self.step = step
        self._label = label
        self._scrub = scrub

    def window(self, query: str, texts: list[str]) -> Steps[Request, Answer, Part]:
        """One window: a single chat request whose Part ``scores`` are each passage's position in the answer."""
        answer = yield Request(self.prompts.listwise(query, texts), logprobs=False)
        count = len(texts)
        permutation = parse_permutation(answer.content, count)
        if permutation.ranked == 0:
            raise answer.bad(self._scrub(f"llm answered no usable ranking of {count} passages: {answer.excerpt}"))
        if permutation.ranked < count or permutation.duplicates or permutation.out_of_range:
            logger.debug("swaprank: %s repaired a ranking of %d passages (%d missing, %d repeated, %d out of range)",
                         self._label, count, permutation.missing, permutation.duplicates, permutation.out_of_range)
        positions = [0.0] * count
        for rank, index in enumerate(permutation.order):
            positions[index] = float(rank)
        return Part(positions, answer.usage, answer.request_id)

    def sliding_pass(self, texts: list[str]) -> Steps[list[str], Part, Part]:
        """One query's pass: yields each window's passages, is sent its ranked Part, returns the whole
        list's position scores (:func:`position_scores`) and what every window billed.

        A failing window's error is re-raised carrying what the earlier windows billed.
        """
        order = list(range(len(texts)))
        billed: list[Usage | None] = []
        # No request for fewer than two passages: there is nothing to rank.
        windows = listwise_windows(len(texts), self.window_size, self.step) if len(texts) > 1 else []
        try:
            for start, end in windows:
                ids = order[start:end]
                part = yield [texts[i] for i in ids]
                billed.append(part.usage)
                order[start:end] = _reordered(ids, part)
        except BackendError as error:
            error.usage = Usage.total([*billed, error.usage])
            raise
        return Part(position_scores(order), Usage.total(billed))


def _reordered(ids: list[int], part: Part) -> list[int]:
    """The window's global ids in the model's order (``part.scores`` holds each passage's position)."""
    return [ids[i] for i in sorted(range(len(ids)), key=lambda i: part.scores[i])]
