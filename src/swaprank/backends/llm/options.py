"""The ``llm:`` config-string options: the shared network options, re-tuned for generation, and the modes'.

``max_docs_per_request`` is not an option of this backend: pointwise sends one document per
request, listwise a window, so ``window_size`` is what sizes a request.
"""

from __future__ import annotations

from swaprank.backends.hosted import network_options as _network_options
from swaprank.backends.hosted.options import SENDS_CREDENTIALS
from swaprank.specs import Option

MODES = ("listwise", "pointwise")
SCORINGS = ("auto", "logprobs", "graded")


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
                                 "default: OpenAI's", **SENDS_CREDENTIALS)
    return options


OPTIONS: dict[str, Option] = {
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
