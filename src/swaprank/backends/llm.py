"""LLM reranking over any OpenAI-compatible chat endpoint: ``llm:<chat model>?base_url=...``.

Ollama, llama.cpp, LM Studio and many gateways have no rerank route, only ``/v1/chat/completions``;
this backend turns a chat model into a reranker through the official ``openai`` SDK (OpenAI itself,
vLLM, Ollama's ``/v1``, llama.cpp's ``llama-server``, LM Studio...). The key comes from
``api_key=`` or ``OPENAI_API_KEY`` (as with the SDK itself: with a third-party ``base_url`` set,
that variable's key is sent there too); with a ``base_url`` and no key, the placeholder
``EMPTY`` is sent, which self-hosted servers accept.

Two modes:

- ``mode=listwise`` (default), RankGPT-style (Sun et al., 2023). The model sees up to
  ``window_size`` passages at once and answers a permutation, ``[3] > [1] > [2]``. Longer lists are
  ranked with a sliding window from the back of the list to the front, ``step`` positions at a
  time, so a relevant passage found late can climb up to ``step`` places per window towards the top
  (20 and 10: RankGPT's defaults; 100 candidates cost 9 sequential requests). Answers are repaired,
  never trusted blindly: ids out of range and repeated ids are ignored, and the passages the model
  left out keep their relative order after the ranked ones, so no document is ever dropped. An
  answer without a single usable id is a ``BadResponseError`` (the fallback chain takes over).
  **Listwise scores are positions, not calibrated relevance**: the document ranked ``r``-th
  (0-based) of ``n`` gets ``(n - r) / n`` (the top one 1.0, the last ``1/n``), so
  ``score_threshold=t`` keeps the top ``1 - t`` share of the list whatever it holds (0.5: ranks
  0 to n/2, boundary included). ``raw_score`` is the
  same value: the model answers an order, not a number.
- ``mode=pointwise``: one request per document, "is this passage relevant to the query? yes/no".
  Where the server returns logprobs (OpenAI, vLLM, llama.cpp, recent Ollama), the score is P(yes)
  normalised over yes/no from the first answer token's ``top_logprobs``. Where it does not, the
  model is asked again for a graded answer on a 0-3 scale (UMBRELA's), mapped to grade / 3; after
  one answer without logprobs the backend asks for grades directly (``scoring=auto``; force either
  with ``scoring=logprobs`` / ``scoring=graded``). Requests run concurrently, ``max_concurrency``
  at most.

How this fits ``HostedBackend``: one chat request is one ``_send``, so every request gets the
shared retries (429, 5xx, timeouts, connection errors; the SDK's own retries are off), the
call-wide ``deadline``, error mapping, usage summing (``total_tokens``) and an attempt span. Pointwise
uses the usual splitting with one document per request. Listwise cannot be split: ranking needs
every candidate of a query in the same sliding-window pass, so a query's whole list stays in one
``score`` call; only its windows are sent one by one (each retried on its own, so a 500 on the
fifth window does not pay for the first four again), and several queries run concurrently.
``max_docs_per_request`` is therefore not an option of this backend: ``window_size`` is.

Passages are put in the prompt with their whitespace collapsed and cut to ``max_words`` words
(RankGPT's 300), so twenty of them fit a small local model's context; cut passages are counted in
the result's ``truncated``. Answers of reasoning models have their ``<think>...</think>`` removed
before parsing.
"""

from __future__ import annotations

import contextvars
import json
import logging
import math
import re
import string
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, wait
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from pydantic import SecretStr

from swaprank.backends.contract import Scores
from swaprank.backends.hosted import (
    PLACEHOLDER_KEY,
    HostedBackend,
    HTTPStatusFailure,
    Part,
    PerLoop,
    dig,
    int_or_none,
    request_id_from,
)
from swaprank.backends.hosted import network_options as _network_options
from swaprank.backends.hosted.loops import gather_or_cancel
from swaprank.backends.hosted.retry import Deadline
from swaprank.backends.optional import require
from swaprank.redaction import redacted_spec
from swaprank.specs import BackendSpec, Option
from swaprank.types import BackendError, BadResponseError, ConfigError, Usage

logger = logging.getLogger("swaprank")

MODES = ("listwise", "pointwise")
SCORINGS = ("auto", "logprobs", "graded")
GRADE_MAX = 3
TOP_LOGPROBS = 5
# Tokens of the answer searched for yes/no: some models open with a space, quote or markdown token.
YES_NO_LOOKAHEAD = 3

