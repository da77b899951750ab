"""Long documents, for every backend: cut into token windows, score each, pool back to one score.

A cross-encoder (local or behind a server) reads at most a fixed number of tokens per
(query, document) pair. Past that, the local tokenizer silently cuts, some servers reject the
whole request (vLLM: HTTP 400, llama.cpp: HTTP 500) and others cut without a word. The Reranker
therefore splits an over-long document into windows that each fit, sends the windows to the
backend like any other candidates (so they share its batches, split requests and retries), and
gives the document its best window's score (``aggregate=max``).

Window size: a window holds ``W`` document tokens, by default half of what the model reads after
the query and special tokens (``window_tokens`` sets it; documents that fit go whole). A
cross-encoder scores a window as a whole, so evidence that fills a quarter of a full-width window
is diluted by the rest: with SciFact abstracts buried between other abstracts, full-width windows
recovered 87.4% of the short-document nDCG@10 on all 300 test queries, half-width ones 99.3%
(benchmarks/RESULTS.md 2c).

Window geometry, measured on SciFact (benchmarks/RESULTS.md 2c):

- default, ``half_window_overlap=true``: windows start ``S = ceil(W / 2)`` tokens apart and the last
  one is aligned to the document's end, so every passage of up to ``W // 2 + 1`` tokens lies whole
  inside at least one window wherever it sits (for a passage starting at token ``a``, the window
  starting at ``S * floor(a / S)``, or the last window, contains it). With full-width windows a
  32-token overlap recovered only 75.1% where half-window overlap recovered 87.4%: a relevant
  abstract cut in two is scored as two diluted halves.
- ``half_window_overlap=false``: consecutive windows share ``window_overlap`` tokens (32), the last
  one ends with the document (it may be short); fewer windows.

``max_windows`` (32: the text and compute of 16 full-width windows) caps the cost per document: the
first windows are kept, the rest of the document is cut, and the document is counted as truncated
(never silently).

The query is read whole by every pair, so it is bounded too: at most half of what the model reads
(``QUERY_SHARE``); a longer query is cut (``RerankResult.query_truncated``), characters first, so a
megabyte of query costs no more memory than a normal one. ``Expansion.tokens`` is what one request
costs the model (tokens over every pair and window), which ``Reranker(max_model_tokens=...)`` bounds.

Token counts come from the model's own tokenizer when one is at hand (always for local models;
for servers, ``tokenizer=`` or the model's files in the local Hugging Face cache), else from
:class:`CharCounter`, a documented over-estimate.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from swaprank.specs import Option
from swaprank.types import ConfigError

logger = logging.getLogger("swaprank")

Mode = Literal["window", "truncate"]
Aggregate = Literal["max", "mean"]

MIN_WINDOW = 16  # tokens; below this (a query that fills the model) windows would be noise
# A query keeps at most this share of what the model reads, so every pair leaves the rest to the
# document; past it the query is cut (counted in ``RerankResult.query_truncated``, never silently).
QUERY_SHARE = 0.5
# No tokenizer makes one token of more than this many characters in practice (BERT's WordPiece gives
# up on words over 100 characters with one [UNK]): the query is cut to that many characters per token
# it may keep *before* it is tokenized, so a megabyte of query costs no more than a normal one.
CHARS_PER_TOKEN_BOUND = 100


# ------------------------------------------------------------------ counting tokens


class TokenCounter(Protocol):
    """Where the tokens of a text are, as character spans (what windows are cut along)."""

    special_tokens: int  # tokens a pair encoding adds ([CLS] q [SEP] d [SEP] -> 3)
    exact: bool  # the model's own tokenizer, or an estimate

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]: ...


class TokenizerCounter:
    """Exact counts from a ``tokenizers.Tokenizer`` (the model's own ``tokenizer.json``)."""

    exact = True

    def __init__(self, tokenizer: Any) -> None:
        from tokenizers import Tokenizer

        # A copy: a tokenizer.json may carry its own truncation/padding, which would hide length.
        self._tokenizer = Tokenizer.from_str(tokenizer.to_str())
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.special_tokens = int(self._tokenizer.num_special_tokens_to_add(True))

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        encoded = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [[(int(a), int(b)) for a, b in e.offsets] for e in encoded]


class CharCounter:
    """An estimate for servers whose tokenizer is not available locally.

    One pseudo-token per run of up to 3 ASCII letters or digits, and one per any other non-space
    character (punctuation, accented letters, CJK). Measured against the MiniLM (BERT WordPiece)
    tokenizer on the 5,183 SciFact abstracts: 0.63 real tokens per pseudo-token on average, 0.94
    for the densest abstract, 0.99 for the densest 400-pseudo-token window; short stretches of
    gene and chemical names run denser (1.3-1.5 over 50-100 pseudo-tokens), so hosted backends
    also keep a tenth of each window free. The price of the estimate is windows of about half the
    size they could be: give ``tokenizer=`` for exact windows.
    """

    exact = False
    special_tokens = 4  # the most any common cross-encoder adds: <s> q </s></s> d </s>
    _PATTERN = re.compile(r"[A-Za-z0-9]{1,3}|[^\sA-Za-z0-9]")

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        return [[m.span() for m in self._PATTERN.finditer(text)] for text in texts]


def local_tokenizer(name: str, *, required: bool) -> TokenizerCounter | None:
    """The tokenizer of ``name`` (a ``tokenizer.json``, a model directory, or a hub id already in
    the local Hugging Face cache), without touching the network; None when it is not at hand.

    ``required`` (the user named it with ``tokenizer=``) turns "not found" into a ConfigError.
    """
    path = _tokenizer_file(name)
    if path is None:
        if required:
            raise ConfigError(f"tokenizer={name!r}: no tokenizer.json there or in the local Hugging Face cache")
        return None
    try:
        from tokenizers import Tokenizer

        return TokenizerCounter(Tokenizer.from_file(path))
    except Exception as exc:  # tokenizers missing, or a file it cannot read
        if required:
            raise ConfigError(f"tokenizer={name!r} could not be loaded: {type(exc).__name__}: {exc}") from exc
        logger.info("swaprank: tokenizer of %s not usable (%s); estimating token counts", name, exc)
        return None


def _tokenizer_file(name: str) -> str | None:
    expanded = os.path.expanduser(name)
    if os.path.isfile(expanded):
        return expanded
    if os.path.isdir(expanded):
        candidate = os.path.join(expanded, "tokenizer.json")
        return candidate if os.path.isfile(candidate) else None
    if name.count("/") != 1 or name.startswith(("/", ".", "~")):
        return None  # not shaped like a hub id (org/name): nothing to look up
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    try:
        found = try_to_load_from_cache(repo_id=name, filename="tokenizer.json")
    except Exception:  # an invalid repo id, an unreadable cache
        return None
    return found if isinstance(found, str) else None


# ------------------------------------------------------------------ configuration


@dataclass(frozen=True, slots=True)
class Limit:
    """What a model reads: ``tokens`` per (query, document) pair, or per document alone when the
    vendor counts the query apart (Cohere's ``max_tokens_per_doc``). Windows leave ``margin``
    tokens free: a window cut at token boundaries can re-tokenize a token or two longer (a word
    piece at its start becomes a word), which a server that rejects over-long pairs must not see."""

    tokens: int
    includes_query: bool = True
    margin: int = 0


@dataclass(frozen=True, slots=True)
class WindowPolicy:
    mode: Mode = "window"
    overlap: int = 32  # tokens shared by consecutive windows (used when ``half`` is off)
    half: bool = True  # half-window overlap, last window end-aligned (the guarantee in the module docstring)
    max_windows: int = 32
    aggregate: Aggregate = "max"
    tokens: int | None = None  # document tokens per window; None: half of what the model reads

    @classmethod
    def from_options(cls, option: Callable[[str], Any]) -> WindowPolicy:
        return cls(mode=option("long_docs"), overlap=option("window_overlap"), half=option("half_window_overlap"),
                   max_windows=option("max_windows"), aggregate=option("aggregate"),
                   tokens=option("window_tokens"))


@dataclass(frozen=True, slots=True)
class Windowing:
    """A backend's answer to "how long may a pair be, and how are tokens counted"."""

    counter: TokenCounter
    limit: Limit
    policy: WindowPolicy


def window_options(*, max_windows: int = 32) -> dict[str, Option]:
    """The long-document options every backend accepts (merged into its option table)."""
    return {
        "long_docs": Option(str, "window", "over-long documents: window (score overlapping windows, pool them) "
                            "| truncate (the model or server cuts; counted)", choices=("window", "truncate")),
        "window_overlap": Option(int, 32, "tokens shared by consecutive windows when half_window_overlap=false",
                                 minimum=0),
        "half_window_overlap": Option(bool, True, "windows overlap by half a window and the last ends with the "
                                      "document, so any passage of up to half a window is whole in some window "
                                      "(false: window_overlap tokens, about half the windows)"),
        "max_windows": Option(int, max_windows, "windows per document at most (the rest is cut, counted)",
                              minimum=1),
        "window_tokens": Option(int, None, "document tokens per window of an over-long document (default: half "
                                "of what the model reads, so buried evidence is not diluted by the text "
                                "around it); documents that fit still go whole", minimum=MIN_WINDOW),
        "aggregate": Option(str, "max", "a windowed document's score: max (its best window) | mean",
                            choices=("max", "mean")),
    }


# ------------------------------------------------------------------ expanding and pooling


@dataclass(slots=True)
class Expansion:
    """One request's texts as the backend will score them, and how to fold the scores back.

    ``texts[i]`` came from original text ``owners[i]``; ``windows[j]`` is how many windows
    original text ``j`` got (1 when it fit), ``cut[j]`` whether any of it went unscored.
    """

    query: str
    texts: list[str]
    owners: list[int]
    windows: list[int]
    cut: list[bool]
    aggregate: Aggregate = "max"
    measured: bool = True  # False when the backend's limit is unknown: nothing could be counted
    query_cut: bool = False  # the query was longer than it may be and was cut (see ``QUERY_SHARE``)
    tokens: int = 0  # what the model reads for this request: tokens over every pair and window (when measured)

    @property
    def windowed(self) -> int:
        return sum(1 for w in self.windows if w > 1)

    @property
    def truncated(self) -> int:
        return sum(self.cut)

    def pool(self, raw: Sequence[float], normalized: Sequence[float]) -> tuple[list[float], list[float]]:
        """One (raw, normalized) score per original text from the per-window scores."""
        count = len(self.windows)
        if len(self.owners) == count:  # nothing was windowed: the common case, no work
            return list(raw), list(normalized)
        if self.aggregate == "mean":
            raw_sum, norm_sum = [0.0] * count, [0.0] * count
            for owner, r, n in zip(self.owners, raw, normalized, strict=True):
                raw_sum[owner] += r
                norm_sum[owner] += n
            return ([s / w for s, w in zip(raw_sum, self.windows, strict=True)],
                    [s / w for s, w in zip(norm_sum, self.windows, strict=True)])
        best: list[tuple[float, float] | None] = [None] * count
        for owner, r, n in zip(self.owners, raw, normalized, strict=True):
            current = best[owner]
            if current is None or (n, r) > (current[1], current[0]):
                best[owner] = (r, n)
        pairs = [b if b is not None else (math.nan, 0.0) for b in best]
        return [p[0] for p in pairs], [p[1] for p in pairs]


def expand(query: str, texts: Sequence[str], windowing: Windowing | None) -> Expansion:
    """Split the texts of one request that exceed the backend's limit (or count them, in truncate mode)."""
    if windowing is None:  # the backend's limit is unknown: texts go as they are, nothing is counted
        count = len(texts)
        return Expansion(query, list(texts), list(range(count)), [1] * count, [False] * count, measured=False)
    policy, limit, counter = windowing.policy, windowing.limit, windowing.counter
    query, query_tokens, query_cut = cut_query(query, counter, limit) if limit.includes_query else (query, 0, False)
    overhead = query_tokens + (counter.special_tokens if limit.includes_query else 0)  # every pair pays it
    fits = limit.tokens - overhead
    room = fits - limit.margin  # a window leaves the margin free; a whole document may use it all
    size = min(room, policy.tokens) if policy.tokens is not None else _default_window(room)
    split = policy.mode == "window" and size >= MIN_WINDOW
    out = Expansion(query, [], [], [], [], policy.aggregate, query_cut=query_cut)
    for index, (text, offsets) in enumerate(zip(texts, counter.offsets(texts), strict=True)):
        spans = window_spans(len(offsets), size, policy) if split and len(offsets) > fits else None
        if spans is None:
            out.texts.append(text)
            out.owners.append(index)
            out.windows.append(1)
            out.cut.append(len(offsets) > max(fits, 0))
            out.tokens += overhead + min(len(offsets), max(fits, 0))
            continue
        kept = spans[: policy.max_windows]
        for start, end in kept:
            out.texts.append(text[offsets[start][0]: offsets[end - 1][1]])
            out.owners.append(index)
            out.tokens += overhead + end - start
        out.windows.append(len(kept))
        out.cut.append(len(kept) < len(spans))
    return out


def cut_query(query: str, counter: TokenCounter, limit: Limit) -> tuple[str, int, bool]:
    """The query as the model may read it (at most ``QUERY_SHARE`` of the limit), its token count,
    and whether anything was cut. Cut in characters first, so an enormous query is never tokenized whole."""
    most = max(1, int(limit.tokens * QUERY_SHARE))
    head = query[: most * CHARS_PER_TOKEN_BOUND]
    offsets = counter.offsets([head])[0]
    if len(offsets) > most:
        return head[: offsets[most - 1][1]], most, True
    return head, len(offsets), len(head) < len(query)


def _default_window(room: int) -> int:
    """Half the room, unless that is too small to hold anything (a query that nearly fills the model)."""
    return room // 2 if room // 2 >= MIN_WINDOW else room


def window_spans(n: int, budget: int, policy: WindowPolicy) -> list[tuple[int, int]]:
    """Token ranges ``[start, end)`` covering ``n`` tokens in windows of ``budget`` (see module docstring)."""
    if not policy.half:
        overlap = min(policy.overlap, budget // 2)
        spans, start = [], 0
        while True:
            end = min(start + budget, n)
            spans.append((start, end))
            if end == n:
                return spans
            start = end - overlap
    stride = budget - budget // 2
    spans = []
    start = 0
    while start + budget < n:
        spans.append((start, start + budget))
        start += stride
    spans.append((max(0, n - budget), n))  # the last window ends with the document
    return spans


def log_long_documents(model: str, expansions: Sequence[Expansion], limit: Limit | None) -> None:
    """Once per call: how many documents were windowed and how many were cut, and any query cut."""
    queries_cut = sum(e.query_cut for e in expansions)
    if queries_cut and limit is not None:
        logger.info("swaprank: %s: %d of %d queries were longer than %d tokens (half of what the model reads) "
                    "and were cut", model, queries_cut, len(expansions), int(limit.tokens * QUERY_SHARE))
    windowed = sum(e.windowed for e in expansions)
    truncated = sum(e.truncated for e in expansions)
    if not (windowed or truncated):
        return
    total = sum(len(e.windows) for e in expansions)
    windows = sum(w for e in expansions for w in e.windows if w > 1)
    unit = "" if limit is None else f" of {limit.tokens} tokens per {'pair' if limit.includes_query else 'document'}"
    logger.info("swaprank: %s: of %d documents, %d were windowed (%d windows%s) and %d cut",
                model, total, windowed, windows, unit, truncated)
