"""``AwsBackend``: a rerank API on an AWS service, called through boto3.

What any AWS service needs and the vendor file should not repeat: a boto3 session of its own on
one shared botocore data loader, the region (option, ``AWS_REGION``, the profile) and its partition,
credentials from the standard AWS chain (never ``api_key``), clients with botocore's retries off
(one attempt: retries, timeouts and the deadline are swaprank's) and timeouts fixed per client, the
raw JSON of an answer kept for our own validation, ``ClientError`` read as an HTTP status, and the
secret key and session token kept out of reprs, errors and log records (botocore's DEBUG logs print
signed headers). boto3 has no async client: ``_asend`` runs ``_send`` on the backend's thread pool.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
import logging
import os
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from pydantic import SecretStr

from swaprank.backends.hosted.answers import Part, request_id_from
from swaprank.backends.hosted.base import HostedBackend
from swaprank.backends.hosted.errors import MESSAGE_LIMIT, HTTPStatusFailure
from swaprank.backends.hosted.logs import redact_sdk_logs, watch_secrets
from swaprank.backends.hosted.options import SENDS_CREDENTIALS
from swaprank.backends.optional import require
from swaprank.redaction import MASK, redact_text
from swaprank.specs import BackendSpec, Option
from swaprank.types import AuthenticationError, BadRequestError, BadResponseError, ConfigError

# Signed headers as botocore's DEBUG logs print them: dict reprs and canonical requests.
_SESSION_TOKEN = re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s,}]+")
# Where the raw JSON of an answer is kept, to be validated by us rather than botocore's parser.
_RAW = "_swaprank_raw"
# One botocore data loader for every AWS backend: service models and endpoint rules are parsed
# once per process, so a new backend's client costs ~3 ms instead of ~50 ms.
_LOADER: Any = None
_SESSIONS_LOCK = threading.Lock()


def aws_options() -> dict[str, Option]:
    """The options of an AWS backend, merged after ``network_options()`` (``base_url`` replaced in place)."""
    return {
        "base_url": Option(str, None, "endpoint URL instead of the region's (a VPC interface endpoint, a proxy)",
                           **SENDS_CREDENTIALS),
        "region": Option(str, None, "AWS region; default: AWS_REGION, AWS_DEFAULT_REGION or the profile's region"),
        "profile": Option(str, None, "named profile of the AWS config/credentials files (default: the chain's)",
                          risk="sends-credentials", risk_reason="chooses which AWS credentials sign the requests"),
    }


@dataclass(frozen=True)
class ClientErrorStatus:
    """botocore's ``ClientError`` as the HTTP answer it was; ``statuses`` gives the status of the
    service's modelled errors (by code) for an error that carries none."""

    error: type[BaseException]
    statuses: Mapping[str, int]

    def failure(self, exc: BaseException) -> HTTPStatusFailure | None:
        if not isinstance(exc, self.error):
            return None
        response = getattr(exc, "response", None) or {}
        error = response.get("Error") or {}
        metadata = response.get("ResponseMetadata") or {}
        code = str(error.get("Code") or "")
        status = metadata.get("HTTPStatusCode")
        if not isinstance(status, int):
            status = self.statuses.get(code, 500)
        message = str(error.get("Message") or "")
        body = {"message": f"{code}: {message}" if code and message else code or message}
        return HTTPStatusFailure(status, metadata.get("HTTPHeaders"), body)


