"""A missing extra is named, with the pip command, at every entry point (issue 25).

The packages are simulated missing the way Python itself spells it: ``sys.modules[name] = None``
makes ``import name`` raise ``ModuleNotFoundError``. Every error must stay an ``ImportError`` (and a
``ModuleNotFoundError``) so existing ``except ImportError`` code keeps working.
"""

from __future__ import annotations

import importlib
import sys

import pytest

from swaprank import MissingDependencyError, Reranker
from swaprank.backends.optional import require
from swaprank.cli import NEEDS
from swaprank.cli import main as cli_main


def hide(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """Make ``package`` (and every submodule already imported) unimportable for this test."""
    for name in [n for n in sys.modules if n == package or n.startswith(package + ".")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, package, None)


def assert_names_extra(error: BaseException, extra: str, module: str) -> None:
    assert isinstance(error, MissingDependencyError)
    assert isinstance(error, ModuleNotFoundError) and isinstance(error, ImportError)
    assert f'pip install "swaprank[{extra}]"' in str(error)
    assert error.name == module


@pytest.mark.parametrize(("adapter", "package", "extra"), [
    ("swaprank.langchain", "langchain_core", "langchain"),
    ("swaprank.llama_index", "llama_index", "llama-index"),
])
def test_importing_an_adapter_without_its_framework_names_the_extra(
        monkeypatch: pytest.MonkeyPatch, adapter: str, package: str, extra: str) -> None:
    hide(monkeypatch, package)
    monkeypatch.delitem(sys.modules, adapter, raising=False)  # restored afterwards: other tests keep it
    with pytest.raises(ImportError) as info:
        importlib.import_module(adapter)
    assert_names_extra(info.value, extra, info.value.name or "")
    assert info.value.name is not None and info.value.name.startswith(package)
    assert adapter in str(info.value)


def test_require_names_the_module_and_the_extra() -> None:
    with pytest.raises(ModuleNotFoundError) as info:
        require("swaprank_no_such_module", "fancy", "backend 'fancy'")
    assert_names_extra(info.value, "fancy", "swaprank_no_such_module")
    assert str(info.value).startswith("backend 'fancy' needs the 'fancy' extra")


# Each backend that needs more than the core install, the package it imports first, its extra.
BACKENDS = [
    ("cross-encoder:some/model", "sentence_transformers", "cross-encoder"),
    ("colbert:some/model", "sentence_transformers", "colbert"),
    ("cohere:rerank-v3.5", "cohere", "cohere"),
    ("voyage:rerank-2.5", "voyageai", "voyage"),
    ("pinecone:bge-reranker-v2-m3", "pinecone", "pinecone"),
    ("zeroentropy:zerank-1", "zeroentropy", "zeroentropy"),
    ("mixedbread:mxbai-rerank-large-v2", "mixedbread", "mixedbread"),
    ("bedrock:amazon.rerank-v1:0?region=us-west-2", "boto3", "bedrock"),
    ("llm:gpt-4o-mini", "openai", "llm"),
]


@pytest.mark.parametrize(("spec", "package", "extra"), BACKENDS, ids=[b[2] for b in BACKENDS])
def test_a_backend_without_its_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch, spec: str, package: str,
                                                   extra: str) -> None:
    hide(monkeypatch, package)
    reranker = Reranker(spec, api_key="sk-test-not-used")  # nothing is imported at construction
    with pytest.raises(ImportError) as info:
        reranker.warmup()
    assert_names_extra(info.value, extra, info.value.name or "")
    assert (info.value.name or "").startswith(package)


def test_the_fast_path_without_a_runtime_names_both_extras(monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "onnxruntime")
    hide(monkeypatch, "openvino")
    with pytest.raises(ImportError) as info:
        Reranker("cross-encoder:some/model?quantize=int8").warmup()
    assert isinstance(info.value, MissingDependencyError)
    assert 'pip install "swaprank[openvino]" or "swaprank[onnx]"' in str(info.value)


@pytest.mark.parametrize("command", sorted(NEEDS))
def test_a_cli_command_without_its_extra_names_it_before_doing_anything(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: str) -> None:
    extra, modules = NEEDS[command]
    hide(monkeypatch, modules[0])
    assert cli_main([command, "--help"]) == 2  # refused before the command (and its arguments) is loaded
    err = capsys.readouterr().err
    assert f'pip install "swaprank[{extra}]"' in err and f"swaprank {command} needs the {extra!r} extra" in err
    assert "Traceback" not in err


def test_every_cli_extra_exists_in_pyproject() -> None:
    """The command's error names an extra pip can install."""
    from pathlib import Path

    import tomllib

    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert {extra for extra, _ in NEEDS.values()} <= set(extras)
