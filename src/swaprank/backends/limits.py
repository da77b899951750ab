"""How long a pair a rerank server accepts, and how to count its tokens from the client side.

A server either rejects an over-long (query, document) pair (vLLM: HTTP 400, llama.cpp: HTTP 500,
TEI with ``truncate=false``: 413) or cuts it without saying so (Cohere past ``max_tokens_per_doc``,
Voyage and TEI by default). Knowing the limit lets the Reranker window such documents itself
(:mod:`swaprank.windows`), exactly as it does for local models. The limit comes from, in order:
the ``max_length`` option, what the server says about itself (TEI's ``/info``), the vendor's
documented window for the model (``model_limits``); when none is known, documents go whole.
Tokens are counted with the model's tokenizer when it is at hand (``tokenizer=``, else the model's
files in the local Hugging Face cache), else estimated (:class:`swaprank.windows.CharCounter`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from swaprank.specs import Option
from swaprank.windows import CharCounter, Limit, TokenCounter, Windowing, WindowPolicy, local_tokenizer, window_options


def length_options(*, max_length: bool = True) -> dict[str, Option]:
    """The long-document options of a hosted backend (merged into its option table)."""
    options = dict(window_options())
    if max_length:
        options["max_length"] = Option(int, None, "tokens per (query, document) pair the server accepts; default: "
                                       "the model's documented window (TEI: the server's /info); unknown: no "
                                       "client-side windows", minimum=8)
    options["tokenizer"] = Option(str, None, "tokenizer.json, model directory or cached hub id to count tokens "
                                  "with; default: the model's, if in the local cache, else an estimate",
                                  risk="reads-files", risk_reason="loads a tokenizer file or directory from disk")
    return options


class LengthLimits:
    """Mixin for hosted backends: ``windowing()`` from the options, the server or the docs."""

    # Documented (query + document) windows by model name; vendors fill it in.
    model_limits: ClassVar[Mapping[str, int]] = {}

    # Provided by Backend (annotations only: a method here would shadow it in the MRO).
    spec: Any
    options: ClassVar[Mapping[str, Option] | None]
    option: Callable[[str], Any]

    def _init_limits(self) -> None:
        self._counter: TokenCounter | None = None
        self._counter_lock = threading.Lock()
        if self.option("tokenizer"):  # checked now: a wrong path is a config error, not a runtime one
            self._counter = local_tokenizer(self.option("tokenizer"), required=True)

    def length_limit(self) -> Limit | None:
        """The pair limit, or None when unknown (then documents are sent whole)."""
        tokens = self.option("max_length") if "max_length" in (self.options or {}) else None
        if tokens is None:
            tokens = self.model_limits.get(self.spec.model)
        return None if tokens is None else Limit(tokens)

    def overhead_text(self) -> str:
        """Text the backend adds to every pair (a prompt template), which windows must leave room for."""
        return ""

    def tokenizer_name(self) -> str | None:
        """Which model's tokenizer to look for in the local cache (the spec's model by default)."""
        return str(self.spec.model)

    def windowing(self) -> Windowing | None:
        limit = self.length_limit()
        if limit is None:
            return None
        counter = self._token_counter()
        # An exact count may run a token or two over where a window is cut; the estimate keeps a
        # tenth of the window free (see CharCounter for what it was measured against).
        margin = 2 if counter.exact else max(2, limit.tokens // 10)
        # A prompt template's tokens go with every pair: what is left is the room for query and document.
        overhead = self.overhead_text()
        room = limit.tokens - (len(counter.offsets([overhead])[0]) if overhead else 0)
        return Windowing(counter, Limit(room, limit.includes_query, margin),
                         WindowPolicy.from_options(self.option))

    def _token_counter(self) -> TokenCounter:
        with self._counter_lock:
            if self._counter is None:
                name = self.tokenizer_name()
                self._counter = (local_tokenizer(name, required=False) if name else None) or CharCounter()
            return self._counter