# ------------------------------------------------------------------ prompts

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

_THINK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
_BRACKETED_ID = re.compile(r"\[\s*(\d+)\s*\]")
_BARE_ID = re.compile(r"\d+")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def network_options() -> dict[str, Option]:
    """The shared network options, with defaults fit for generation instead of a rerank call."""
    options = _network_options(max_docs_per_request=1)
    del options["max_docs_per_request"]  # pointwise sends one document, listwise a window: see the docstring
    options["timeout"] = Option(float, 120.0, "seconds for one chat request (a local model may take a while)",
                                minimum=0.001)
    options["deadline"] = Option(float, 600.0, "seconds for a whole call, every window, retries and backoff "
                                 "included", minimum=0.001)
    # A local server answers a few requests at a time; more only queue there, towards the timeout.
    options["max_concurrency"] = Option(int, 4, "chat requests in flight at once per backend", minimum=1)
    options["base_url"] = Option(str, None, "OpenAI-compatible endpoint, e.g. http://127.0.0.1:11434/v1 (Ollama); "
                                 "default: OpenAI's")
    return options


# ------------------------------------------------------------------ answers


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
    """Scores aligned with the input from a final order: ``(n - r) / n`` for rank ``r`` (0-based)."""
    count = len(order)
    scores = [0.0] * count
    for rank, index in enumerate(order):
        scores[index] = (count - rank) / count
    return scores


# ------------------------------------------------------------------ the backend


