"""Reading a chat model's answers, which is where things go wrong: never trusted blindly.

The chat completion body becomes an :class:`Answer`; its text a repaired permutation, a 0-3 grade,
or (from its logprobs) P(yes). Answers of reasoning models have their ``<think>...</think>``
removed before parsing.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from swaprank.backends.hosted import HTTPStatusFailure, dig, int_or_none, request_id_from
from swaprank.backends.llm.prompts import GRADE_MAX
from swaprank.types import BadResponseError, Usage

VENDOR = "llm"
# Tokens of the answer searched for yes/no: some models open with a space, quote or markdown token.
YES_NO_LOOKAHEAD = 3

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_BRACKETED_ID = re.compile(r"\[\s*(\d+)\s*\]")
_BARE_ID = re.compile(r"\d+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


@dataclass(frozen=True, slots=True)
class Answer:
    """One chat completion: its text, logprobs, what it was billed and the id to quote in errors."""

    content: str
    logprobs: Any
    usage: Usage | None
    request_id: str | None

    @property
    def excerpt(self) -> str:
        """The start of the answer, for an error message (scrubbed by the backend like any vendor text)."""
        return repr(self.content.strip()[:120])

    def bad(self, message: str) -> BadResponseError:
        """An answer that cannot be used: not retried (a deterministic model would say it again), billed."""
        error = BadResponseError(message, vendor=VENDOR, status=200, request_id=self.request_id)
        error.usage = self.usage
        return error


def read_answer(text: str, headers: Mapping[str, str]) -> Answer:
    """A raw chat completion response as an :class:`Answer`; a body without text is a bad response."""
    headers = dict(headers)
    try:
        body = json.loads(text)
    except ValueError:
        raise HTTPStatusFailure(200, headers, text) from None  # mapped to BadResponseError
    request_id = request_id_from(headers) or dig(body, "id")
    request_id = request_id if isinstance(request_id, str) else None
    choices = dig(body, "choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    content = dig(choice, "message", "content")
    if not isinstance(content, str):
        raise BadResponseError(f"llm answered without message content (finish_reason="
                               f"{dig(choice, 'finish_reason')!r})", vendor=VENDOR, status=200,
                               request_id=request_id)
    tokens = int_or_none(dig(body, "usage", "total_tokens"))
    return Answer(content, dig(choice, "logprobs"), Usage(total_tokens=tokens) if tokens is not None else None,
                  request_id)


def strip_thinking(text: str) -> str:
    """The answer without a reasoning model's ``<think>...</think>`` (an unclosed one runs to the end)."""
    return _THINK.sub(" ", text)


@dataclass(frozen=True, slots=True)
class Permutation:
    """A model's ranking of ``count`` passages, repaired: ``order`` holds every 0-based id once."""

    order: list[int]
    ranked: int  # ids taken from the answer; the rest were missing and follow in their input order
    duplicates: int
    out_of_range: int

    @property
    def missing(self) -> int:
        return len(self.order) - self.ranked


def parse_permutation(answer: str, count: int) -> Permutation:
    """Read ``[3] > [1] > [2]`` (1-based ids) into a complete 0-based order of ``count`` passages.

    Bracketed ids are read when there are any (so "the 3 passages: [2] > [1] > [3]" is not misread),
    else bare numbers. Out-of-range and repeated ids are skipped; passages the answer leaves out
    follow the ranked ones in their input order. Never drops or invents a passage.
    """
    text = strip_thinking(answer)
    tokens = _BRACKETED_ID.findall(text) or _BARE_ID.findall(text)
    order: list[int] = []
    seen: set[int] = set()
    duplicates = out_of_range = 0
    for token in tokens:
        index = int(token) - 1
        if not 0 <= index < count:
            out_of_range += 1
        elif index in seen:
            duplicates += 1
        else:
            seen.add(index)
            order.append(index)
    ranked = len(order)
    order.extend(i for i in range(count) if i not in seen)
    return Permutation(order, ranked, duplicates, out_of_range)


def _word(token: Any) -> str:
    return str(token).strip().strip(string.punctuation + "*_`\"'").lower() if isinstance(token, str) else ""


def yes_probability(logprobs: Any) -> float | None:
    """P(yes) / (P(yes) + P(no)) from a chat answer's ``logprobs``, or None when they say nothing.

    Looks at the first tokens' ``top_logprobs`` (the chosen token when there are none) and takes
    the first position where "yes" or "no" (any case, spacing or punctuation) is among the candidates.
    """
    content = dig(logprobs, "content")
    if not isinstance(content, list):
        return None
    for entry in content[:YES_NO_LOOKAHEAD]:
        if not isinstance(entry, dict):
            return None
        candidates = entry.get("top_logprobs") or [entry]
        yes = no = 0.0
        for candidate in candidates if isinstance(candidates, list) else []:
            logprob = dig(candidate, "logprob")
            if isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or math.isnan(logprob):
                continue
            word = _word(dig(candidate, "token"))
            if word == "yes":
                yes += math.exp(min(0.0, logprob))
            elif word == "no":
                no += math.exp(min(0.0, logprob))
        if yes + no > 0:
            return yes / (yes + no)
    return None


def parse_grade(answer: str, maximum: int = GRADE_MAX) -> float | None:
    """The first number of a graded answer mapped to [0, 1] (grade / maximum), or None if there is none in range."""
    match = _NUMBER.search(strip_thinking(answer))
    if match is None:
        return None
    grade = float(match.group())
    return grade / maximum if 0 <= grade <= maximum else None
