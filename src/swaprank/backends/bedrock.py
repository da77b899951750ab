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
All of that is AWS's, not Bedrock's, and lives in :mod:`swaprank.backends.hosted.aws`; this file
is the Rerank operation's request and answer.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr

from swaprank.backends.hosted import Part, network_options, ranked_scores
from swaprank.backends.hosted.aws import AwsBackend, aws_options
from swaprank.specs import BackendSpec, Option
from swaprank.types import BadResponseError, ConfigError


class BedrockBackend(AwsBackend):
    vendor: ClassVar[str] = "bedrock"
    default_model: ClassVar[str | None] = "amazon.rerank-v1:0"
    service: ClassVar[str] = "bedrock-agent-runtime"
    operation: ClassVar[str] = "Rerank"
    # Status of the modelled errors of Rerank (botocore service model), for a ClientError without one.
    error_statuses: ClassVar[dict[str, int]] = {
        "ThrottlingException": 429, "ValidationException": 400, "AccessDeniedException": 403,
        "ResourceNotFoundException": 404, "ConflictException": 409, "ServiceQuotaExceededException": 400,
        "DependencyFailedException": 424, "InternalServerException": 500, "BadGatewayException": 502,
        "UnrecognizedClientException": 403, "ExpiredTokenException": 403,
    }
    # Cohere Rerank 3.5 on Bedrock: a 4K-token context window (AWS model card). Amazon Rerank 1.0
    # documents none we could confirm, so its documents are sent whole unless max_length is set.
    model_limits: ClassVar[dict[str, int]] = {"cohere.rerank-v3-5:0": 4096}
    options: ClassVar[dict[str, Option]] = {
        # 1000: the RerankSourcesList maximum (and numberOfResults maximum) in the service model.
        **network_options(max_docs_per_request=1000),
        **aws_options(),
    }

    def __init__(self, spec: BackendSpec, *, api_key: SecretStr | str | None = None) -> None:
        super().__init__(spec, api_key=None)  # AwsBackend: session, region and partition; never an api_key
        self.model_arn = model_arn(spec.model, self.region, self.partition)
        self._connect()

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
        client = self._client(timeout)
        request = self._request(query, texts)
        with self._validated():  # e.g. an empty text (min length 1)
            response = client.rerank(**request)
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

    def _items(self, response: Any) -> tuple[Any, str | None]:
        raw, request_id = self._raw(response)
        results = raw.get("results")
        if results is None:
            raise BadResponseError(f"{self.vendor} returned an unusable ranking: the answer has no results list",
                                   vendor=self.vendor, status=200, request_id=request_id)
        return results, request_id


def model_arn(model: str, region: str, partition: str = "aws") -> str:
    """``amazon.rerank-v1:0`` -> ``arn:aws:bedrock:<region>::foundation-model/amazon.rerank-v1:0``; an ARN as is."""
    if model.startswith("arn:"):
        return model
    if not model or "/" in model or ":" not in model:
        raise ConfigError(f"bedrock needs a model id such as amazon.rerank-v1:0 or cohere.rerank-v3-5:0, or a "
                          f"model ARN; got {model!r}")
    return f"arn:{partition}:bedrock:{region}::foundation-model/{model}"
