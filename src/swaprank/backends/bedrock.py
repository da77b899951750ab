"""Amazon Bedrock rerank (Amazon Rerank 1.0, Cohere Rerank 3.5 on Bedrock) through boto3.

One call is the ``bedrock-agent-runtime`` ``Rerank`` operation (``POST /rerank``, REST-JSON, SigV4;
botocore's service model ``bedrock-agent-runtime/2023-07-26``): one text query, up to 1000 inline
text sources, ``numberOfResults`` set to all of them, and the model named by its ARN, built here
from the model id and the region (``arn:aws:bedrock:<region>::foundation-model/<id>``) unless the
spec gives a full ARN. The answer is ``{results: [{index, relevanceScore}], nextToken?}`` with
scores already on [0, 1]. Bedrock reports no usage.

Credentials come from the standard AWS chain (env vars, ``profile``, SSO, container or instance
roles), never from ``api_key``: the backend declares ``uses_api_key = False``, so a single key
given to a chain such as ``bedrock:... | cohere:...`` goes to Cohere alone. boto3's own retries
are off (one attempt per call); retries, timeouts and the deadline are swaprank's, as for every
hosted backend. boto3 has no async client: ``arerank`` runs the same call on this backend's thread
pool (bounded by ``max_concurrency``), never blocking the event loop.

Credentials never reach a repr, an exception or a log record: the secret key and session token
are scrubbed from botocore's DEBUG logs (which print signed headers) and from error messages.
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
from typing import Any, ClassVar

from pydantic import SecretStr

from swaprank.backends.hosted import (
    HostedBackend,
    HTTPStatusFailure,
    Part,
    network_options,
    ranked_scores,
    request_id_from,
)
from swaprank.backends.hosted.errors import MESSAGE_LIMIT
from swaprank.backends.hosted.logs import redact_sdk_logs, watch_secrets
from swaprank.backends.optional import require
from swaprank.redaction import MASK, redact_text
from swaprank.specs import BackendSpec, Option
from swaprank.types import AuthenticationError, BadRequestError, BadResponseError, ConfigError

SERVICE = "bedrock-agent-runtime"
# Status of the modelled errors of Rerank (botocore service model), for a ClientError without one.
_ERROR_STATUS = {
    "ThrottlingException": 429, "ValidationException": 400, "AccessDeniedException": 403,
    "ResourceNotFoundException": 404, "ConflictException": 409, "ServiceQuotaExceededException": 400,
    "DependencyFailedException": 424, "InternalServerException": 500, "BadGatewayException": 502,
    "UnrecognizedClientException": 403, "ExpiredTokenException": 403,
}
# Signed headers as botocore's DEBUG logs print them: dict reprs and canonical requests.
_SESSION_TOKEN = re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s,}]+")
# Where the raw JSON of a Rerank answer is kept, to be validated by us rather than botocore's parser.
_RAW = "_swaprank_raw"
# One botocore data loader for every Bedrock backend: the service model and endpoint rules are
# parsed once per process, so a new backend's client costs ~3 ms instead of ~50 ms.
_LOADER: Any = None
_SESSIONS_LOCK = threading.Lock()


class BedrockBackend(HostedBackend):
    vendor: ClassVar[str] = "bedrock"
    uses_api_key: ClassVar[bool] = False  # AWS credentials, never an api_key; see the module docstring
    credentials_source: ClassVar[str] = ("the AWS credential chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, "
                                         "`profile`, SSO, IAM role), never `api_key=`")
    default_model: ClassVar[str | None] = "amazon.rerank-v1:0"
    # Cohere Rerank 3.5 on Bedrock: a 4K-token context window (AWS model card). Amazon Rerank 1.0
    # documents none we could confirm, so its documents are sent whole unless max_length is set.
    model_limits: ClassVar[dict[str, int]] = {"cohere.rerank-v3-5:0": 4096}
    options: ClassVar[dict[str, Option]] = {
        # 1000: the RerankSourcesList maximum (and numberOfResults maximum) in the service model.
        **network_options(max_docs_per_request=1000),
        "base_url": Option(str, None, "endpoint URL instead of the region's (a VPC interface endpoint, a proxy)"),
        "region": Option(str, None, "AWS region; default: AWS_REGION, AWS_DEFAULT_REGION or the profile's region"),
        "profile": Option(str, None, "named profile of the AWS config/credentials files (default: the chain's)"),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=None)  # AWS signs with its own credentials; an api_key is never held
        boto3 = require("boto3", "bedrock")
        self._botocore_exceptions = require("botocore.exceptions", "bedrock")
        self._config_class = require("botocore.config", "bedrock").Config
        exc = self._botocore_exceptions
        try:  # a missing profile surfaces wherever the session first reads its config
            self._session = _session(boto3, require("botocore.session", "bedrock"), self.option("profile"))
            self.region = self.option("region") or os.environ.get("AWS_REGION") or self._session.region_name
            if not self.region:
                raise ConfigError("bedrock needs an AWS region: add ?region=us-west-2 to the spec, or set AWS_REGION "
                                  "or AWS_DEFAULT_REGION, or a region in the profile")
            partition = self._session.get_partition_for_region(self.region)  # aws, aws-cn, aws-us-gov...
            self._credentials = self._session.get_credentials()
        except (exc.ProfileNotFound, exc.UnknownRegionError) as error:
            raise ConfigError(f"bedrock: {error}") from None
        self.model_arn = model_arn(spec.model, self.region, partition)
        if self._credentials is None:
            raise AuthenticationError("no AWS credentials for bedrock: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, "
                                      "AWS_PROFILE or profile=..., or run with an IAM role", vendor=self.vendor,
                                      attempts=0)
        self._secrets: set[str] = set()
        self._remember_credentials()
        self.timeout_errors = (exc.ReadTimeoutError, exc.ConnectTimeoutError)
        self.connection_errors = (exc.HTTPClientError,)
        try:
            self._client = self._build(self.option("timeout"))
        except (exc.InvalidRegionError, ValueError) as error:  # a malformed region or endpoint URL
            raise ConfigError(f"bedrock: {error}") from None
        watch_secrets(self)
        redact_sdk_logs(self, _sdk_logger_names())

    def key_required(self) -> bool:
        return False  # see uses_api_key

    # ------------------------------------------------------------ the call

    def _build(self, timeout: float) -> Any:
        config = self._config_class(
            retries={"total_max_attempts": 1, "mode": "standard"},  # one attempt: swaprank retries
            connect_timeout=timeout, read_timeout=timeout,
            max_pool_connections=self.option("max_concurrency"), user_agent_extra="swaprank",
        )
        with _SESSIONS_LOCK:  # boto3 sessions (and their shared loader) are not thread-safe; clients are
            client = self._session.client(SERVICE, region_name=self.region, endpoint_url=self.option("base_url"),
                                          config=config)
        client.meta.events.register(f"before-parse.{client.meta.service_model.service_id.hyphenize()}.Rerank",
                                    _keep_raw_json)
        return client

    def _client_for(self, timeout: float) -> Any:
        """botocore fixes timeouts per client: an attempt cut short by the deadline gets its own."""
        if timeout >= self.option("timeout"):
            return self._client
        return self._build(timeout)

    def _request(self, query: str, texts: list[str]) -> dict[str, Any]:
        return {
            "queries": [{"type": "TEXT", "textQuery": {"text": query}}],
            "sources": [{"type": "INLINE", "inlineDocumentSource": {"type": "TEXT", "textDocument": {"text": text}}}
                        for text in texts],
            "rerankingConfiguration": {
                "type": "BEDROCK_RERANKING_MODEL",
                "bedrockRerankingConfiguration": {"numberOfResults": len(texts),
                                                  "modelConfiguration": {"modelArn": self.model_arn}},
            },
        }

    def _send(self, query: str, texts: list[str], timeout: float) -> Part:
        self._remember_credentials()
        client = self._client_for(timeout)
        request = self._request(query, texts)
        try:
            response = client.rerank(**request)
        except self._botocore_exceptions.ParamValidationError as exc:  # e.g. an empty text (min length 1)
            raise BadRequestError(f"{self.vendor} request refused before sending: {self._scrub(str(exc))}"[:500],
                                  vendor=self.vendor) from None
        items, request_id = self._items(response)
        token = response.get("nextToken")
        # A page token is not expected when numberOfResults covers every source; followed if one comes.
        while token and isinstance(items, list) and len(items) < len(texts):
            response = client.rerank(**request, nextToken=token)
            more, _ = self._items(response)
            if not isinstance(more, list):
                items = more  # reported as unusable by ranked_scores
                break
            items, token = items + more, response.get("nextToken")
        scores = ranked_scores(items, len(texts), vendor=self.vendor, score_key="relevanceScore",
                               request_id=request_id)
        return Part(scores, None, request_id)  # Bedrock reports no usage

    async def _asend(self, query: str, texts: list[str], timeout: float) -> Part:
        # boto3 is sync-only: the call runs on this backend's pool (max_concurrency threads), in the
        # caller's context so its trace span nests; HostedBackend bounds it with wait_for(timeout).
        loop = asyncio.get_running_loop()
        call = functools.partial(contextvars.copy_context().run, self._send, query, texts, timeout)
        return await loop.run_in_executor(self._thread_pool(), call)

    def _items(self, response: Any) -> tuple[Any, str | None]:
        metadata = response.get("ResponseMetadata") or {}
        request_id = request_id_from(metadata.get("HTTPHeaders")) or metadata.get("RequestId")
        raw = response.get(_RAW)
        if not isinstance(raw, dict):
            raise BadResponseError(f"{self.vendor} answered with a body that is not a JSON object",
                                   vendor=self.vendor, status=200, request_id=request_id)
        results = raw.get("results")
        if results is None:
            raise BadResponseError(f"{self.vendor} returned an unusable ranking: the answer has no results list",
                                   vendor=self.vendor, status=200, request_id=request_id)
        return results, request_id

    # ------------------------------------------------------------ errors and credentials

    def _status_failure(self, exc: BaseException) -> HTTPStatusFailure | None:
        if isinstance(exc, self._botocore_exceptions.ClientError):
            response = getattr(exc, "response", None) or {}
            error = response.get("Error") or {}
            metadata = response.get("ResponseMetadata") or {}
            code = str(error.get("Code") or "")
            status = metadata.get("HTTPStatusCode")
            if not isinstance(status, int):
                status = _ERROR_STATUS.get(code, 500)
            message = str(error.get("Message") or "")
            body = {"message": f"{code}: {message}" if code and message else code or message}
            return HTTPStatusFailure(status, metadata.get("HTTPHeaders"), body)
        return super()._status_failure(exc)

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


def model_arn(model: str, region: str, partition: str = "aws") -> str:
    """``amazon.rerank-v1:0`` -> ``arn:aws:bedrock:<region>::foundation-model/amazon.rerank-v1:0``; an ARN as is."""
    if model.startswith("arn:"):
        return model
    if not model or "/" in model or ":" not in model:
        raise ConfigError(f"bedrock needs a model id such as amazon.rerank-v1:0 or cohere.rerank-v3-5:0, or a "
                          f"model ARN; got {model!r}")
    return f"arn:{partition}:bedrock:{region}::foundation-model/{model}"


def _sdk_logger_names() -> list[str]:
    """Every botocore/boto3/urllib3 logger: a filter on ``botocore`` alone misses ``botocore.endpoint``."""
    names = [name for name in logging.root.manager.loggerDict
             if name.split(".")[0] in ("botocore", "boto3", "urllib3", "s3transfer")]
    return sorted({"botocore", "boto3", "urllib3", *names})
