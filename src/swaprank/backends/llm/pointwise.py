"""Pointwise judging: one "is this passage relevant? yes/no" per document, P(yes) from logprobs.

Where the server returns logprobs (OpenAI, vLLM, llama.cpp, recent Ollama), the score is P(yes)
normalised over yes/no from the first answer tokens' ``top_logprobs``. Where it does not, the
model is asked again for a graded answer on a 0-3 scale (UMBRELA's), mapped to grade / 3; after
one answer without logprobs (or a 400 to the ``logprobs`` parameter) the backend asks for grades
directly (``scoring=auto``; force either with ``scoring=logprobs`` / ``scoring=graded``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from swaprank.backends.hosted import Part
from swaprank.backends.llm.parsing import Answer, parse_grade, yes_probability
from swaprank.backends.llm.prompts import GRADE_MAX, Prompts, Request
from swaprank.backends.llm.steps import Steps
from swaprank.types import Usage

logger = logging.getLogger("swaprank")


class Pointwise:
    """The pointwise decisions of one backend, and what its server has shown about logprobs.

    That knowledge lives as long as the backend (the registry caches it), shared by its calls.
    """

    def __init__(self, prompts: Prompts, scoring: str, label: str, bad_request: type[Exception],
                 scrub: Callable[[str], str]) -> None:
        self.prompts = prompts
        self.scoring = scoring
        # None until a server's answer tells whether it returns logprobs (scoring=auto).
        self.logprobs: bool | None = {"logprobs": True, "graded": False}.get(scoring)
        self._label = label
        self._bad_request = bad_request
        self._scrub = scrub

    def part(self, query: str, texts: list[str]) -> Steps[Request, Answer, Part]:
        """The documents of one request judged one after the other, billed together."""
        answers: list[Answer] = []
        scores: list[float] = []
        for text in texts:
            score = yield from self.judge(query, text, answers)
            scores.append(score)
        return Part(scores, Usage.total(a.usage for a in answers), answers[-1].request_id if answers else None)

    def judge(self, query: str, text: str, answers: list[Answer]) -> Steps[Request, Answer, float]:
        """One document: yes/no with logprobs unless known not to work, else (or then) a 0-3 grade."""
        if self.logprobs is not False:
            request = Request(self.prompts.pointwise(query, text, graded=False), logprobs=True)
            try:
                answer = yield request
            except self._bad_request:
                if self.logprobs is not None:  # forced, or known to work: a real bad request
                    raise
                self._no_logprobs("rejected the logprobs parameter")
            else:
                answers.append(answer)
                score = self._yes_score(answer)
                if score is not None:
                    return score
        answer = yield Request(self.prompts.pointwise(query, text, graded=True), logprobs=False)
        answers.append(answer)
        return self._grade(answer)

    def _yes_score(self, answer: Answer) -> float | None:
        """P(yes) from the answer's logprobs; None (ask for a grade) when scoring=auto finds none usable."""
        if answer.logprobs is None and self.logprobs is None:
            self._no_logprobs("returned no logprobs")
            return None
        score = yes_probability(answer.logprobs)
        if score is not None:
            self.logprobs = True
            return score
        if self.logprobs is True and self.scoring == "logprobs":
            raise answer.bad(self._scrub(f"llm answered without yes/no logprobs: {answer.excerpt} "
                                         "(scoring=logprobs; scoring=auto would ask for a grade)"))
        return None  # logprobs, but no yes/no among the top candidates: grade this one document

    def _no_logprobs(self, why: str) -> None:
        if self.logprobs is None:
            logger.info("swaprank: %s %s; asking for 0-%d grades instead", self._label, why, GRADE_MAX)
        self.logprobs = False

    def _grade(self, answer: Answer) -> float:
        grade = parse_grade(answer.content)
        if grade is None:
            raise answer.bad(self._scrub(f"llm answered no grade from 0 to {GRADE_MAX}: {answer.excerpt}"))
        return grade
