"""Query/document pairs as token ids, with the long-document windows, on ``tokenizers`` alone.

Both scoring paths (sentence-transformers on torch, and the exported runtimes) cut documents into
windows here, so a document gets the same windows whichever runtime scores it. Encoding pairs
mirrors what ``transformers`` does for a cross-encoder (``truncation=True`` means longest-first,
padding to the longest pair of a batch), so an exported model sees exactly the ids torch saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class WindowedPairs:
    """Pairs to score; ``owners[i]`` is the index of the text pair ``i`` came from."""

    pairs: list[tuple[str, str]]
    owners: list[int]
    truncated: int


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

    @classmethod
    def from_file(cls, path: str, max_length: int, pad_id: int = 0) -> PairTokenizer:
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_file(path), max_length, pad_id)

    # ----------------------------------------------------------------- windows

    def windows(self, query: str, texts: Sequence[str], *, window: bool, overlap: int,
                max_windows: int) -> WindowedPairs:
        """Expand texts into (query, passage) pairs: one per text, or token windows of long ones."""
        special = self._plain.num_special_tokens_to_add(True)
        query_len = len(self._plain.encode(query, add_special_tokens=False).ids)
        budget = self.max_length - special - query_len
        encoded = self._plain.encode_batch(list(texts), add_special_tokens=False)
        window_mode = window and budget >= 16
        overlap = min(overlap, max(0, budget // 2))
        pairs: list[tuple[str, str]] = []
        owners: list[int] = []
        truncated = 0
        for i, (text, encoding) in enumerate(zip(texts, encoded, strict=True)):
            offsets = encoding.offsets
            n = len(offsets)
            if n <= max(budget, 0) or not window_mode:
                pairs.append((query, text))
                owners.append(i)
                truncated += n > max(budget, 0)
                continue
            start, count = 0, 0
            while count < max_windows:
                end = min(start + budget, n)
                pairs.append((query, text[offsets[start][0]: offsets[end - 1][1]]))
                owners.append(i)
                count += 1
                if end == n:
                    break
                start = end - overlap
            else:
                truncated += 1
        return WindowedPairs(pairs, owners, truncated)

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
