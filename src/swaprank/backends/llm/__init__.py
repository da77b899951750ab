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

One module per job: ``prompts`` (what the model is asked), ``parsing`` (reading its answers),
``listwise`` (windows and sliding passes), ``pointwise`` (the yes/no-then-grade judging),
``steps`` (the sync and async loops that drive those decisions), ``options`` and ``backend``
(``LLMBackend``: the requests themselves, and how they fit ``HostedBackend``).
"""

from swaprank.backends.llm.backend import LLMBackend
from swaprank.backends.llm.listwise import listwise_windows, position_scores
from swaprank.backends.llm.options import MODES, SCORINGS, network_options
from swaprank.backends.llm.parsing import (
    YES_NO_LOOKAHEAD,
    Permutation,
    parse_grade,
    parse_permutation,
    strip_thinking,
    yes_probability,
)
from swaprank.backends.llm.prompts import (
    GRADE_MAX,
    GRADED_QUESTION,
    GRADED_SYSTEM,
    LISTWISE_HEAD,
    LISTWISE_SYSTEM,
    LISTWISE_TAIL,
    POINTWISE_QUESTION,
    POINTWISE_SYSTEM,
    TOP_LOGPROBS,
)

__all__ = [
    "GRADED_QUESTION",
    "GRADED_SYSTEM",
    "GRADE_MAX",
    "LISTWISE_HEAD",
    "LISTWISE_SYSTEM",
    "LISTWISE_TAIL",
    "MODES",
    "POINTWISE_QUESTION",
    "POINTWISE_SYSTEM",
    "SCORINGS",
    "TOP_LOGPROBS",
    "YES_NO_LOOKAHEAD",
    "LLMBackend",
    "Permutation",
    "listwise_windows",
    "network_options",
    "parse_grade",
    "parse_permutation",
    "position_scores",
    "strip_thinking",
    "yes_probability",
]