class LLMBackend(HostedBackend):
    vendor: ClassVar[str] = "llm"
    takes_instruction: ClassVar[bool] = True  # the prompt carries it
    default_model: ClassVar[str | None] = None
    model_hint: ClassVar[str] = "none: the chat model's name (`gpt-4o-mini`, `qwen2.5:7b`...)"
    sdk_loggers: ClassVar[tuple[str, ...]] = ("openai", "httpx2", "httpcore2")  # recent openai releases speak httpx2
    key_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    options: ClassVar[dict[str, Option]] = {
        **network_options(),
        "mode": Option(str, "listwise", "listwise (RankGPT sliding windows; scores are rank positions) | pointwise "
                       "(yes/no per document; P(yes) from logprobs, else a 0-3 grade)", choices=MODES),
        "window_size": Option(int, 20, "listwise: passages the model ranks in one request", minimum=2),
        "step": Option(int, 10, "listwise: positions the window moves from the back of the list to the front "
                       "(< window_size)", minimum=1),
        "scoring": Option(str, "auto", "pointwise: auto (logprobs where the server returns them, else a 0-3 "
                          "grade) | logprobs | graded", choices=SCORINGS),
        "instruction": Option(str, None, "extra text for the prompt, e.g. a domain hint or what relevant means"),
        "max_words": Option(int, 300, "words of each passage put in the prompt (the rest is cut, counted)",
                            minimum=1),
        "max_tokens": Option(int, None, "most tokens of one answer (sent only when set)", minimum=1),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        if self.option("step") >= self.option("window_size"):
            raise ConfigError(f"llm: step ({self.option('step')}) must be smaller than window_size "
                              f"({self.option('window_size')}), or passages could never move between windows")
        given = set(spec.option_dict)
        ignored = given & ({"window_size", "step"} if self.mode == "pointwise" else {"scoring"})
        if ignored:
            logger.warning("swaprank: %s ignores %s in mode=%s", redacted_spec(spec), ", ".join(sorted(ignored)),
                           self.mode)
        sdk = require("openai", "llm")
        self._bad_request: type[Exception] = sdk.BadRequestError
        self._api_status: type[Exception] = sdk.APIStatusError
        self.timeout_errors = (sdk.APITimeoutError,)
        self.connection_errors = (sdk.APIConnectionError,)
        # Pointwise, scoring=auto: None until a server's answer tells whether it returns logprobs.
        self._logprobs: bool | None = {"logprobs": True, "graded": False}.get(self.option("scoring"))
        self._client = self._build(sdk.OpenAI)
        self._aclients: PerLoop[Any] = PerLoop(lambda: self._build(sdk.AsyncOpenAI))

    @property
    def mode(self) -> str:
        return str(self.option("mode"))

    @property
    def list_relative_scores(self) -> bool:
        """Listwise scores are positions in this call's list: the Reranker's score cache skips them."""
        return self.mode == "listwise"

    def key_required(self) -> bool:
        return not self.option("base_url")  # self-hosted servers rarely want one

    def _build(self, client_class: Any) -> Any:
        # The SDK keeps the key as a plain attribute of its client whatever it is given (a key
        # provider callable is copied there on every request), so the string it is; the client is
        # private to this backend and never shown.
        kwargs: dict[str, Any] = {
            "api_key": self.secret() or PLACEHOLDER_KEY,
            "max_retries": 0,  # retries are ours (tenacity), never multiplied by the SDK's
            "timeout": self.option("timeout"),
        }
        if self.option("base_url"):
            kwargs["base_url"] = self.option("base_url").rstrip("/")
        return client_class(**kwargs)

    # -------------------------------------------------------------- prompts

    def _passage(self, text: str) -> str:
        return " ".join(text.split()[: self.option("max_words")])

    def _truncated(self, texts: Sequence[str]) -> int:
        return sum(len(text.split()) > self.option("max_words") for text in texts)

    def _instruction(self) -> str:
        instruction = self.option("instruction")
        return f"Instruction: {instruction}\n\n" if instruction else ""

    def listwise_messages(self, query: str, texts: Sequence[str]) -> list[dict[str, str]]:
        passages = "\n".join(f"[{i}] {self._passage(text)}" for i, text in enumerate(texts, start=1))
        user = (f"{LISTWISE_HEAD.format(count=len(texts))}\n\n{self._instruction()}Search query: {query}\n\n"
                f"{passages}\n\nSearch query: {query}\n{LISTWISE_TAIL.format(count=len(texts))}")
        return [{"role": "system", "content": LISTWISE_SYSTEM}, {"role": "user", "content": user}]

    def pointwise_messages(self, query: str, text: str, *, graded: bool) -> list[dict[str, str]]:
        question = GRADED_QUESTION if graded else POINTWISE_QUESTION
        user = f"{self._instruction()}Query: {query}\nPassage: {self._passage(text)}\n\n{question}"
        return [{"role": "system", "content": GRADED_SYSTEM if graded else POINTWISE_SYSTEM},
                {"role": "user", "content": user}]

    def _request(self, messages: list[dict[str, str]], timeout: float, *, logprobs: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.spec.model, "messages": messages, "temperature": 0.0,
                                  "timeout": timeout}
        if logprobs:
            kwargs.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        if self.option("max_tokens") is not None:
            kwargs["max_tokens"] = self.option("max_tokens")
        return kwargs

    # -------------------------------------------------------------- one request

    def _chat(self, messages: list[dict[str, str]], timeout: float, *, logprobs: bool) -> _Answer:
        raw = self._client.chat.completions.with_raw_response.create(**self._request(messages, timeout,
                                                                                     logprobs=logprobs))
        return self._answer(raw)

    async def _achat(self, messages: list[dict[str, str]], timeout: float, *, logprobs: bool) -> _Answer:
        create = self._aclients.get().chat.completions.with_raw_response.create
        return self._answer(await create(**self._request(messages, timeout, logprobs=logprobs)))

    def _answer(self, raw: Any) -> _Answer:
        headers = dict(raw.headers)
        try:
            body = json.loads(raw.text)
        except ValueError:
            raise HTTPStatusFailure(200, headers, raw.text) from None  # mapped to BadResponseError
        request_id = request_id_from(headers) or dig(body, "id")
        choices = dig(body, "choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        content = dig(choice, "message", "content")
        if not isinstance(content, str):
            raise BadResponseError(f"llm answered without message content (finish_reason="
                                   f"{dig(choice, 'finish_reason')!r})", vendor=self.vendor, status=200,
                                   request_id=request_id if isinstance(request_id, str) else None)
        tokens = int_or_none(dig(body, "usage", "total_tokens"))
        return _Answer(content, dig(choice, "logprobs"), Usage(total_tokens=tokens) if tokens is not None else None,
                       request_id if isinstance(request_id, str) else None)

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:
        if self.mode == "listwise":
            return self._window_part(self._chat(self.listwise_messages(query, texts), timeout, logprobs=False),
                                     len(texts))
        answers: list[_Answer] = []
        scores = [self._judge(query, text, timeout, answers) for text in texts]
        return Part(scores, Usage.total(a.usage for a in answers), answers[-1].request_id if answers else None)

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:
        if self.mode == "listwise":
            answer = await self._achat(self.listwise_messages(query, texts), timeout, logprobs=False)
            return self._window_part(answer, len(texts))
        answers: list[_Answer] = []
        scores = [await self._ajudge(query, text, timeout, answers) for text in texts]
        return Part(scores, Usage.total(a.usage for a in answers), answers[-1].request_id if answers else None)

    def _window_part(self, answer: _Answer, count: int) -> Part:
        """One window's answer as a Part whose ``scores`` are each passage's position in the model's order."""
        permutation = parse_permutation(answer.content, count)
        if permutation.ranked == 0:
            raise answer.bad(self._scrub(f"llm answered no usable ranking of {count} passages: {answer.excerpt}"))
        if permutation.ranked < count or permutation.duplicates or permutation.out_of_range:
            logger.debug("swaprank: %s repaired a ranking of %d passages (%d missing, %d repeated, %d out of range)",
                         self.label, count, permutation.missing, permutation.duplicates, permutation.out_of_range)
        positions = [0.0] * count
        for rank, index in enumerate(permutation.order):
            positions[index] = float(rank)
        return Part(positions, answer.usage, answer.request_id)

    def _status_failure(self, exc: BaseException) -> HTTPStatusFailure | None:
        """The SDK's HTTP errors (``APIStatusError``: 429, 5xx, 401...) as the shared layer's status failure."""
        status = getattr(exc, "status_code", None)
        if isinstance(exc, self._api_status) and isinstance(status, int):
            response = getattr(exc, "response", None)
            return HTTPStatusFailure(status, dict(getattr(response, "headers", None) or {}), getattr(exc, "body", None))
        return super()._status_failure(exc)

    # -------------------------------------------------------------- pointwise

    def _judge(self, query: str, text: str, timeout: float, answers: list[_Answer]) -> float:
        if self._logprobs is not False:
            messages = self.pointwise_messages(query, text, graded=False)
            try:
                answer = self._chat(messages, timeout, logprobs=True)
            except self._bad_request:
                if self._logprobs is not None:  # forced, or known to work: a real bad request
                    raise
                self._no_logprobs("rejected the logprobs parameter")
            else:
                answers.append(answer)
                score = self._yes_score(answer)
                if score is not None:
                    return score
        answer = self._chat(self.pointwise_messages(query, text, graded=True), timeout, logprobs=False)
        answers.append(answer)
        return self._grade(answer)

    async def _ajudge(self, query: str, text: str, timeout: float, answers: list[_Answer]) -> float:
        if self._logprobs is not False:
            messages = self.pointwise_messages(query, text, graded=False)
            try:
                answer = await self._achat(messages, timeout, logprobs=True)
            except self._bad_request:
                if self._logprobs is not None:
                    raise
                self._no_logprobs("rejected the logprobs parameter")
            else:
                answers.append(answer)
                score = self._yes_score(answer)
                if score is not None:
                    return score
        answer = await self._achat(self.pointwise_messages(query, text, graded=True), timeout, logprobs=False)
        answers.append(answer)
        return self._grade(answer)

    def _yes_score(self, answer: _Answer) -> float | None:
        """P(yes) from the answer's logprobs; None (ask for a grade) when scoring=auto finds none usable."""
        if answer.logprobs is None and self._logprobs is None:
            self._no_logprobs("returned no logprobs")
            return None
        score = yes_probability(answer.logprobs)
        if score is not None:
            self._logprobs = True
            return score
        if self._logprobs is True and self.option("scoring") == "logprobs":
            raise answer.bad(self._scrub(f"llm answered without yes/no logprobs: {answer.excerpt} "
                                         "(scoring=logprobs; scoring=auto would ask for a grade)"))
        return None  # logprobs, but no yes/no among the top candidates: grade this one document

    def _no_logprobs(self, why: str) -> None:
        if self._logprobs is None:
            logger.info("swaprank: %s %s; asking for 0-%d grades instead", self.label, why, GRADE_MAX)
        self._logprobs = False

    def _grade(self, answer: _Answer) -> float:
        grade = parse_grade(answer.content)
        if grade is None:
            raise answer.bad(self._scrub(f"llm answered no grade from 0 to {GRADE_MAX}: {answer.excerpt}"))
        return grade

    # -------------------------------------------------------------- splitting and listwise passes

    def _jobs(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[int, int, str, list[str]]]:
        """Pointwise: one document per request (listwise never gets here: see score_many)."""
        return [(r, offset, query, [text]) for r, (query, texts) in enumerate(requests)
                for offset, text in enumerate(texts)]

    def score_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        if self.mode == "pointwise":
            return self._with_truncated(requests, super().score_many(requests))
        deadline = Deadline(self.option("deadline"))
        if len(requests) <= 1:
            return [self._rank(query, list(texts), deadline) for query, texts in requests]
        futures = [self._thread_pool().submit(contextvars.copy_context().run, self._rank, query, list(texts), deadline)
                   for query, texts in requests]
        done, pending = wait(futures, return_when=FIRST_EXCEPTION)
        for future in pending:
            future.cancel()
        for future in futures:  # in submission order, so the error reported is deterministic
            error = future.exception() if future in done else None
            if error is not None:
                if isinstance(error, BackendError):  # the other queries' bills too
                    others = [f.result().usage for f in done if f is not future and f.exception() is None]
                    error.usage = Usage.total([error.usage, *others])
                raise error
        return [future.result() for future in futures]

    async def ascore_many(self, requests: Sequence[tuple[str, Sequence[str]]]) -> list[Scores]:
        if self.mode == "pointwise":
            return self._with_truncated(requests, await super().ascore_many(requests))
        deadline = Deadline(self.option("deadline"))
        finished: list[Scores] = []

        async def rank(query: str, texts: list[str]) -> Scores:
            scores = await self._arank(query, texts, deadline)
            finished.append(scores)
            return scores

        try:
            return await gather_or_cancel([rank(query, list(texts)) for query, texts in requests])
        except BackendError as error:  # the other queries' bills too
            error.usage = Usage.total([error.usage, *(s.usage for s in finished)])
            raise

    def _with_truncated(self, requests: Sequence[tuple[str, Sequence[str]]], scores: list[Scores]) -> list[Scores]:
        return [replace(s, truncated=self._truncated(texts)) for (_, texts), s in zip(requests, scores, strict=True)]

    def _rank(self, query: str, texts: list[str], deadline: Deadline) -> Scores:
        """One query's sliding-window pass; each window is one request with the shared retries."""
        order = list(range(len(texts)))
        billed: list[Usage | None] = []
        try:
            for start, end in self._windows(len(texts)):
                ids = order[start:end]
                part = self._attempts(query, [texts[i] for i in ids], deadline)
                billed.append(part.usage)
                order[start:end] = _reordered(ids, part)
        except BackendError as error:
            error.usage = Usage.total([*billed, error.usage])  # a fallback's bill stays complete
            raise
        return self._listwise_scores(texts, order, billed)

    async def _arank(self, query: str, texts: list[str], deadline: Deadline) -> Scores:
        order = list(range(len(texts)))
        billed: list[Usage | None] = []
        semaphore = self._semaphores.get()
        try:
            for start, end in self._windows(len(texts)):
                ids = order[start:end]
                async with semaphore:
                    part = await self._aattempts(query, [texts[i] for i in ids], deadline)
                billed.append(part.usage)
                order[start:end] = _reordered(ids, part)
        except BackendError as error:
            error.usage = Usage.total([*billed, error.usage])
            raise
        return self._listwise_scores(texts, order, billed)

    def _windows(self, count: int) -> list[tuple[int, int]]:
        """No request for fewer than two passages: there is nothing to rank."""
        return listwise_windows(count, self.option("window_size"), self.option("step")) if count > 1 else []

    def _listwise_scores(self, texts: list[str], order: list[int], billed: list[Usage | None]) -> Scores:
        scores = position_scores(order)
        return Scores(raw=list(scores), normalized=scores, usage=Usage.total(billed), truncated=self._truncated(texts))


@dataclass(frozen=True, slots=True)
class _Answer:
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
        error = BadResponseError(message, vendor=LLMBackend.vendor, status=200, request_id=self.request_id)
        error.usage = self.usage
        return error


def _reordered(ids: list[int], part: Part) -> list[int]:
    """The window's global ids in the model's order (``part.scores`` holds each passage's position)."""
    return [ids[i] for i in sorted(range(len(ids)), key=lambda i: part.scores[i])]
