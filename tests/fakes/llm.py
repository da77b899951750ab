"""A fake OpenAI-compatible chat server (``POST /v1/chat/completions``) for the ``llm:`` backend.

Not in ``FAKES``: the generic hosted-backend tests assume a rerank wire format. It reads the
prompts swaprank's LLM backend writes (a listwise ranking, a pointwise yes/no question or a 0-3
grade), scores passages with the shared word-overlap ``relevance`` and answers like a chat model:
a permutation ``[2] > [1] > [3]``, a yes/no with ``logprobs`` (P(yes) = relevance) when asked and
``logprobs`` is on, or a grade ``round(3 * relevance)``. ``rewrite`` changes an answer's text
(malformed permutations, chatty answers); scripted ``Fault``s (429, 500, ``json_body``...) work as
for the other fakes. Its quality is not a claim: it only has to be predictable.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.server import FakeServer, relevance

_PASSAGE = re.compile(r"^\[(\d+)\] (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Prompt:
    """What one chat request asked, as the fake understood it."""

    kind: str  # "listwise" | "yesno" | "graded"
    query: str
    docs: list[str]
    logprobs: bool
    text: str  # the user message


def read_prompt(body: dict[str, Any]) -> Prompt:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ValueError("'messages' must be a non-empty list")
    user = next((m.get("content") for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"), None)
    if not isinstance(user, str):
        raise ValueError("no user message")
    logprobs = bool(body.get("logprobs"))
    if "Search query: " in user:
        query = user.split("Search query: ", 1)[1].split("\n", 1)[0]
        passages = sorted((int(i), text) for i, text in _PASSAGE.findall(user))
        return Prompt("listwise", query, [text for _, text in passages], logprobs, user)
    if "Query: " in user and "\nPassage: " in user:
        query = user.split("Query: ", 1)[1].split("\n", 1)[0]
        passage = user.split("\nPassage: ", 1)[1].split("\n", 1)[0]
        kind = "graded" if "scale of 0 to 3" in user else "yesno"
        return Prompt(kind, query, [passage], logprobs, user)
    raise ValueError("the fake does not understand this prompt")


def completion(content: str | None, *, logprobs: Any = None, total_tokens: int | None = 7,
               model: str = "fake-chat") -> dict[str, Any]:
    """A chat.completion body, for scripting exact answers with ``Fault.json_body``."""
    body: dict[str, Any] = {
        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": logprobs,
                     "finish_reason": "stop"}],
    }
    if total_tokens is not None:
        body["usage"] = {"prompt_tokens": total_tokens - 1, "completion_tokens": 1, "total_tokens": total_tokens}
    return body


def yes_no_logprobs(p_yes: float, *, first: str | None = None, extra: list[tuple[str, float]] = ()) -> dict[str, Any]:
    """``logprobs`` of a one-token yes/no answer with P(yes) = ``p_yes``."""
    p_yes = min(max(p_yes, 1e-6), 1 - 1e-6)
    top = [("Yes", p_yes), ("No", 1 - p_yes), *extra]
    chosen = first or ("Yes" if p_yes >= 0.5 else "No")
    return {"content": [{"token": chosen, "logprob": math.log(dict(top).get(chosen, 1e-6)),
                         "top_logprobs": [{"token": t, "logprob": math.log(p)} for t, p in top]}]}


class FakeChat(FakeServer):
    """OpenAI chat completions; knobs: ``logprobs`` (answer them when asked), ``rewrite``."""

    vendor = "llm"
    path = "/v1/chat/completions"

    def reset(self) -> None:
        super().reset()
        self.logprobs = True
        self.rewrite: Callable[[Prompt, str], str] | None = None
        self.prompts: list[Prompt] = []

    def error_body(self, status: int, message: str) -> Any:
        return {"error": {"message": message, "type": "fake_error", "param": None, "code": str(status)}}

    def parse(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        prompt = read_prompt(body)
        self.prompts.append(prompt)
        return prompt.query, prompt.docs, None

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        prompt = read_prompt(body)
        logprobs = None
        if prompt.kind == "listwise":
            content = " > ".join(f"[{r['index'] + 1}]" for r in ranked)
        elif prompt.kind == "graded":
            content = str(round(3 * relevance(query, docs[0])))
        else:
            p_yes = relevance(query, docs[0])
            content = "Yes" if p_yes >= 0.5 else "No"
            if prompt.logprobs and self.logprobs:
                logprobs = yes_no_logprobs(p_yes)
        if self.rewrite is not None:
            content = self.rewrite(prompt, content)
        words = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        return completion(content, logprobs=logprobs, total_tokens=words + len(content.split()),
                          model=body.get("model", "fake-chat"))

    def _corrupt(self, payload: Any, kind: str, count: int) -> Any:
        """Only ``slow`` applies to a chat answer; the rerank-format corruptions do not (script ``json_body``)."""
        if kind == "slow":
            return payload
        raise ValueError(f"FakeChat cannot apply the {kind!r} fault; script Fault.json_body(completion(...))")
