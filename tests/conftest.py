from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.assets import build_tiny_cross_encoder, real_model_path, scifact_path

# Hosted-API tests talk to fake servers on loopback only; never let a proxy intercept them.
os.environ["NO_PROXY"] = "127.0.0.1,localhost"
os.environ["no_proxy"] = "127.0.0.1,localhost"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Exported artifacts go to a throwaway cache, never the developer's ~/.cache; and the runtimes'
# telemetry (OpenVINO, NNCF) stays off in every test process and the subprocesses they start.
os.environ["SWAPRANK_CACHE_DIR"] = tempfile.mkdtemp(prefix="swaprank-test-cache-")
os.environ.setdefault("NNCF_CI", "1")
# Nothing phones home from a test: LangSmith tracing off, the DO_NOT_TRACK convention on (Infinity,
# Hugging Face and others honour it); OpenTelemetry spans only ever reach tests/otel_support.py's
# in-memory exporter.
os.environ["LANGCHAIN_TRACING_V2"] = "false"
os.environ["LANGSMITH_TRACING"] = "false"
os.environ["DO_NOT_TRACK"] = "1"
# Ray (tests/test_batch*.py, tests/test_ray_serve.py): no usage report, and a single-node Ray on 127.0.0.1
# (swaprank.ray_runtime.LOCAL_ENV; set before anything imports ray).
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
from swaprank.backends.fastpath.telemetry import disable_runtime_telemetry

disable_runtime_telemetry()
for _var in ("CO_API_KEY", "COHERE_API_KEY", "VOYAGE_API_KEY", "JINA_API_KEY", "JINAAI_API_KEY", "SWAPRANK_MODEL"):
    os.environ.pop(_var, None)
# Bedrock: boto3 signs with fake credentials from the environment (the secret is the tests' TEST_KEY,
# so the key-leak tests cover it), never reads the developer's ~/.aws and never probes EC2 metadata.
for _var in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN",
             "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
             "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_REGION", "AWS_DEFAULT_REGION", "NVIDIA_API_KEY"):
    os.environ.pop(_var, None)
os.environ["AWS_CONFIG_FILE"] = os.environ["AWS_SHARED_CREDENTIALS_FILE"] = "/nonexistent/swaprank-tests/aws"
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
os.environ["AWS_ACCESS_KEY_ID"] = "AKIASWAPRANKFAKE0001"  # tests.fakes.vendors_cloud.AWS_ACCESS_KEY_ID
os.environ["AWS_SECRET_ACCESS_KEY"] = "sk-swaprank-TEST-7f3a9c1e5b2d"  # tests.fakes.helpers.TEST_KEY

_SKIPPED_QUALITY: list[str] = []
# Real-server tests (tests/test_infinity_server.py) skipped because their server is not installed.
SKIPPED_SERVERS: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own process-wide registry: the backends it registers (scripted, slow,
    plugins...) and the live backends it builds never leak into later tests, and closing it at the
    end proves that whatever the test built can be released."""
    from swaprank.backends import registry

    fresh = registry.Registry()
    monkeypatch.setattr(registry, "_default", fresh)
    yield
    fresh.close()


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce"))


@pytest.fixture(scope="session")
def tiny_spec(tiny_model_dir: Path) -> str:
    return f"cross-encoder:{tiny_model_dir}"


@pytest.fixture(scope="session")
def real_model(request: pytest.FixtureRequest) -> str:
    """Path of the real MiniLM-L6 cross-encoder; skips (loudly) when ../shared is absent."""
    path = real_model_path()
    if path is None:
        _SKIPPED_QUALITY.append(request.node.nodeid)
        pytest.skip("QUALITY TEST SKIPPED: real cross-encoder not found (set SWAPRANK_TEST_MODEL or provide ../shared)")
    return path


@pytest.fixture(scope="session")
def scifact(request: pytest.FixtureRequest) -> Path:
    path = scifact_path()
    if path is None:
        _SKIPPED_QUALITY.append(request.node.nodeid)
        pytest.skip("QUALITY TEST SKIPPED: BEIR SciFact not found (set SWAPRANK_TEST_DATA or provide ../shared)")
    return path


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _SKIPPED_QUALITY:
        terminalreporter.section("QUALITY TESTS SKIPPED: real model/data missing", sep="!", red=True, bold=True)
        terminalreporter.write_line(
            f"{len(_SKIPPED_QUALITY)} quality test(s) did not run; only mechanics were tested. "
            "Provide ../shared or set SWAPRANK_TEST_MODEL / SWAPRANK_TEST_DATA."
        )
    if SKIPPED_SERVERS:
        terminalreporter.section("REAL-SERVER TESTS SKIPPED: server not installed", sep="!", red=True, bold=True)
        terminalreporter.write_line(
            f"Tests against a real rerank server did not run ({', '.join(sorted(set(SKIPPED_SERVERS)))}). "
            "Run `make infinity`."
        )


# The offline Hugging Face cache and the fake Cohere server that README and docs code blocks run
# against (tests/doc_blocks.py): built once for both test modules.
@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests import doc_blocks

    return doc_blocks.make_hub_cache(tmp_path_factory)


@pytest.fixture(scope="session")
def fake_cohere() -> Iterator[object]:
    from tests import doc_blocks

    yield from doc_blocks.fake_cohere_server()
