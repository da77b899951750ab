"""What one ``swaprank serve`` process serves, and how: one frozen value shared by the CLI, the app and Ray.

Frozen so the app, the batcher and a Ray Serve replica (which receives a pickled copy) can never see
two versions of it. It holds no secret: the bearer token is read from the environment variable named
by ``api_key_env`` when the app is built, so it never appears in argv, a repr or a pickled deployment.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, Literal

from swaprank.config import parse_chain
from swaprank.redaction import BackendSpec, spec_label
from swaprank.types import ConfigError

DEFAULT_API_KEY_ENV = "SWAPRANK_SERVE_API_KEY"


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``create_app`` needs; every field has the CLI flag of the same name (``trusted``:
    ``--untrusted-model`` sets it False, for a model string a wrapper did not write).

    Limits: ``max_documents`` per request (a larger request gets 413 ``too_many_documents``),
    ``max_body_bytes`` per request body (413 ``body_too_large``, counted on the streamed body, so a
    missing or lying Content-Length does not get around it), ``max_request_tokens`` of model work per
    request (every pair and window, counted with the model's tokenizer before scoring: 413
    ``request_too_large`` with the number; passed to the Reranker as ``max_model_tokens``; 0: none).
    ``request_timeout`` seconds per request from its arrival, queueing included (504 ``request_timeout``;
    the model stops at its next chunk; 0, the default: none, since a client that gives up hangs up, which
    stops its work as well). Connections: a client gets ``header_timeout`` seconds to send its
    headers and ``body_timeout`` for its body (408), at most ``max_concurrency`` requests are served
    at once (503 ``overloaded`` with ``Retry-After`` past it, except ``/health``, ``/ready`` and
    ``/metrics``) and at most ``max_connections`` connections are held open (more are answered 503 and
    closed at once, so idle sockets cannot exhaust file descriptors).

    Batching (local models only): requests are coalesced until ``max_batch_pairs`` (query, document)
    pairs are queued or ``max_wait_ms`` passed since the first queued one; ``batching=False`` serves
    each request on its own as it arrives.

    Reranker policy (``top_n``, ``score_threshold``, ``min_results``, ``fuse``, ``on_error``,
    ``cache_size``, ``trusted``) is passed to :class:`swaprank.Reranker` unchanged; a request's ``top_n``
    wins over the server's ``top_n``.
    """

    model: str
    host: str = "127.0.0.1"
    port: int = 8080
    served_model_names: tuple[str, ...] = ()
    accept_any_model: bool = False
    max_documents: int = 1000
    max_body_bytes: int = 8 * 1024 * 1024
    max_request_tokens: int = 100_000
    request_timeout: float = 0.0
    header_timeout: float = 10.0
    body_timeout: float = 30.0
    max_concurrency: int = 64
    max_connections: int = 4096
    batching: bool = True
    max_batch_pairs: int = 512
    max_wait_ms: float = 10.0
    api_key_env: str = DEFAULT_API_KEY_ENV
    graceful_timeout: float = 30.0
    drain_seconds: float = 0.0
    warmup: bool = True
    top_n: int | None = None
    score_threshold: float | None = None
    min_results: int = 0
    fuse: Literal["rrf"] | None = None
    on_error: Literal["raise", "passthrough"] = "raise"
    cache_size: int = 0
    # False: ``model`` comes from a less trusted source (``--untrusted-model``); risky options are refused.
    trusted: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.trusted, bool):
            raise ConfigError(f"trusted must be True or False, got {self.trusted!r}")
        parse_chain(self.model, trusted=self.trusted)  # a bad spec fails here, before a port is bound
        for name in ("max_documents", "max_body_bytes", "max_batch_pairs", "max_concurrency", "max_connections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        for name in ("max_wait_ms", "graceful_timeout", "drain_seconds", "request_timeout", "header_timeout",
                     "body_timeout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError(f"{name} must be a non-negative number, got {value!r}")
        if isinstance(self.max_request_tokens, bool) or not isinstance(self.max_request_tokens, int) \
                or self.max_request_tokens < 0:
            raise ConfigError(f"max_request_tokens must be a non-negative int (0: no limit), got "
                              f"{self.max_request_tokens!r}")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be in 0..65535, got {self.port}")
        if not self.api_key_env or not self.api_key_env.replace("_", "").isalnum():
            raise ConfigError(f"api_key_env must be an environment variable name, got {self.api_key_env!r}")
        if any(not name.strip() for name in self.served_model_names):
            raise ConfigError("served model names must not be empty")

    @property
    def model_names(self) -> tuple[str, ...]:
        """The names a request's ``model`` may use, and the only names clients ever see (404 messages,
        ``/v1/models``, a response's ``model``, ``/ready``): the configured ones, else
        :func:`default_served_name` of the first spec."""
        return self.served_model_names or (default_served_name(parse_chain(self.model)[0]),)

    def reranker_options(self) -> dict[str, Any]:
        """The keyword arguments of :class:`swaprank.Reranker` this service applies to every request."""
        return {"top_n": self.top_n, "score_threshold": self.score_threshold, "min_results": self.min_results,
                "fuse": self.fuse, "on_error": self.on_error, "cache_size": self.cache_size, "trusted": self.trusted,
                "max_model_tokens": self.max_request_tokens or None}


_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def _is_local_path(model: str) -> bool:
    """Whether a spec's model is a file system path rather than a hub or vendor id: absolute,
    relative (``./``, ``../``), home (``~``), Windows, or an existing file or directory."""
    if model.startswith(("/", "./", "../", "~", "\\")) or "\\" in model or _DRIVE.match(model):
        return True
    return os.path.exists(model)


def default_served_name(spec: BackendSpec) -> str:
    """``backend:model`` (the spec's label: never its options or a URL, which may carry hosts or
    credentials), with a local path cut to its last component: ``cross-encoder:/srv/models/minilm``
    is served as ``cross-encoder:minilm``, so no client learns the server's directory layout. Hub ids
    (``cross-encoder:BAAI/bge-reranker-base``) are kept whole."""
    label = spec_label(spec)
    if label == spec.backend or not _is_local_path(spec.model):
        return label
    last = re.split(r"[\\/]", spec.model.rstrip("/\\"))[-1]
    return f"{spec.backend}:{last}" if last and last != "~" else spec.backend
