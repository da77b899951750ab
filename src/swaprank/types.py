"""Value types and the error hierarchy shared by the engine, the backends and the adapters."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, SupportsIndex, overload


@dataclass(frozen=True, slots=True)
class Document:
    """One candidate passed to the reranker.

    Plain strings are accepted everywhere; this record exists so callers can carry an id and
    metadata through the reranker and get them back on the matching ``RankedDocument``.
    """

    text: str
    id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RankedDocument:
    """A reranked candidate.

    ``index`` points into the caller's input list, so callers can map results back to their own
    objects without relying on text equality. ``score`` is on [0, 1] for every backend, which is
    what makes one ``score_threshold`` mean the same thing whichever model is configured;
    ``raw_score`` keeps the backend's native value (logit, probability...) for debugging.
    ``fused_score`` is set only when the Reranker fuses the first-stage order with the model's
    order (``fuse="rrf"``); the output is then sorted by it. ``windows`` is how many windows the
    document was scored in (1: it fit the model), ``truncated`` whether part of it went unscored.
    """

    index: int
    score: float
    raw_score: float
    text: str
    id: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    fused_score: float | None = None
    windows: int = 1
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Usage:
    """What the vendor billed for a call, when it says so (summed over split requests), in the
    vendor's own unit: Cohere's ``search_units``, Pinecone's ``rerank_units``, or ``total_tokens``
    (Voyage, Jina, TEI, vLLM, Infinity, Mixedbread, ZeroEntropy...)."""

    search_units: int | None = None
    total_tokens: int | None = None
    rerank_units: int | None = None

    def __add__(self, other: Usage) -> Usage:
        def _sum(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return Usage(
            search_units=_sum(self.search_units, other.search_units),
            total_tokens=_sum(self.total_tokens, other.total_tokens),
            rerank_units=_sum(self.rerank_units, other.rerank_units),
        )

    def as_dict(self) -> dict[str, int]:
        """The units the vendor reported, and only those (``{"total_tokens": 812}``)."""
        units = (("search_units", self.search_units), ("total_tokens", self.total_tokens),
                 ("rerank_units", self.rerank_units))
        return {name: value for name, value in units if value is not None}

    @staticmethod
    def total(parts: Iterable[Usage | None]) -> Usage | None:
        result: Usage | None = None
        for part in parts:
            if part is not None:
                result = part if result is None else result + part
        return result


class RerankResult(list[RankedDocument]):
    """The reranked documents, plus how they were produced.

    It *is* a list (the contract is ``rerank(...) -> list[RankedDocument]``, and frameworks, JSON
    encoders and user code take it as one); the attributes tell which backend of a fallback chain
    served the call (``model``: its config string with any credentials masked; ``model_name``:
    ``backend:model`` alone, safe to copy into documents and traces), what the vendors billed
    (summed over split requests and failed fallback attempts), how many input documents did not fit
    the model's window and were scored in windows (``windowed``) or cut (``truncated``; both counted
    before ``top_n``), whether the query itself was longer than the model reads and was cut
    (``query_truncated``), and whether the call fell back to the input order.

    The attributes survive the list operations users do: slicing, ``copy()``, ``copy.copy``,
    ``+`` (either side: the result keeps the RerankResult operand's attributes), ``*``, pickling
    and ``result.sorted(key=...)``. The built-in ``sorted(result)`` returns a plain ``list`` (Python
    builds it, not us): use ``result.sorted(...)`` to keep them. Kept a list subclass rather than a
    new sequence type so ``isinstance(result, list)``, ``json.dumps`` and ``result == [...]`` keep working.
    """

    model: str
    model_name: str
    usage: Usage | None
    truncated: int
    windowed: int
    query_truncated: bool
    passthrough: bool
    error: BaseException | None

    def __init__(
        self,
        documents: Iterable[RankedDocument] = (),
        *,
        model: str = "",
        model_name: str = "",
        usage: Usage | None = None,
        truncated: int = 0,
        windowed: int = 0,
        query_truncated: bool = False,
        passthrough: bool = False,
        error: BaseException | None = None,
    ) -> None:
        super().__init__(documents)
        self.model = model
        self.model_name = model_name
        self.usage = usage
        self.truncated = truncated
        self.windowed = windowed
        self.query_truncated = query_truncated
        self.passthrough = passthrough
        self.error = error

    def _like(self, documents: Iterable[RankedDocument]) -> RerankResult:
        """``documents`` with this result's attributes."""
        return RerankResult(documents, model=self.model, model_name=self.model_name, usage=self.usage,
                            truncated=self.truncated, windowed=self.windowed, query_truncated=self.query_truncated,
                            passthrough=self.passthrough, error=self.error)

    @overload
    def __getitem__(self, index: SupportsIndex) -> RankedDocument: ...

    @overload
    def __getitem__(self, index: slice) -> RerankResult: ...

    def __getitem__(self, index: SupportsIndex | slice) -> RankedDocument | RerankResult:
        if isinstance(index, slice):
            return self._like(list.__getitem__(self, index))
        return list.__getitem__(self, index)

    def copy(self) -> RerankResult:
        return self._like(self)

    def __add__(self, other: Iterable[RankedDocument]) -> RerankResult:  # type: ignore[override]
        return self._like([*self, *other])

    def __radd__(self, other: Iterable[RankedDocument]) -> RerankResult:
        return self._like([*other, *self])

    def __mul__(self, times: SupportsIndex) -> RerankResult:
        return self._like(list.__mul__(self, times))

    __rmul__ = __mul__

    def sorted(self, *, key: Callable[[RankedDocument], Any] | None = None, reverse: bool = False) -> RerankResult:
        """A re-sorted copy that keeps the attributes (the built-in ``sorted`` returns a plain list)."""
        return self._like(sorted(self, key=key, reverse=reverse))  # type: ignore[type-var, arg-type]

    def __repr__(self) -> str:
        flags = ", passthrough=True" if self.passthrough else ""
        return f"RerankResult(model={self.model!r}, n={len(self)}{flags}, {list.__repr__(self)})"


# --------------------------------------------------------------------------------------- errors


class SwapRankError(Exception):
    """Base class of every error swaprank raises on purpose."""


class ConfigError(SwapRankError, ValueError):
    """A config string, option or constructor argument is invalid."""


class UntrustedOptionError(ConfigError):
    """A config string parsed with ``trusted=False`` sets something that can run code, read local
    files or send a credential elsewhere (``option`` names it; docs/design.md, "Security")."""

    def __init__(self, message: str, *, option: str = "", backend: str = "") -> None:
        super().__init__(message)
        self.option = option
        self.backend = backend


class UnapprovedHostError(ConfigError):
    """A key from the environment would go to a host nobody approved (``host`` names it): the
    vendor's own host, loopback and ``SWAPRANK_ALLOWED_HOSTS`` are approved, or pass ``api_key=``."""

    def __init__(self, message: str, *, host: str = "", backend: str = "") -> None:
        super().__init__(message)
        self.host = host
        self.backend = backend


class InvalidInputError(SwapRankError, ValueError):
    """The query or a document handed to ``rerank`` is unusable (the message names which)."""


class RequestTooLargeError(InvalidInputError):
    """One query's documents would cost the model more than the Reranker's ``max_model_tokens``
    (``needed`` and ``limit`` are token counts over every pair and window): send fewer or shorter
    documents, or raise the limit."""

    def __init__(self, message: str, *, needed: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.needed = needed
        self.limit = limit


class DocumentTypeError(InvalidInputError, TypeError):
    """An adapter was handed objects of the wrong type (strings where its framework's documents or
    nodes belong); the message names the type expected and how to wrap what was given. Both an
    ``InvalidInputError`` and a ``TypeError``."""


class MissingDependencyError(SwapRankError, ModuleNotFoundError):
    """A backend, adapter or command needs a package that is not installed: the message names the pip
    extra (``pip install "swaprank[langchain]"``), ``name`` the missing module. A ``ModuleNotFoundError``,
    so ``except ImportError`` still catches it."""


class BackendError(SwapRankError):
    """A backend failed after its retries.

    Carries enough to debug a production incident (vendor, HTTP status, the vendor's request id,
    how many attempts were made) and never the API key. ``usage`` is what the vendor billed before
    the failure (the parts of a split call that did succeed), so a fallback's cost is not lost.
    """

    usage: Usage | None = None

    def __init__(
        self,
        message: str,
        *,
        vendor: str = "",
        status: int | None = None,
        request_id: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.vendor = vendor
        self.status = status
        self.request_id = request_id
        self.attempts = attempts

    def __str__(self) -> str:
        details = [f"vendor={self.vendor}"] if self.vendor else []
        if self.status is not None:
            details.append(f"status={self.status}")
        if self.request_id:
            details.append(f"request_id={self.request_id}")
        details.append(f"attempts={self.attempts}")
        return f"{self.message} ({', '.join(details)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructor arguments need help to survive pickling (multiprocessing, Ray).
        return (
            _rebuild_backend_error,
            (type(self), self.message, self.vendor, self.status, self.request_id, self.attempts, self.usage),
        )


def _rebuild_backend_error(
    cls: type[BackendError],
    message: str,
    vendor: str,
    status: int | None,
    request_id: str | None,
    attempts: int,
    usage: Usage | None = None,
) -> BackendError:
    error = cls(message, vendor=vendor, status=status, request_id=request_id, attempts=attempts)
    error.usage = usage
    return error


class AuthenticationError(BackendError):
    """The vendor rejected the credentials (401/403). Not retried."""


class RateLimitError(BackendError):
    """The vendor kept answering 429 until the retry budget ran out."""


class BackendUnavailableError(BackendError):
    """5xx, timeouts or connection failures outlasted the retries, or the model failed to load."""


class BadResponseError(BackendError):
    """The backend answered, but not with a usable ranking (malformed, wrong count, bad index)."""


class BadRequestError(BackendError):
    """The vendor rejected the request itself (4xx other than auth and rate limits). Not retried."""


class ClosedError(SwapRankError, RuntimeError):
    """The Reranker (or backend) was closed; build a new one."""
