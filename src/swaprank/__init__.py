"""swaprank: one reranking engine behind LlamaIndex and LangChain; swap the model with a string.

The framework adapters live in ``swaprank.llama_index`` and ``swaprank.langchain`` so that
importing the core never imports either framework.
"""

from swaprank.config import BackendSpec, Option, format_chain, format_spec, parse_chain, parse_spec
from swaprank.registry import available_backends, register_backend
from swaprank.reranker import Reranker
from swaprank.types import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    BadRequestError,
    BadResponseError,
    ConfigError,
    Document,
    InvalidInputError,
    MissingDependencyError,
    RankedDocument,
    RateLimitError,
    RerankResult,
    SwapRankError,
    Usage,
)

__version__ = "0.1.0"

__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendSpec",
    "BackendUnavailableError",
    "BadRequestError",
    "BadResponseError",
    "ConfigError",
    "Document",
    "InvalidInputError",
    "MissingDependencyError",
    "Option",
    "RankedDocument",
    "RateLimitError",
    "RerankResult",
    "Reranker",
    "SwapRankError",
    "Usage",
    "available_backends",
    "format_chain",
    "format_spec",
    "parse_chain",
    "parse_spec",
    "register_backend",
]