class AwsBackend(HostedBackend):
    """Base of the backends on an AWS service.

    A subclass sets ``service`` and ``operation`` (the botocore names), ``error_statuses``, calls
    ``_connect()`` at the end of its ``__init__`` and, in ``_send``, gets its client from
    ``_client(timeout)`` and the answer's JSON from ``_raw(response)``.
    """

    uses_api_key: ClassVar[bool] = False  # AWS credentials, never an api_key: a chain's key goes elsewhere
    # The credential chain is the process's own: a base_url other than loopback must be approved
    # (SWAPRANK_ALLOWED_HOSTS), as for an env key; the region's endpoint is used without one.
    ambient_credentials: ClassVar[bool] = True
    credentials_source: ClassVar[str] = ("the AWS credential chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, "
                                         "`profile`, SSO, IAM role), never `api_key=`")
    service: ClassVar[str]
    operation: ClassVar[str]
    error_statuses: ClassVar[Mapping[str, int]] = {}

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=None)  # AWS signs with its own credentials; an api_key is never held
        boto3 = require("boto3", self.vendor)
        self._botocore_exceptions = require("botocore.exceptions", self.vendor)
        self._config_class = require("botocore.config", self.vendor).Config
        exc = self._botocore_exceptions
        try:  # a missing profile surfaces wherever the session first reads its config
            self._session = _session(boto3, require("botocore.session", self.vendor), self.option("profile"))
            self.region = self.option("region") or os.environ.get("AWS_REGION") or self._session.region_name
            if not self.region:
                raise ConfigError(f"{self.vendor} needs an AWS region: add ?region=us-west-2 to the spec, or set "
                                  "AWS_REGION or AWS_DEFAULT_REGION, or a region in the profile")
            self.partition = self._session.get_partition_for_region(self.region)  # aws, aws-cn, aws-us-gov...
            self._credentials = self._session.get_credentials()
        except (exc.ProfileNotFound, exc.UnknownRegionError) as error:
            raise ConfigError(f"{self.vendor}: {error}") from None

    def credentials_label(self) -> str:
        return "AWS"

    def _connect(self) -> None:
        """Credentials checked, the client built, the secrets watched: after the subclass's own checks."""
        if self._credentials is None:
            raise AuthenticationError(f"no AWS credentials for {self.vendor}: set AWS_ACCESS_KEY_ID/"
                                      "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or profile=..., or run with an IAM role",
                                      vendor=self.vendor, attempts=0)
        self._secrets: set[str] = set()
        self._remember_credentials()
        exc = self._botocore_exceptions
        self.timeout_errors = (exc.ReadTimeoutError, exc.ConnectTimeoutError)
        self.connection_errors = (exc.HTTPClientError,)
        self.status_errors = (ClientErrorStatus(exc.ClientError, self.error_statuses),)
        try:
            self._default_client = self._build(self.option("timeout"))
        except (exc.InvalidRegionError, ValueError) as error:  # a malformed region or endpoint URL
            raise ConfigError(f"{self.vendor}: {error}") from None
        watch_secrets(self)
        redact_sdk_logs(self, _sdk_logger_names())

    def key_required(self) -> bool:
        return False  # see uses_api_key

    def close(self) -> None:
        """The default client's connection pool goes with the backend (per-attempt clients die with their call)."""
        super().close()
        self._default_client.close()

    # ------------------------------------------------------------ clients

    def _build(self, timeout: float) -> Any:
        config = self._config_class(
            retries={"total_max_attempts": 1, "mode": "standard"},  # one attempt: swaprank retries
            connect_timeout=timeout, read_timeout=timeout,
            max_pool_connections=self.option("max_concurrency"), user_agent_extra="swaprank",
        )
        with _SESSIONS_LOCK:  # boto3 sessions (and their shared loader) are not thread-safe; clients are
            client = self._session.client(self.service, region_name=self.region,
                                          endpoint_url=self.option("base_url"), config=config)
        client.meta.events.register(
            f"before-parse.{client.meta.service_model.service_id.hyphenize()}.{self.operation}", _keep_raw_json)
        return client

    def _client(self, timeout: float) -> Any:
        """The client for one attempt, its credentials noted for ``_scrub`` first. botocore fixes
        timeouts per client: an attempt cut short by the deadline gets its own."""
        self._remember_credentials()
        if timeout >= self.option("timeout"):
            return self._default_client
        return self._build(timeout)

    @contextmanager
    def _validated(self) -> Iterator[None]:
        """botocore checks parameters before sending (e.g. an empty text): a bad request, never sent."""
        try:
            yield
        except self._botocore_exceptions.ParamValidationError as exc:
            raise BadRequestError(f"{self.vendor} request refused before sending: {self._scrub(str(exc))}"[:500],
                                  vendor=self.vendor) from None

    def _raw(self, response: Any) -> tuple[dict[str, Any], str | None]:
        """The answer's raw JSON object (kept by ``_keep_raw_json``) and the AWS request id."""
        metadata = response.get("ResponseMetadata") or {}
        request_id = request_id_from(metadata.get("HTTPHeaders")) or metadata.get("RequestId")
        raw = response.get(_RAW)
        if not isinstance(raw, dict):
            raise BadResponseError(f"{self.vendor} answered with a body that is not a JSON object",
                                   vendor=self.vendor, status=200, request_id=request_id)
        return raw, request_id

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:
        # boto3 is sync-only: the call runs on this backend's pool (max_concurrency threads), in the
        # caller's context so its trace span nests; HostedBackend bounds it with wait_for(timeout).
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, self._send, query, texts, timeout)
        return await loop.run_in_executor(self._thread_pool(), call)

    # ------------------------------------------------------------ credentials

    def _remember_credentials(self) -> None:
        """The secret key and session token in use now (refreshed roles change them), for _scrub."""
        frozen = self._credentials.get_frozen_credentials()
        self._secrets.update(value for value in (frozen.secret_key, frozen.token) if value)

    def _scrub(self, text: str) -> str:
        for secret in list(self._secrets):
            text = text.replace(secret, MASK)
        return redact_text(_SESSION_TOKEN.sub(rf"\1{MASK}", text))


def _session(boto3: Any, botocore_session: Any, profile: str | None) -> Any:
    """A boto3 session of its own (credentials and region resolved afresh) on the shared data loader."""
    global _LOADER
    with _SESSIONS_LOCK:
        core = botocore_session.Session()
        if _LOADER is None:
            _LOADER = core.get_component("data_loader")
        else:
            core.register_component("data_loader", _LOADER)
        session = boto3.session.Session(botocore_session=core, profile_name=profile)
        paths = _LOADER.search_paths  # boto3 appends its data path once per session: keep one of each
        paths[:] = list(dict.fromkeys(paths))
        return session


def _keep_raw_json(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    """botocore hook: keep a 2xx answer's raw JSON, or fail on a body that is not JSON.

    botocore's parser turns an unparsable body into ``{}`` and does not check required members;
    swaprank validates the ranking itself (like the other backends), so a broken answer is a
    ``BadResponseError`` instead of a silently wrong order.
    """
    status = response_dict.get("status_code", 200)
    if not 200 <= status < 300:
        return
    body = response_dict.get("body", b"")
    try:
        customized_response_dict[_RAW] = json.loads(body) if body else None
    except ValueError:
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body)
        raise HTTPStatusFailure(status, response_dict.get("headers"), text[:MESSAGE_LIMIT]) from None


def _sdk_logger_names() -> list[str]:
    """Every botocore/boto3/urllib3 logger: a filter on ``botocore`` alone misses ``botocore.endpoint``."""
    names = [name for name in logging.root.manager.loggerDict
             if name.split(".")[0] in ("botocore", "boto3", "urllib3", "s3transfer")]
    return sorted({"botocore", "boto3", "urllib3", *names})
