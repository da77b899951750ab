"""What the chat model is asked: RankGPT's listwise prompt, a yes/no judge and UMBRELA's 0-3 grades.

Passages are put in the prompt with their whitespace collapsed and cut to ``max_words`` words
(RankGPT's 300), so twenty of them fit a small local model's context; cut passages are counted in
the result's ``truncated``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

GRADE_MAX = 3
TOP_LOGPROBS = 5

LISTWISE_SYSTEM = ("You are RankGPT, an intelligent assistant that ranks passages by their relevance "
                   "to a search query.")
LISTWISE_HEAD = ("I will provide you with {count} passages, each indicated by a numerical identifier []. "
                 "Rank the passages based on their relevance to the search query.")
LISTWISE_TAIL = ("Rank the {count} passages above based on their relevance to the search query, most relevant "
                 "first. List every identifier exactly once, in descending order of relevance, in the format "
                 "[] > [], e.g. [2] > [1] > [3]. Only respond with the ranking, do not explain.")
POINTWISE_SYSTEM = "You are a search relevance judge. You answer with a single word: yes or no."
POINTWISE_QUESTION = "Is this passage relevant to the query? Answer yes or no."
GRADED_SYSTEM = "You are a search relevance judge. You answer with a single number."
GRADED_QUESTION = (
    "How relevant is the passage to the query, on a scale of 0 to 3?\n"
    "3 = perfectly relevant: the passage is dedicated to the query and contains the exact answer.\n"
    "2 = highly relevant: the passage answers the query, but the answer may be unclear or hidden among "
    "extraneous information.\n"
    "1 = related: the passage seems related to the query but does not answer it.\n"
    "0 = irrelevant: the passage has nothing to do with the query.\n"
    "Answer with a single number: 0, 1, 2 or 3."
)

Messages = list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class Request:
    """One chat request as the decisions see it; the backend adds the model, timeout and limits."""

    messages: Messages
    logprobs: bool  # ask for the answer's top logprobs (pointwise yes/no only)


@dataclass(frozen=True, slots=True)
class Prompts:
    """A backend's ``instruction=`` and ``max_words=``, applied the same way to every prompt."""

    instruction: str | None
    max_words: int

    def passage(self, text: str) -> str:
        return " ".join(text.split()[: self.max_words])

    def truncated(self, texts: Sequence[str]) -> int:
        """How many of ``texts`` the prompt cuts: reported, never silent."""
        return sum(len(text.split()) > self.max_words for text in texts)

    def _instruction(self) -> str:
        return f"Instruction: {self.instruction}\n\n" if self.instruction else ""

    def listwise(self, query: str, texts: Sequence[str]) -> Messages:
        """The query is said before and after the passages: small models lose it in a long window."""
        passages = "\n".join(f"[{i}] {self.passage(text)}" for i, text in enumerate(texts, start=1))
        user = (f"{LISTWISE_HEAD.format(count=len(texts))}\n\n{self._instruction()}Search query: {query}\n\n"
                f"{passages}\n\nSearch query: {query}\n{LISTWISE_TAIL.format(count=len(texts))}")
        return [{"role": "system", "content": LISTWISE_SYSTEM}, {"role": "user", "content": user}]

    def pointwise(self, query: str, text: str, *, graded: bool) -> Messages:
        """A yes/no question (read through logprobs), or a 0-3 grade where logprobs are not to be had."""
        question = GRADED_QUESTION if graded else POINTWISE_QUESTION
        user = f"{self._instruction()}Query: {query}\nPassage: {self.passage(text)}\n\n{question}"
        return [{"role": "system", "content": GRADED_SYSTEM if graded else POINTWISE_SYSTEM},
                {"role": "user", "content": user}]
