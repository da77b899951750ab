"""Query/document pairs as token ids, on ``tokenizers`` alone.

Both scoring paths (sentence-transformers on torch, and the exported runtimes) count tokens for
the long-document windows here, so a document gets the same windows whichever runtime scores it
(the windows themselves are cut by the Reranker, :mod:`swaprank.windows`). Encoding pairs
mirrors what ``transformers`` does for a cross-encoder (``truncation=True`` means longest-first,
padding to the longest pair of a batch), so an exported model sees exactly the ids torch saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from swaprank.windows import TokenCounter, TokenizerCounter


class PairTokenizer:
    """A ``tokenizers.Tokenizer`` set up twice: plain (to measure and window) and for pairs."""

    def __init__(self, tokenizer: Any, max_length: int, pad_id: int = 0) -> None:
        from tokenizers import Tokenizer

        # Copies, because a tokenizer.json may carry its own truncation/padding (the stand-in's says
        # OnlySecond at 256) and HF's fast tokenizer mutates the shared object per call.
        serialized = tokenizer.to_str()
        self._plain = Tokenizer.from_str(serialized)
        self._plain.no_truncation()
        self._plain.no_padding()
        self._pairs = Tokenizer.from_str(serialized)
        self._pairs.no_padding()
        self._pairs.enable_truncation(max_length, strategy="longest_first")
        self.max_length = max_length
        self.pad_id = pad_id
        self._counter: TokenizerCounter | None = None

    @classmethod
    def from_file(cls, path: str, max_length: int, pad_id: int = 0) -> PairTokenizer:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(path), max_length, pad_id)

    @property
    def counter(self) -> TokenCounter:
        """Token counts and offsets for the Reranker's long-document windows (:mod:`swaprank.windows`)."""
        if self._counter is None:
            self._counter = TokenizerCounter(self._plain)
        return self._counter

    # ----------------------------------------------------------------- model inputs

    def encode(self, pairs: Sequence[tuple[str, str]]) -> list[Any]:
        """Encodings of (query, passage) pairs, special tokens added, cut longest-first."""
        return self._pairs.encode_batch([(q, p) for q, p in pairs])

    def batch(self, encodings: Sequence[Any]) -> dict[str, np.ndarray]:
        """Pad encodings to the longest into int64 arrays named as the exported model's inputs."""
        length = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), length), self.pad_id, dtype=np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for row, encoding in enumerate(encodings):
            n = len(encoding.ids)
            ids[row, :n] = encoding.ids
            mask[row, :n] = 1
            types[row, :n] = encoding.type_ids
        return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
