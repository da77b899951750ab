"""Run ``swaprank serve``'s app for a test: in a thread of the test process, or as a real subprocess."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from swaprank import Reranker
from swaprank.serve.app import create_app
from swaprank.serve.server import uvicorn_config
from swaprank.serve.settings import ServeSettings
from tests.fakes.server import loopback_socket

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServedApp:
    """``create_app(settings)`` under uvicorn in a daemon thread, on a free loopback port."""

    def __init__(self, settings: ServeSettings, reranker: Reranker | None = None) -> None:
        self.app = create_app(settings, reranker)
        self.settings = settings
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ServedApp:
        sock = loopback_socket()
        self.port = sock.getsockname()[1]
        config = uvicorn_config(self.app, self.settings, log_level="warning", access_log=False,
                                timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        wait_ready(self.url, headers=self.auth_headers())
        return self

    def auth_headers(self) -> dict[str, str]:
        token = os.environ.get(self.settings.api_key_env)
        return {"authorization": f"Bearer {token}"} if token else {}

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def metric(self, name: str, **labels: str) -> float:
        return metric(httpx.get(self.url + "/metrics", headers=self.auth_headers()).text, name, **labels)


def wait_ready(url: str, *, headers: dict[str, str] | None = None, timeout: float = 120.0,
               process: subprocess.Popen[Any] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url + "/ready", headers=headers, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not become ready")


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of the Prometheus exposition ``text`` (0.0 when absent)."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return 0.0


def start_cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """``python -m swaprank.cli serve ARGS`` as a subprocess (its output goes to a pipe)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "swaprank.cli", "serve", *args], cwd=REPO, env=full_env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
