"""Whether a string is text a model can read, checked once where input enters.

Python strings may hold lone UTF-16 surrogates (``"\\ud800"``): ``json.loads`` produces them from a
valid JSON escape, and a file decoded with ``errors="surrogateescape"`` carries them. No tokenizer
accepts them (the Rust tokenizers raise ``TypeError``), and inside a batch that one error would fail
every request scored with it. The engine and ``swaprank serve`` both reject such text up front, with
the position named, so it is the caller's 400 and never a backend outage.
"""

from __future__ import annotations


def unreadable(text: str) -> str | None:
    """Why ``text`` cannot be tokenized, or None when it can (ASCII, the common case, costs one scan)."""
    if text.isascii():
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"contains a lone surrogate {text[exc.start]!r} at character {exc.start}, which is not valid "
                "Unicode text (decode the source with errors='replace', or drop the character)")
    return None
