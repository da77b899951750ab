"""The settings both framework adapters expose, declared once.

Both LlamaIndex and LangChain components are pydantic models, so the adapters inherit these
fields (named like the official integrations: ``model``, ``top_n``) and get one ``Reranker``
built from them. Keeping the fields here means the two adapters cannot drift apart.

Settings are live: LlamaIndex users retune ``postprocessor.top_n = 3`` between requests. Every
assignment is validated (pydantic ``validate_assignment`` for types, then the Reranker's own
checks, so ``top_n = 0`` raises the same ConfigError as at construction and leaves the old value
in place) and rebuilds the engine, so the next call, and the events it emits, use the new value.
A call takes the engine once at its start: a concurrent assignment never changes it midway.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, field_serializer

from swaprank import Reranker
from swaprank.config import DEFAULT_MODEL, ENV_MODEL, format_chain, parse_chain
from swaprank.redaction import redact_text, redacted_chain
from swaprank.types import ConfigError, DocumentTypeError, RankedDocument, RerankResult


def _default_model() -> str:
    return os.environ.get(ENV_MODEL) or DEFAULT_MODEL


# The fields the engine is built from: assigning one rebuilds it.
ENGINE_FIELDS = frozenset({"model", "top_n", "score_threshold", "min_results", "on_error", "fuse", "api_key",
                           "trusted"})


# Names users bring from other rerankers (LlamaIndex's SentenceTransformerRerank, Cohere's API, the
# rerankers library...), mapped to this adapter's field and why: a field the adapter does not have is
# refused with a suggestion (issue 25: `topn=2` on LlamaIndex used to be dropped, returning all nodes).
_FIELD_HINTS: dict[str, tuple[str, str]] = {
    "top_k": ("top_n", "swaprank calls the number of results kept after reranking top_n (LlamaIndex's "
                       "similarity_top_k, on the retriever, is how many candidates come in)"),
    "topk": ("top_n", "the number of results kept after reranking is top_n"),
    "k": ("top_n", "the number of results kept after reranking is top_n"),
    "n": ("top_n", "the number of results kept after reranking is top_n"),
    "threshold": ("score_threshold", "the minimum normalised [0, 1] score is score_threshold"),
    "min_score": ("score_threshold", "the minimum normalised [0, 1] score is score_threshold"),
    "model_name": ("model", "the model is a swaprank config string, e.g. model='cross-encoder:<hub id or dir>'"),
    "model_id": ("model", "the model is a swaprank config string, e.g. model='cross-encoder:<hub id or dir>'"),
}


def unknown_field_error(component: str, name: str, fields: set[str]) -> ConfigError:
    """The error for a field ``component`` does not have: the likely field first, the full list after."""
    hint = _FIELD_HINTS.get(name.lower())
    if hint is not None and hint[0] in fields:
        suggestion = f"did you mean {hint[0]!r}? {hint[1]}"
    else:
        close = difflib.get_close_matches(name, sorted(fields), n=1, cutoff=0.6)
        suggestion = f"did you mean {close[0]!r}?" if close else "it is not one of its settings"
    return ConfigError(f"{component} has no field {name!r}: {suggestion} (fields: {', '.join(sorted(fields))})")


def redacted_model(model: str) -> str:
    """A config string fit for a repr or a serialized config: URL credentials masked."""
    try:
        specs = parse_chain(model)
    except Exception:  # not parseable: mask whatever looks like a URL
        return redact_text(model)
    masked = redacted_chain(specs)
    return model if masked == format_chain(specs) else masked  # nothing secret: the user's own string


class RerankSettings(BaseModel):
    model_config = ConfigDict(validate_assignment=True)

    model: str = Field(
        default_factory=_default_model,
        description="swaprank config string, e.g. 'cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2', "
        "'cohere:rerank-v3.5', or a fallback chain 'cohere:rerank-v3.5 | cross-encoder:...'.",
    )
    top_n: int | None = Field(default=5, description="How many results to keep (None: all).")
    score_threshold: float | None = Field(
        default=None, description="Drop results whose normalised [0, 1] score is below this."
    )
    min_results: int = Field(
        default=0, description="With score_threshold: keep at least this many of the best documents, so the "
        "LLM is never left without context (at most top_n)."
    )
    on_error: Literal["raise", "passthrough"] = Field(
        default="raise", description="When every model fails: raise, or keep the input order (flagged)."
    )
    fuse: Literal["rrf"] | None = Field(
        default=None, description="'rrf' fuses the retriever's order with the reranker's order."
    )
    api_key: SecretStr | dict[str, SecretStr] | None = Field(
        default=None, exclude=True, repr=False,
        description="Key for the hosted backend (a mapping by backend name for a chain of several); "
        "else read from each vendor's env var. Never serialised.",
    )

    trusted: bool = Field(
        default=True, description="False: `model` comes from a less trusted source; options that run code, read "
        "files or send a key elsewhere are refused (UntrustedOptionError).",
    )

    _reranker: Reranker = PrivateAttr()

    def __init__(self, **data: Any) -> None:
        fields = self._field_names()
        for name in data:
            if name not in fields:  # refused by both adapters alike, before pydantic sees it
                raise unknown_field_error(type(self).__name__, name, fields)
        super().__init__(**data)
        # Build (and so validate) the Reranker now: a bad config string fails at construction with
        # swaprank's ConfigError (outside pydantic validation, which would rewrap it), not at the
        # first user query.
        self._reranker = self._build()

    def _build(self) -> Reranker:
        return Reranker(
            self.model,
            top_n=self.top_n,
            score_threshold=self.score_threshold,
            min_results=self.min_results,
            on_error=self.on_error,
            fuse=self.fuse,
            api_key=self.api_key,
            trusted=self.trusted,
        )

    @classmethod
    def _field_names(cls) -> set[str]:
        """The names this component accepts, as keywords and attributes (aliases included)."""
        return set(cls.model_fields) | {f.alias for f in cls.model_fields.values() if f.alias}

    def __setattr__(self, name: str, value: Any) -> None:
        if not name.startswith("_") and name not in self._field_names() and not hasattr(type(self), name):
            raise unknown_field_error(type(self).__name__, name, self._field_names())
        if name not in ENGINE_FIELDS:
            super().__setattr__(name, value)
            return
        previous = getattr(self, name)
        super().__setattr__(name, value)  # pydantic checks (and coerces) the type
        try:
            engine = self._build()  # the engine checks the value (ConfigError, as at construction)
        except BaseException:
            super().__setattr__(name, previous)
            raise
        self._reranker = engine

    @property
    def reranker(self) -> Reranker:
        """The engine behind this adapter (for ``warmup()`` or direct calls); rebuilt when a setting changes."""
        return self._reranker

    @field_serializer("model")
    def _serialize_model(self, model: str) -> str:
        # A serialized component (LlamaIndex to_dict/to_json, model_dump) keeps no URL credentials,
        # like it keeps no api_key: a clone re-reads secrets from its own environment.
        return redacted_model(model)

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, redacted_model(value) if name == "model" and isinstance(value, str) else value

    def __getstate__(self) -> dict[Any, Any]:
        """Pickles carry the configuration, never the API key (it is re-read from env)."""
        state: dict[Any, Any] = super().__getstate__()
        fields = dict(state.get("__dict__", {}))
        fields["api_key"] = None
        state["__dict__"] = fields
        return state


PASSTHROUGH_KEY = "rerank_passthrough"
WINDOWS_KEY = "rerank_windows"
TRUNCATED_KEY = "rerank_truncated"
USAGE_KEY = "rerank_usage"
TOKENS_KEY = "total_tokens"  # where langchain-voyageai and other vendor integrations put it


def usage_metadata(result: RerankResult) -> dict[str, Any]:
    """The call's billed units, for each returned document: ``rerank_usage`` (every unit the vendor
    reported, e.g. ``{"search_units": 1}``) and ``total_tokens`` when the vendor counts tokens.
    Local models report nothing, and nothing is added."""
    if result.usage is None or not result.usage.as_dict():
        return {}
    extra: dict[str, Any] = {USAGE_KEY: result.usage.as_dict()}
    if result.usage.total_tokens is not None:
        extra[TOKENS_KEY] = result.usage.total_tokens
    return extra


def result_summary(result: RerankResult) -> dict[str, Any]:
    """What a call did, for events and run metadata: served by, usage, fallback flags, counts."""
    summary: dict[str, Any] = {"model_name": result.model_name, "returned": len(result),
                               "passthrough": result.passthrough, "windowed": result.windowed,
                               "truncated": result.truncated}
    if result.query_truncated:
        summary["query_truncated"] = True
    if result.usage is not None:
        summary["usage"] = result.usage.as_dict()
    if result.error is not None:
        summary["error"] = type(result.error).__name__
    return summary


def long_document_metadata(hit: RankedDocument) -> dict[str, Any]:
    """What a document's metadata says about its length: only when it did not fit the model.

    ``rerank_windows``: the windows it was scored in (its score is their best); ``rerank_truncated``:
    part of it was never scored (``long_docs=truncate``, or more windows than ``max_windows``).
    """
    extra: dict[str, Any] = {}
    if hit.windows > 1:
        extra[WINDOWS_KEY] = hit.windows
    if hit.truncated:
        extra[TRUNCATED_KEY] = True
    return extra


def check_items(items: Any, expected: type, method: str, what: str, fixes: Mapping[type, str]) -> None:
    """Refuse a call whose items are not ``expected`` (a framework's documents or nodes) with a
    ``DocumentTypeError`` naming the position, the type given and how to wrap it (``fixes`` by type),
    before a bare ``AttributeError`` deep in the translation does."""
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise DocumentTypeError(f"{method} expects a list of {what}, got a {type(items).__name__}")
    for position, item in enumerate(items):
        if isinstance(item, expected):
            continue
        fix = next((text for kind, text in fixes.items() if isinstance(item, kind)),
                   f"pass {what}")
        raise DocumentTypeError(f"{method} expects {what}; item {position} is a {type(item).__name__}: {fix}")
