"""The wire formats the service speaks, as its clients send and parse them.

Cohere v2 ``POST /v2/rerank`` (Cohere's API reference and the ``cohere`` SDK's ``ClientV2.rerank``):
request ``{model, query, documents: [str], top_n?, max_tokens_per_doc?, return_documents?}``, response
``{id, results: [{index, relevance_score, document?: {text}}], meta: {api_version, billed_units,
warnings?}}``. ``document`` is present only with ``return_documents: true`` (v2 dropped it; v1-style
clients and proxies such as LiteLLM still send the flag).

Jina / vLLM ``POST /v1/rerank`` (Jina's API, vLLM's ``RerankRequest``/``RerankResponse``): request
``{model?, query, documents: [str | {text}], top_n?, return_documents?}``, response ``{id, model,
usage: {total_tokens, prompt_tokens}, results: [{index, relevance_score, document?: {text}}]}``;
``return_documents`` defaults to true as on Jina (vLLM always returns documents). ``top_n`` of 0 means
all (vLLM's default). ``/rerank`` is the same route (vLLM's unversioned path). ``prompt_tokens`` (equal
to ``total_tokens``, as vLLM and Infinity report it) is there because Infinity-style clients
(``infinity_client``, LangChain's ``InfinityRerank``, LiteLLM) read it.

Infinity ``POST /infinity/rerank`` (Infinity's clients take ``http://host:port/infinity`` as their base
URL and append Infinity's own paths): Infinity's ``RerankInput`` / ``ReRankResult``, request
``{model?, query, documents, top_n?, return_documents?, raw_scores?}``, response ``{object: "rerank",
results: [{relevance_score, index, document: str | null}], model, usage: {prompt_tokens,
total_tokens}, id, created}``. It differs from vLLM's on the one point clients parse: ``document`` is
the text itself (LiteLLM's ``infinity/`` provider wraps it as ``{"text": document}``), and it is
returned only with ``return_documents: true`` (Infinity's default is false). A ``model`` of
``default/not-specified`` (Infinity's "no model" value, which its clients send when none is set)
means the service's first served name.

``raw_scores: true`` (Infinity's field) is honoured on every route, Cohere's included, rather than
silently ignored on the routes whose vendor has no such field: ``relevance_score`` is then the
backend's native score (``RankedDocument.raw_score``: a cross-encoder's logit) instead of swaprank's
[0, 1] score. The order does not change. A result with no native score (the input-order passthrough
of ``on_error="passthrough"``) keeps its [0, 1] score, as JSON has no NaN.

Scores are otherwise swaprank's [0, 1] scores; results are sorted by score (ties by input order) and
``index`` points into the request's ``documents``. Unknown fields are ignored (clients add their own,
e.g. Cohere's ``priority``); fields swaprank knows are type-checked strictly, so ``"top_n": "3"`` is
a 422 naming ``top_n`` rather than a silently coerced value.
"""

from __future__ import annotations

import math
import time
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, field_validator

from swaprank.types import RankedDocument, RerankResult


class TextDocument(BaseModel):
    """A document as an object (Jina, Cohere v1): only ``text`` is read."""

    model_config = ConfigDict(extra="ignore")
    text: StrictStr


class RerankRequest(BaseModel):
    """Fields both formats share."""

    model_config = ConfigDict(extra="ignore")
    model: StrictStr | None = None
    query: StrictStr
    documents: list[StrictStr | TextDocument]
    top_n: StrictInt | None = Field(default=None, ge=0)
    return_documents: StrictBool | None = None
    raw_scores: StrictBool | None = None

    @field_validator("query")
    @classmethod
    def _query_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("documents")
    @classmethod
    def _documents_not_empty(cls, value: list[Any]) -> list[Any]:
        if not value:
            raise ValueError("must not be empty; send at least one document")
        return value

    def texts(self) -> list[str]:
        return [d if isinstance(d, str) else d.text for d in self.documents]

    def wanted(self) -> int | None:
        """The request's ``top_n`` for the Reranker: None (the server's default) when absent or 0."""
        return self.top_n or None


class CohereRerankRequest(RerankRequest):
    max_tokens_per_doc: StrictInt | None = Field(default=None, ge=1)


class JinaRerankRequest(RerankRequest):
    pass


INFINITY_NO_MODEL = "default/not-specified"


