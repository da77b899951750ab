"""The framework every hosted backend shares, one concern per module.

A vendor backend (``swaprank/backends/<vendor>.py``) is a short file of translation: the request
body, reading the answer, limits and key env vars. Everything else is here, written once:

- ``hosted``: ``HostedBackend`` (splitting, concurrency, retries, deadline, usage, spans) and
  ``JsonRerankBackend`` for vendors spoken as plain JSON; ``network_options()``.
- ``answers``: ``Part``, ``Ranking`` (where a JSON answer keeps its ranking and usage) and the
  parsers that map a vendor's ranking back to the texts sent.
- ``errors``: HTTP status -> typed ``BackendError``, and whether to retry.
- ``sdk_errors``: where vendor SDKs keep an HTTP answer on their exceptions, and their parse
  failures on a malformed 200, read into the same terms.
- ``retry``: the tenacity policy pieces and the call-wide ``Deadline``.
- ``clients``: httpx clients with one shared TLS context, ``SdkClients``, ``JsonHTTP``.
- ``urls``: a user's ``base_url`` in any documented form -> the route an API is served at.
- ``loops``: objects bound to an event loop, gather-or-cancel.
- ``logs``: keys and URL credentials scrubbed from SDK and httpx log records.
- ``prompting``: ``instruction=`` written into the text for models that read it there.

And the bases of families of vendors: ``selfhosted`` (servers the user runs: vLLM, llama.cpp,
Infinity, TEI), ``stainless`` (Stainless-generated SDKs: ZeroEntropy, Mixedbread), ``aws`` (boto3
services: Bedrock), ``nvcf`` (requests NVIDIA Cloud Functions queues: NVIDIA's API catalog).

Importing the core (and the local cross-encoder path) never imports this package, httpx or tenacity.
"""

from swaprank.backends.hosted.answers import (
    REQUEST_ID_HEADERS,
    Part,
    Ranking,
    dig,
    int_or_none,
    positive_int,
    ranked_scores,
    request_id_from,
)
from swaprank.backends.hosted.base import HostedBackend
from swaprank.backends.hosted.clients import (
    USER_AGENT,
    JsonHTTP,
    SdkClients,
    async_client,
    shared_ssl_context,
    sync_client,
)
from swaprank.backends.hosted.errors import HTTPStatusFailure, error_for_status, retry_after_seconds, vendor_message
from swaprank.backends.hosted.json_api import JsonRerankBackend
from swaprank.backends.hosted.loops import PerLoop
from swaprank.backends.hosted.options import PLACEHOLDER_KEY, activation_option, network_options

__all__ = [
    "PLACEHOLDER_KEY",
    "REQUEST_ID_HEADERS",
    "USER_AGENT",
    "HTTPStatusFailure",
    "HostedBackend",
    "JsonHTTP",
    "JsonRerankBackend",
    "Part",
    "PerLoop",
    "Ranking",
    "SdkClients",
    "activation_option",
    "async_client",
    "dig",
    "error_for_status",
    "int_or_none",
    "network_options",
    "positive_int",
    "ranked_scores",
    "request_id_from",
    "retry_after_seconds",
    "shared_ssl_context",
    "sync_client",
    "vendor_message",
]
