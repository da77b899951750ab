"""The engine: one reranking policy over any backend (docs/design.md, "Layers").

It imports only the backend contract (``swaprank.backends.contract``, ``swaprank.backends.registry``)
and the shared value types; backends never import it. The public entry point is ``swaprank.Reranker``.
"""

from swaprank._engine.reranker import Reranker
from swaprank._engine.validation import normalize_documents

__all__ = ["Reranker", "normalize_documents"]
