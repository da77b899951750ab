"""``JsonRerankBackend``: a rerank endpoint spoken as plain JSON over httpx (Jina, TEI, vLLM, NIM...)."""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from swaprank.backends.hosted.answers import Part, Ranking, request_id_from
from swaprank.backends.hosted.base import HostedBackend
from swaprank.backends.hosted.clients import JsonHTTP
from swaprank.specs import BackendSpec


class JsonRerankBackend(HostedBackend):
    """A rerank endpoint spoken as plain JSON over httpx: subclasses say where, what and how to read.

    Bearer auth is sent only when a key is known, so self-hosted servers work without one. The
    answer is read as ``ranking`` says unless the subclass overrides ``_read``.
    """

    url: str  # the endpoint; set by the subclass's __init__
    ranking: ClassVar[Ranking] = Ranking()

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        self._http = self.own(JsonHTTP(self._auth))

    def _auth(self) -> dict[str, str]:
        key = self.secret()
        return {"Authorization": f"Bearer {key}"} if key else {}

    def _body(self, query: str, texts: list[str]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _read(self, data: Any, headers: httpx.Headers, count: int) -> Part:
        return self.ranking.read(data, count, vendor=self.vendor, request_id=request_id_from(headers))

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:
        return self._read(*self._http.post(self.url, self._body(query, texts), timeout), len(texts))

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:
        return self._read(*await self._http.apost(self.url, self._body(query, texts), timeout), len(texts))