class InfinityRerankRequest(RerankRequest):
    """Infinity's ``RerankInput``: its clients send ``model: "default/not-specified"`` when the user set
    none, which Infinity (one model served) answers with its model: read here as no model."""

    @field_validator("model")
    @classmethod
    def _no_model(cls, value: str | None) -> str | None:
        return None if value == INFINITY_NO_MODEL else value


def describe(error: ValidationError) -> str:
    """A pydantic error as one line naming each bad field, e.g. ``documents[3]: expected a string or
    {"text": string}`` or ``top_n: Input should be a valid integer``."""
    found: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        where = ""
        for piece in item["loc"]:
            if isinstance(piece, int):
                where += f"[{piece}]"
            elif piece in ("str", "TextDocument") or str(piece).startswith("function-"):
                continue  # which member of a union (or validator) failed: not a field
            else:
                where += f".{piece}" if where else str(piece)
        found.setdefault(where or "body", []).append(str(item["msg"]).removeprefix("Value error, "))
    parts = []
    for where, messages in list(found.items())[:5]:
        if len(messages) > 1 and where.startswith("documents["):
            parts.append(f'{where}: expected a string or {{"text": string}}')
        else:
            parts.append(f"{where}: {messages[0]}")
    more = len(found) - len(parts)
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def _score(hit: RankedDocument, raw: bool) -> float:
    """The score a result carries: swaprank's [0, 1] score, or with ``raw_scores`` the native one when
    there is one (a passthrough result's is NaN, which JSON cannot carry)."""
    return hit.raw_score if raw and math.isfinite(hit.raw_score) else hit.score


def _results(request: RerankRequest, result: RerankResult, texts: list[str],
             with_documents: bool) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for hit in result:
        item: dict[str, Any] = {"index": hit.index, "relevance_score": _score(hit, bool(request.raw_scores))}
        if with_documents:
            item["document"] = {"text": texts[hit.index]}
        out.append(item)
    return out


def _token_usage(result: RerankResult) -> dict[str, int]:
    """``usage`` as vLLM and Infinity report it: the backend's token count when it reports one (a
    hosted backend behind the service), else 0: a local model bills nothing, and counting tokens
    again only to report them would cost every request a second tokenization."""
    usage = result.usage
    total = usage.total_tokens if usage is not None and usage.total_tokens else 0
    return {"total_tokens": total, "prompt_tokens": total}


def cohere_response(request: RerankRequest, result: RerankResult, texts: list[str]) -> dict[str, Any]:
    """Cohere v2's response. ``billed_units.search_units`` follows Cohere's rule (one per query per 100
    documents) unless the backend reported its own, so Cohere-shaped cost dashboards keep working."""
    usage = result.usage
    units = usage.search_units if usage is not None and usage.search_units else max(1, math.ceil(len(texts) / 100))
    meta: dict[str, Any] = {"api_version": {"version": "2"}, "billed_units": {"search_units": units}}
    warnings = []
    if getattr(request, "max_tokens_per_doc", None) is not None:
        warnings.append("max_tokens_per_doc is not applied: documents longer than the model's window are "
                        "scored by overlapping windows (swaprank's long-document policy), not cut")
    if result.query_truncated:
        warnings.append("the query was longer than half of what the model reads and was cut to that")
    if warnings:
        meta["warnings"] = warnings
    return {"id": new_id(), "results": _results(request, result, texts, bool(request.return_documents)), "meta": meta}


def jina_response(request: RerankRequest, result: RerankResult, texts: list[str], model: str) -> dict[str, Any]:
    """Jina's / vLLM's response (``usage`` as in :func:`_token_usage`)."""
    with_documents = request.return_documents is None or request.return_documents
    return {"id": new_id("rerank-"), "model": model, "usage": _token_usage(result),
            "results": _results(request, result, texts, with_documents)}


def infinity_response(request: RerankRequest, result: RerankResult, texts: list[str], model: str) -> dict[str, Any]:
    """Infinity's ``ReRankResult``: ``document`` is the text itself, or null unless ``return_documents``."""
    raw = bool(request.raw_scores)
    results = [{"relevance_score": _score(hit, raw), "index": hit.index,
                "document": texts[hit.index] if request.return_documents else None} for hit in result]
    return {"object": "rerank", "results": results, "model": model, "usage": _token_usage(result),
            "id": new_id("rerank-"), "created": int(time.time())}


def new_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4()}"
