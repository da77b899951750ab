"""What the Stainless-generated vendor SDKs (``zeroentropy``, ``mixedbread``) have in common.

Those SDKs share one shape: a sync and an async client taking ``api_key``, ``base_url``,
``max_retries`` and an ``http_client``; a per-call ``timeout``; ``with_raw_response`` to get the
``httpx.Response`` unparsed; ``APIStatusError`` (``status_code``, ``response``, ``body``),
``APITimeoutError`` and ``APIConnectionError``. So a vendor subclass only says which method to
call with which arguments and how to read the answer. We read the raw JSON ourselves: the SDKs'
lenient pydantic models would coerce an index of ``1.5`` or a score of ``"0.9"`` and mis-rank.
"""

from __future__ import annotations

from typing import Any, ClassVar

import httpx
from pydantic import SecretStr

from swaprank.backends.hosted.answers import Part, Ranking, request_id_from
from swaprank.backends.hosted.base import HostedBackend
from swaprank.backends.hosted.clients import SdkClients
from swaprank.backends.hosted.errors import MESSAGE_LIMIT, HTTPStatusFailure
from swaprank.backends.hosted.hosts import host_of
from swaprank.backends.hosted.sdk_errors import ResponseStatus
from swaprank.backends.optional import require
from swaprank.specs import BackendSpec


class StainlessBackend(HostedBackend):
    """Base of the backends spoken through a Stainless-generated SDK.

    Subclasses set ``sdk_module`` / ``client_classes`` and ``default_base_url``, implement
    ``_call`` (which raw-response method, which arguments) and say how the answer reads
    (``ranking``, or an override of ``_read``). The pip extra is the vendor's name.
    """

    sdk_module: ClassVar[str]
    client_classes: ClassVar[tuple[str, str]]  # (sync, async) class names in sdk_module
    default_base_url: ClassVar[str]
    ranking: ClassVar[Ranking] = Ranking()

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=api_key)
        self._sdk = require(self.sdk_module, self.vendor)
        self.status_errors = (ResponseStatus(self._sdk.APIStatusError),)
        self.timeout_errors = (self._sdk.APITimeoutError,)
        self.connection_errors = (self._sdk.APIConnectionError,)
        sync_name, async_name = self.client_classes
        self._clients = self.own(SdkClients(self._build, getattr(self._sdk, sync_name), getattr(self._sdk, async_name),
                                   follow_redirects=True))

    def vendor_hosts(self) -> tuple[str, ...]:
        return (*super().vendor_hosts(), *(h for h in (host_of(self.default_base_url),) if h))

    def base_url(self) -> str:
        """The URL given to the SDK; always explicit, so the SDK's ``*_BASE_URL`` env var never redirects keys."""
        return str(self.option("base_url") or self.default_base_url).rstrip("/")

    def _build(self, client_class: Any, http: httpx.Client | httpx.AsyncClient) -> Any:
        return client_class(
            api_key=self.sdk_key(),  # the SDKs refuse to start without one
            base_url=self.base_url(),
            max_retries=0,  # retries are ours (tenacity), never multiplied by the SDK's
            timeout=self.option("timeout"),
            http_client=http,  # ours, to share one TLS context between event loops
        )

    def _call(self, client: Any, query: str, texts: list[str], timeout: float) -> Any:  # pragma: no cover
        raise NotImplementedError

    def _read(self, data: Any, headers: httpx.Headers, count: int) -> Part:
        return self.ranking.read(data, count, vendor=self.vendor, request_id=request_id_from(headers))

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:
        return self._parse(self._call(self._clients.sync, query, texts, timeout), len(texts))

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:
        return self._parse(await self._call(self._clients.for_loop(), query, texts, timeout), len(texts))

    def _parse(self, raw: Any, count: int) -> Part:
        response: httpx.Response = raw.http_response
        try:
            data = response.json()
        except ValueError:
            raise HTTPStatusFailure(response.status_code, response.headers, response.text[:MESSAGE_LIMIT]) from None
        return self._read(data, response.headers, count)
