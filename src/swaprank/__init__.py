"""swaprank: one reranking engine behind LlamaIndex and LangChain; swap the model with a string.

The framework adapters live in ``swaprank.llama_index`` and ``swaprank.langchain`` so that
importing the core never imports either framework.
"""

from swaprank._engine.reranker import Reranker
from swaprank._version import __version__
from swaprank.backends.registry import Registry, available_backends, register_backend
from swaprank.config import BackendSpec, Option, format_chain, format_spec, parse_chain, parse_spec
from swaprank.types import (
    AuthenticationError,
    BackendError,
    BackendUnavailableError,
    BadRequestError,
    BadResponseError,
    ClosedError,
    ConfigError,
    Document,
    DocumentTypeError,
    InvalidInputError,
    MissingDependencyError,
    RankedDocument,
    RateLimitError,
    RequestTooLargeError,
    RerankResult,
    SwapRankError,
    UnapprovedHostError,
    UntrustedOptionError,
    Usage,
)

__all__ = [
    "AuthenticationError",
    "BackendError",
    "BackendSpec",
    "BackendUnavailableError",
    "BadRequestError",
    "BadResponseError",
    "ClosedError",
    "ConfigError",
    "Document",
    "DocumentTypeError",
    "InvalidInputError",
    "MissingDependencyError",
    "Option",
    "RankedDocument",
    "RateLimitError",
    "Registry",
    "RequestTooLargeError",
    "RerankResult",
    "Reranker",
    "SwapRankError",
    "UnapprovedHostError",
    "UntrustedOptionError",
    "Usage",
    "__version__",
    "available_backends",
    "format_chain",
    "format_spec",
    "parse_chain",
    "parse_spec",
    "register_backend",
]
