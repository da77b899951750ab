"""The wire formats of NVIDIA NIM ranking and Amazon Bedrock Rerank, as the fakes serve them.

- NVIDIA (self-hosted NIM ``POST /v1/ranking``; the API catalog serves the same body per model at
  ``/v1/retrieval/<model>/reranking``; checked against langchain-nvidia-ai-endpoints' ``NVIDIARerank``
  and docs.nvidia.com/nim/nemo-retriever/text-reranking): ``{model, query: {text}, passages:
  [{text}], truncate?: "NONE"|"END"}`` -> ``{rankings: [{index, logit}]}`` sorted by logit; errors
  ``{"detail"}``; Bearer key. The fake's "logit" is the raw logit of the shared [0, 1] relevance
  (``vendors_selfhosted.logit``), so one sigmoid maps it back.
  ``truncate: "NONE"`` rejects an over-long pair (400), like the NIM.
- Bedrock (``bedrock-agent-runtime`` ``Rerank``, REST-JSON, checked against botocore's service
  model ``bedrock-agent-runtime/2023-07-26``): ``POST /rerank`` with ``{queries: [{type: "TEXT",
  textQuery: {text}}], sources: [{type: "INLINE", inlineDocumentSource: {type: "TEXT", textDocument:
  {text}}}], rerankingConfiguration: {type: "BEDROCK_RERANKING_MODEL", bedrockRerankingConfiguration:
  {numberOfResults, modelConfiguration: {modelArn}}}}`` -> ``{results: [{index, relevanceScore}]}``
  sorted by score. Errors: ``{"message"}`` with the error code in ``x-amzn-ErrorType``; request id
  in ``x-amzn-RequestId``. Requests must be SigV4-signed: with ``api_key`` set (the secret access
  key the fake knows), the fake recomputes the signature with botocore's signer and answers 403
  like AWS when the access key id is unknown or the signature does not match.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tests.fakes.server import FakeServer, Recorded
from tests.fakes.vendors_selfhosted import logit

# The fake AWS identity the tests sign with; the secret access key is tests.fakes.helpers.TEST_KEY.
AWS_ACCESS_KEY_ID = "AKIASWAPRANKFAKE0001"
AWS_REGION = "us-west-2"
_AUTH = re.compile(r"AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                   r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})")
_AWS_CODES = {400: "ValidationException", 401: "UnrecognizedClientException", 403: "AccessDeniedException",
              404: "ResourceNotFoundException", 409: "ConflictException", 424: "DependencyFailedException",
              429: "ThrottlingException", 500: "InternalServerException", 502: "BadGatewayException",
              503: "ServiceUnavailableException", 504: "GatewayTimeoutException"}


class FakeNvidia(FakeServer):
    vendor = "nvidia"
    path = "/v1/ranking"
    docs_field = "passages"
    results_field = "rankings"
    score_field = "logit"
    returns_logits = True  # "logit" is the raw logit of relevance(), as a NIM answers

    def reset(self) -> None:
        super().reset()
        self.unit_scores = False  # answer relevance() itself, like a server that returns [0, 1] scores
        self.queue = 0  # answer this many requests 202 + NVCF-REQID, as NVIDIA Cloud Functions does under load
        self._queued: dict[str, Any] = {}

    async def _respond(self, request: Request, record: Recorded) -> Response:
        response = await super()._respond(request, record)
        if self.queue > 0 and response.status_code == 200:
            self.queue -= 1
            self._queued[record.request_id] = json.loads(bytes(response.body))
            return Response(status_code=202, headers={"NVCF-REQID": record.request_id,
                                                      "NVCF-STATUS": "pending-evaluation"})
        return response

    def get(self, path: str) -> Any:
        """NVCF's status route hands out a queued request's answer."""
        prefix = "/v2/nvcf/pexec/status/"
        return self._queued.get(path[len(prefix):]) if path.startswith(prefix) else None

    def parse(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        query, passages = (body.get("query") or {}).get("text"), body.get("passages")
        if (not isinstance(query, str) or not isinstance(passages, list)
                or not all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in passages)):
            raise ValueError("'query' must be {'text': str} and 'passages' a list of {'text': str}")
        if body.get("truncate", "NONE") not in ("NONE", "END"):
            raise ValueError(f"truncate must be NONE or END, got {body.get('truncate')!r}")
        return query, [p["text"] for p in passages], None

    def too_long(self, body: dict[str, Any], tokens: int) -> tuple[int, str] | None:
        if body.get("truncate") == "END":
            return None
        return 400, f"Input length {tokens} exceeds maximum allowed token size {self.max_tokens}"

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        if self.unit_scores:
            return {"rankings": ranked}
        return {"rankings": [{"index": r["index"], "logit": logit(r["logit"])} for r in ranked]}


class FakeBedrock(FakeServer):
    vendor = "bedrock"
    path = "/rerank"
    docs_field = "sources"
    score_field = "relevanceScore"
    request_id_header = "x-amzn-RequestId"

    def reset(self) -> None:
        super().reset()
        self.access_key_id = AWS_ACCESS_KEY_ID
        self.page_size: int | None = None  # answer in pages of this many results, linked by nextToken
        self._signed_with: dict[int, str] = {}  # id(record.headers) -> the secret its signature proved

    def sent_key(self, headers: Mapping[str, str]) -> str | None:
        """The secret access key a request was signed with, when _respond verified its SigV4 signature."""
        return self._signed_with.get(id(headers))

    def error_body(self, status: int, message: str) -> Any:
        return {"message": message}

    def _error(self, record: Recorded, status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
        code = _AWS_CODES.get(status, "InternalServerException")
        return super()._error(record, status, message, {"x-amzn-ErrorType": f"{code}:http://internal.amazon.com/"
                                                        "coral/com.amazon.bedrock/", **(headers or {})})

    def too_many(self, count: int) -> tuple[int, str]:
        return 400, f"too many documents: {count} > {self.max_docs}"

    async def _respond(self, request: Request, record: Recorded) -> Response:
        if self.api_key is not None:
            problem = self._signature_problem(request, record, await request.body())
            if problem is not None:
                return self._error(record, 403, problem)
            self._signed_with[id(record.headers)] = self.api_key
        return await super()._respond(request, record)

    def _signature_problem(self, request: Request, record: Recorded, body: bytes) -> str | None:
        """Recompute the SigV4 signature with the secret key this fake knows (``api_key``)."""
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        match = _AUTH.fullmatch(record.headers.get("authorization", ""))
        if match is None or "x-amz-date" not in record.headers:
            return "Missing Authentication Token"
        access_key, _, region, service, signed, signature = match.groups()
        if access_key != self.access_key_id:
            return "The security token included in the request is invalid."
        headers = {name: record.headers.get(name, "") for name in signed.split(";")}
        aws_request = AWSRequest(method=request.method, url=str(request.url), data=body, headers=headers)
        aws_request.context["timestamp"] = record.headers["x-amz-date"]
        signer = SigV4Auth(Credentials(access_key, str(self.api_key), record.headers.get("x-amz-security-token")),
                           service, region)
        expected = signer.signature(signer.string_to_sign(aws_request, signer.canonical_request(aws_request)),
                                    aws_request)
        if expected != signature:
            return ("The request signature we calculated does not match the signature you provided. "
                    "Check your AWS Secret Access Key and signing method.")
        return None

    def parse(self, body: dict[str, Any]) -> tuple[str, list[str], int | None]:
        try:
            [query] = body["queries"]
            assert query["type"] == "TEXT"
            text = query["textQuery"]["text"]
            docs = []
            for source in body["sources"]:
                assert source["type"] == "INLINE" and source["inlineDocumentSource"]["type"] == "TEXT"
                docs.append(source["inlineDocumentSource"]["textDocument"]["text"])
            config = body["rerankingConfiguration"]
            assert config["type"] == "BEDROCK_RERANKING_MODEL"
            settings = config["bedrockRerankingConfiguration"]
            assert settings["modelConfiguration"]["modelArn"].startswith("arn:aws:bedrock:")
            top_n = settings.get("numberOfResults")
        except (KeyError, TypeError, ValueError, AssertionError) as exc:
            raise ValueError(f"1 validation error detected: malformed Rerank request ({type(exc).__name__}: "
                             f"{exc})") from None
        if not isinstance(text, str) or not all(isinstance(d, str) for d in docs):
            raise ValueError("1 validation error detected: texts must be strings")
        return text, docs, top_n if isinstance(top_n, int) else None

    def payload(self, body: dict[str, Any], query: str, docs: list[str], ranked: list[dict[str, Any]]) -> Any:
        if self.page_size is None:
            return {"results": ranked}
        start = int(body.get("nextToken", "page-0").removeprefix("page-"))
        end = start + self.page_size
        return {"results": ranked[start:end], **({"nextToken": f"page-{end}"} if end < len(ranked) else {})}
