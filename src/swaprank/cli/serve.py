"""``swaprank serve``: the Reranker as an HTTP service speaking Cohere v2 and Jina/vLLM rerank APIs.

    SWAPRANK_SERVE_API_KEY=... swaprank serve --model "cross-encoder:<model>?runtime=openvino" --port 8080

The bearer token is read from the environment (``--api-key-env`` names the variable), never from a
flag: argv is visible to every user of the machine. ``--replicas N`` (N > 1) or ``--address`` serve
the same app on Ray Serve (``pip install 'swaprank[ray]'``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os

from swaprank.backends.optional import require
from swaprank.cli.options import add_model_arguments, reranker_options
from swaprank.serve.settings import DEFAULT_API_KEY_ENV, ServeSettings
from swaprank.types import ConfigError, MissingDependencyError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_model_arguments(parser, policy=True)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0: any free port)")
    parser.add_argument("--served-model-name", action="append", default=None, dest="served_model_names",
                        help="a name requests may give as 'model' (repeatable; default: the spec's backend:model, "
                             "a local path cut to its last directory)")
    parser.add_argument("--accept-any-model", action="store_true",
                        help="serve requests whatever 'model' they name (default: 404 for other names)")
    limits = parser.add_argument_group("limits")
    limits.add_argument("--max-documents", type=int, default=1000, help="documents per request (default 1000)")
    limits.add_argument("--max-body-bytes", type=int, default=8 * 1024 * 1024,
                        help="request body size (default 8 MiB)")
    limits.add_argument("--max-request-tokens", type=int, default=100_000,
                        help="model tokens one request may cost, every pair and window counted before scoring "
                             "(default 100000: about 50 s of a MiniLM in fp32 on two AVX2 cores; 0: no limit)")
    limits.add_argument("--request-timeout", type=float, default=0.0,
                        help="seconds a request may take from its arrival, queueing included (default 0: none; a "
                             "client that gives up and hangs up stops its work anyway)")
    limits.add_argument("--header-timeout", type=float, default=10.0,
                        help="seconds a client gets to send its request headers (default 10)")
    limits.add_argument("--body-timeout", type=float, default=30.0,
                        help="seconds a client gets to send its request body (default 30)")
    limits.add_argument("--max-concurrency", type=int, default=64,
                        help="requests served at once; more get 503 with Retry-After (default 64)")
    limits.add_argument("--max-connections", type=int, default=4096,
                        help="open connections; more are answered 503 and closed (default 4096, within the "
                             "open-file limit, which is raised to fit)")
    batching = parser.add_argument_group("dynamic batching (local models)")
    batching.add_argument("--no-batching", action="store_true", help="score each request on its own as it arrives")
    batching.add_argument("--max-batch-pairs", type=int, default=512,
                          help="(query, document) pairs per coalesced forward pass (default 512; 1 disables)")
    batching.add_argument("--max-wait-ms", type=float, default=10.0,
                          help="longest wait for more requests after the first queued one (default 10)")
    ops = parser.add_argument_group("operations")
    ops.add_argument("--api-key-env", default=DEFAULT_API_KEY_ENV,
                     help=f"environment variable holding the bearer token (default {DEFAULT_API_KEY_ENV}; "
                          "unset or empty: no token)")
    ops.add_argument("--graceful-timeout", type=float, default=30.0,
                     help="seconds in-flight requests get to finish after SIGTERM (default 30)")
    ops.add_argument("--drain-seconds", type=float, default=0.0,
                     help="seconds between SIGTERM (/ready turns 503) and closing the listener (default 0)")
    ops.add_argument("--no-warmup", action="store_true", help="skip the warm-up forward pass at start-up")
    ops.add_argument("--log-level", default="info", choices=("critical", "error", "warning", "info", "debug"))
    ops.add_argument("--no-access-log", action="store_true")
    ray = parser.add_argument_group("scale-out on Ray Serve")
    ray.add_argument("--replicas", type=int, default=1, help="replicas of the service (> 1: on Ray Serve)")
    ray.add_argument("--address", default=None, help="Ray cluster to run on (implies Ray Serve)")


def settings_from(args: argparse.Namespace) -> ServeSettings:
    model = args.model or os.environ.get("SWAPRANK_MODEL")
    if not model:
        raise ConfigError("no model: give --model SPEC or set SWAPRANK_MODEL")
    return ServeSettings(
        model=model, host=args.host, port=args.port, served_model_names=tuple(args.served_model_names or ()),
        accept_any_model=args.accept_any_model, max_documents=args.max_documents,
        max_body_bytes=args.max_body_bytes, max_request_tokens=args.max_request_tokens,
        request_timeout=args.request_timeout, header_timeout=args.header_timeout, body_timeout=args.body_timeout,
        max_concurrency=args.max_concurrency, max_connections=args.max_connections, batching=not args.no_batching,
        max_batch_pairs=args.max_batch_pairs,
        max_wait_ms=args.max_wait_ms, api_key_env=args.api_key_env, graceful_timeout=args.graceful_timeout,
        drain_seconds=args.drain_seconds, warmup=not args.no_warmup, **reranker_options(args),
    )


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    if args.replicas < 1:
        raise ConfigError(f"--replicas must be at least 1, got {args.replicas}")
    if args.replicas > 1 or args.address:
        return _run_on_ray(settings, args.replicas, args.address)
    for module in ("fastapi", "uvicorn", "prometheus_client"):
        require(module, "serve")
    from swaprank import Reranker
    from swaprank.serve.server import run as run_server

    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s:     %(name)s: %(message)s")
    reranker = Reranker(settings.model, **settings.reranker_options())  # a bad spec fails before binding
    return run_server(settings, reranker, log_level=args.log_level, access_log=not args.no_access_log)


def _run_on_ray(settings: ServeSettings, replicas: int, address: str | None) -> int:
    try:
        ray_deployment = importlib.import_module("swaprank.serve.ray_deployment")
    except ImportError as exc:
        if exc.name == "swaprank.serve.ray_deployment":
            raise MissingDependencyError("--replicas/--address need swaprank.serve.ray_deployment, which this "
                                         "installation of swaprank does not include") from None
        raise MissingDependencyError(f"--replicas/--address run on Ray Serve: pip install 'swaprank[ray]' "
                                     f"({exc})") from None
    return int(ray_deployment.run(settings, replicas=replicas, address=address) or 0)
