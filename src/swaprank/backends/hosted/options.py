"""The options every hosted backend accepts, and how a server's scores map to [0, 1]."""

from __future__ import annotations

from typing import Any, Literal

from swaprank.backends.limits import length_options
from swaprank.specs import Option

Activation = Literal["identity", "sigmoid"]


ACTIVATIONS: tuple[Activation, ...] = ("identity", "sigmoid")

# SDKs that refuse to send without a key get this for a self-hosted base_url that needs none.
PLACEHOLDER_KEY = "EMPTY"

# How every hosted ``base_url`` is marked (docs/design.md, "Security"); the key itself is guarded
# too: one from the environment goes only to an approved host (swaprank.backends.hosted.hosts).
SENDS_CREDENTIALS: dict[str, Any] = {"risk": "sends-credentials",
                                     "risk_reason": "the documents, and the backend's key, go to this address"}


def activation_option(default: Activation) -> dict[str, Option]:
    """``activation``: how a server's scores map to [0, 1], for servers that may return logits.

    Declared per backend (``sigmoid`` where the server returns raw logits: llama.cpp, NVIDIA NIM;
    ``identity`` where it returns probabilities already), overridable in the config string for a
    server set up the other way. Never applied twice: ``raw_score`` keeps the server's value.
    """
    return {"activation": Option(str, default, "map the server's scores to [0, 1]: sigmoid (the server returns "
                                 "logits) | identity (it returns [0, 1] scores)", choices=ACTIVATIONS)}


def network_options(*, max_docs_per_request: int, base_url: bool = True, max_length: bool = True) -> dict[str, Option]:
    """The options every hosted backend accepts; vendors merge them into their own table."""
    options = {
        "timeout": Option(float, 30.0, "seconds for one HTTP request", minimum=0.001),
        "max_retries": Option(int, 3, "retries after the first attempt (429, 5xx, timeouts, connection errors)",
                              minimum=0),
        "deadline": Option(float, 120.0, "seconds for a whole call, retries and backoff included", minimum=0.001),
        "backoff": Option(float, 0.5, "first retry delay in seconds; doubles each retry, plus jitter", minimum=0),
        "max_backoff": Option(float, 20.0, "longest retry delay unless the vendor's Retry-After asks for more",
                              minimum=0),
        "max_docs_per_request": Option(int, max_docs_per_request, "split larger candidate lists into requests",
                                       minimum=1),
        # 16: a 1000-candidate list split at 100 per request goes out in one wave.
        "max_concurrency": Option(int, 16, "requests in flight at once per backend", minimum=1),
    }
    if base_url:
        options["base_url"] = Option(str, None, "self-hosted or proxy endpoint instead of the vendor's",
                                     **SENDS_CREDENTIALS)
    # Accepted everywhere, so one instruction can be written on every member of a chain; a rerank API
    # without an instruction field ignores it, with one warning (never silently).
    options["instruction"] = Option(str, None, "task instruction: llm: puts it in its prompt, instruction-following "
                                    "rerank models get it in their documented form (Voyage rerank-2.5, "
                                    "zerank-2, Qwen3-Reranker on vLLM); the others warn once that they "
                                    "ignore it")
    return {**options, **length_options(max_length=max_length)}
