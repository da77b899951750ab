"""Registry: registration, entry points, missing extras, and the process-wide instance cache."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from swaprank import ConfigError, MissingDependencyError, Reranker, available_backends, register_backend
from swaprank.backends import registry
from swaprank.backends.contract import Backend, Scores
from swaprank.backends.optional import require
from swaprank.config import BackendSpec


class SlowLoadingBackend(Backend):
    """Takes a while to 'load', like a model, and counts how often it is built."""

    vendor: ClassVar[str] = "slow"
    default_model: ClassVar[str | None] = "m"
    builds: ClassVar[int] = 0
    lock = threading.Lock()

    def __init__(self, spec: BackendSpec, *, api_key: Any = None) -> None:
        super().__init__(spec)
        time.sleep(0.2)
        with SlowLoadingBackend.lock:
            SlowLoadingBackend.builds += 1

    def score(self, query: str, texts: Sequence[str]) -> Scores:
        return Scores(raw=[0.5] * len(texts), normalized=[0.5] * len(texts))


@pytest.fixture(autouse=True)
def _clean_cache() -> Iterator[None]:
    registry.default_registry().close()
    yield
    registry.default_registry().close()


def test_concurrent_first_use_loads_once() -> None:
    register_backend("slow", SlowLoadingBackend, replace=True)
    SlowLoadingBackend.builds = 0
    rerankers = [Reranker("slow") for _ in range(8)]
    errors: list[BaseException] = []

    def use(rr: Reranker) -> None:
        try:
            assert len(rr.rerank("q", ["a", "b"])) == 2
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=use, args=(rr,)) for rr in rerankers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert SlowLoadingBackend.builds == 1


def test_different_api_keys_get_different_instances_without_storing_the_key() -> None:
    register_backend("slow", SlowLoadingBackend, replace=True)
    spec = BackendSpec("slow", "m")
    a = registry.default_registry().acquire(spec, api_key="key-one")
    b = registry.default_registry().acquire(spec, api_key="key-two")
    assert a is not b and registry.default_registry().acquire(spec, api_key="key-one") is a
    assert "key-one" not in repr(vars(registry.default_registry()))


def test_register_backend_rejects_bad_names_and_duplicates() -> None:
    with pytest.raises(ConfigError, match="backend name must be a non-empty string"):
        register_backend("a:b", SlowLoadingBackend)
    with pytest.raises(ConfigError, match="already registered"):
        register_backend("cohere", SlowLoadingBackend)
    with pytest.raises(ConfigError, match="must be callable"):
        register_backend("x-not-callable", 42)  # type: ignore[arg-type]


def test_factory_without_option_table_accepts_any_option() -> None:
    received: list[BackendSpec] = []

    def factory(spec: BackendSpec, *, api_key: Any = None) -> SlowLoadingBackend:
        received.append(spec)
        return SlowLoadingBackend(spec)

    register_backend("loose", factory, replace=True)
    Reranker("loose:m?anything=1&else=x").rerank("q", ["a"])
    assert received[0].option_dict == {"anything": "1", "else": "x"}


def test_entry_point_backends_are_discovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "thirdparty_rerank.py").write_text(
        "from swaprank.backends import Backend, Scores\n"
        "class Plugin(Backend):\n"
        "    default_model = 'plug'\n"
        "    def __init__(self, spec, *, api_key=None):\n"
        "        super().__init__(spec)\n"
        "    def score(self, query, texts):\n"
        "        return Scores(raw=[float(len(t)) for t in texts], normalized=[len(t) / 100 for t in texts])\n"
    )
    dist = tmp_path / "thirdparty_rerank-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-rerank\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[swaprank.backends]\nplugin = thirdparty_rerank:Plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "plugin" in available_backends()
    result = Reranker("plugin").rerank("q", ["short", "much longer text"])
    assert [r.index for r in result] == [1, 0] and result.model == "plugin:plug"
    sys.modules.pop("thirdparty_rerank", None)


def test_missing_dependency_names_the_pip_extra() -> None:
    with pytest.raises(MissingDependencyError, match=r'pip install "swaprank\[fancy\]"') as info:
        require("swaprank_no_such_module", "fancy")
    assert isinstance(info.value, ImportError)


def test_missing_dependency_falls_back_along_a_chain() -> None:
    class NeedsExtra(SlowLoadingBackend):
        def __init__(self, spec: BackendSpec, *, api_key: Any = None) -> None:
            require("swaprank_no_such_module", "fancy")

    register_backend("needs-extra", NeedsExtra, replace=True)
    register_backend("slow", SlowLoadingBackend, replace=True)
    assert Reranker("needs-extra:m | slow").rerank("q", ["a"]).model == "slow:m"
    with pytest.raises(MissingDependencyError, match="swaprank_no_such_module"):
        Reranker("needs-extra:m").rerank("q", ["a"])
