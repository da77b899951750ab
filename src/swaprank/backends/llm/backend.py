"""``LLMBackend``: the chat requests themselves, and how they fit ``HostedBackend``.

One chat request is one ``_send``, so every request gets the shared retries (429, 5xx, timeouts,
connection errors; the SDK's own retries are off), the call-wide ``deadline``, error mapping,
usage summing (``total_tokens``) and an attempt span. Pointwise uses the usual splitting with one
document per request. Listwise cannot be split: ranking needs every candidate of a query in the
same sliding-window pass, so a query's whole list stays in one ``score`` call; only its windows
are sent one by one (each retried on its own), and several queries run concurrently.

Every decision lives in the step generators of ``listwise`` and ``pointwise``; the sync and async
methods here only send (``steps.run`` / ``steps.arun``).
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Sequence
from concurrent.futures import FIRST_EXCEPTION, wait
from dataclasses import replace
from functools import partial
from typing import Any, ClassVar

from pydantic import SecretStr

from swaprank.backends.contract import Scores
from swaprank.backends.hosted import PLACEHOLDER_KEY, HostedBackend, HTTPStatusFailure, Part
from swaprank.backends.hosted.clients import SdkClients
from swaprank.backends.hosted.loops import gather_or_cancel
from swaprank.backends.hosted.retry import Deadline
from swaprank.backends.llm.listwise import Listwise, bill_others
from swaprank.backends.llm.options import OPTIONS
from swaprank.backends.llm.parsing import VENDOR, Answer, read_answer
from swaprank.backends.llm.pointwise import Pointwise
from swaprank.backends.llm.prompts import TOP_LOGPROBS, Messages, Prompts, Request
from swaprank.backends.llm.steps import Steps, arun, run
from swaprank.backends.optional import require
from swaprank.redaction import redacted_spec
from swaprank.specs import BackendSpec, Option
from swaprank.types import BackendError, ConfigError

logger = logging.getLogger("swaprank")


class LLMBackend(HostedBackend):
    vendor: ClassVar[str] = VENDOR
    takes_instruction: ClassVar[bool] = True  # the prompt carries it
    default_model: ClassVar[str | None] = None
    model_hint: ClassVar[str] = "none: the chat model's name (`gpt-4o-mini`, `qwen2.5:7b`...)"
    sdk_loggers: ClassVar[tuple[str, ...]] = ("openai", "httpx2", "httpcore2")  # recent openai releases speak httpx2
    key_env: ClassVar[tuple[str, ...]] = ("OPENAI_API_KEY",)
    default_urls: ClassVar[tuple[str, ...]] = ("https://api.openai.com/v1",)
    options: ClassVar[dict[str, Option]] = OPTIONS

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
        self._api_status: type[Exception] = sdk.APIStatusError
        self.timeout_errors = (sdk.APITimeoutError,)
        self.connection_errors = (sdk.APIConnectionError,)
        self._prompts = Prompts(self.option("instruction"), self.option("max_words"))
        self._listwise = Listwise(self._prompts, self.option("window_size"), self.option("step"), self.label,
                                  self._scrub)
        self._pointwise = Pointwise(self._prompts, self.option("scoring"), self.label, sdk.BadRequestError,
                                    self._scrub)
        self._clients = self.own(SdkClients(self._build, sdk.OpenAI, sdk.AsyncOpenAI, follow_redirects=True))

    @property
    def mode(self) -> str:
        return str(self.option("mode"))

    @property
    def list_relative_scores(self) -> bool:
        """Listwise scores are positions in this call's list: the Reranker's score cache skips them."""
        return self.mode == "listwise"

    def key_required(self) -> bool:
        return not self.option("base_url")  # self-hosted servers rarely want one

    def _build(self, client_class: Any, http_client: Any) -> Any:
        # The SDK keeps the key as a plain attribute of its client whatever it is given (a key
        # provider callable is copied there on every request), so the string it is; the client is
        # private to this backend and never shown.
        kwargs: dict[str, Any] = {
            "api_key": self.secret() or PLACEHOLDER_KEY,
            "max_retries": 0,  # retries are ours (tenacity), never multiplied by the SDK's
            "timeout": self.option("timeout"),
            "http_client": http_client,  # ours: one TLS context, closed with the backend
        }
        if self.option("base_url"):
            kwargs["base_url"] = self.option("base_url").rstrip("/")
        return client_class(**kwargs)

    def listwise_messages(self, query: str, texts: Sequence[str]) -> Messages:
        return self._prompts.listwise(query, texts)

    def pointwise_messages(self, query: str, text: str, *, graded: bool) -> Messages:
        return self._prompts.pointwise(query, text, graded=graded)

    # -------------------------------------------------------------- one request

    def _request(self, request: Request, timeout: float) -> dict[str, Any]:
        """The SDK's ``create`` arguments: greedy decoding, so a retried request asks the same question."""
        kwargs: dict[str, Any] = {"model": self.spec.model, "messages": request.messages, "temperature": 0.0,
                                  "timeout": timeout}
        if request.logprobs:
            kwargs.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
        if self.option("max_tokens") is not None:
            kwargs["max_tokens"] = self.option("max_tokens")
        return kwargs

    def _chat(self, request: Request, timeout: float) -> Answer:
        raw = self._clients.sync.chat.completions.with_raw_response.create(**self._request(request, timeout))
        return read_answer(raw.text, raw.headers)

    async def _achat(self, request: Request, timeout: float) -> Answer:
        create = self._clients.for_loop().chat.completions.with_raw_response.create
        raw = await create(**self._request(request, timeout))
        return read_answer(raw.text, raw.headers)

    def _exchange(self, query: str, texts: list[str]) -> Steps[Request, Answer, Part]:
        """What one ``_send`` asks: a listwise window, or each document judged in turn."""
        return self._listwise.window(query, texts) if self.mode == "listwise" else self._pointwise.part(query, texts)

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:
        return run(self._exchange(query, texts), partial(self._chat, timeout=timeout))

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:
        return await arun(self._exchange(query, texts), partial(self._achat, timeout=timeout))

    def _status_failure(self, exc: BaseException) -> HTTPStatusFailure | None:
        """The SDK's HTTP errors (``APIStatusError``: 429, 5xx, 401...) as the shared layer's status failure."""
        status = getattr(exc, "status_code", None)
        if isinstance(exc, self._api_status) and isinstance(status, int):
            response = getattr(exc, "response", None)
            return HTTPStatusFailure(status, dict(getattr(response, "headers", None) or {}), getattr(exc, "body", None))
        return super()._status_failure(exc)

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
                bill_others(error, [f.result().usage for f in done if f is not future and f.exception() is None])
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
        except BackendError as error:
            bill_others(error, (scores.usage for scores in finished))
            raise

    def _with_truncated(self, requests: Sequence[tuple[str, Sequence[str]]], scores: list[Scores]) -> list[Scores]:
        return [replace(s, truncated=self._prompts.truncated(texts))
                for (_, texts), s in zip(requests, scores, strict=True)]

    def _rank(self, query: str, texts: list[str], deadline: Deadline) -> Scores:
        """One query's sliding-window pass; each window is one request with the shared retries."""
        ranked = run(self._listwise.sliding_pass(texts), lambda window: self._attempts(query, window, deadline))
        return self._listwise_scores(texts, ranked)

    async def _arank(self, query: str, texts: list[str], deadline: Deadline) -> Scores:
        semaphore = self._semaphores.get()

        async def attempts(window: list[str]) -> Part:
            async with semaphore:
                return await self._aattempts(query, window, deadline)

        return self._listwise_scores(texts, await arun(self._listwise.sliding_pass(texts), attempts))

    def _listwise_scores(self, texts: list[str], ranked: Part) -> Scores:
        """``raw_score`` is the position score too: the model answers an order, not a number."""
        return Scores(raw=list(ranked.scores), normalized=ranked.scores, usage=ranked.usage,
                      truncated=self._prompts.truncated(texts))
