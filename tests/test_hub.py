"""A hub id on a machine that cannot reach the hub fails at once with one message (issue 25), instead of
a minute of huggingface_hub retries; with the model in the local cache it loads from there."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from swaprank import BackendUnavailableError, Reranker
from swaprank.backends import hub

HUB_ID = "cross-encoder/ms-marco-MiniLM-L-6-v2"


class Calls:
    def __init__(self, answer: str | None) -> None:
        self.answer, self.urls = answer, []  # type: list[str]

    def __call__(self, url: str, timeout: float) -> str | None:
        self.urls.append(url)
        return self.answer


@pytest.fixture(autouse=True)
def _online(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # huggingface_hub itself stays offline (read at import)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    hub._last.clear()
    yield
    hub._last.clear()


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What sentence-transformers is asked to load (it refuses: only the arguments matter here)."""
    import sentence_transformers

    seen: list[dict[str, Any]] = []

    def refuse(name: str, **kwargs: Any) -> Any:
        seen.append({"name": name, **kwargs})
        raise OSError("not loading in a unit test")

    monkeypatch.setattr(sentence_transformers, "CrossEncoder", refuse)
    return seen


def test_unreachable_hub_and_no_cache_is_one_error_without_retries(monkeypatch: pytest.MonkeyPatch,
                                                                   loads: list[dict[str, Any]]) -> None:
    probe = Calls("ConnectError: [Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(hub, "probe", probe)
    monkeypatch.setattr(hub, "cached", lambda model: False)
    with pytest.raises(BackendUnavailableError) as info:
        Reranker(f"cross-encoder:{HUB_ID}").warmup()
    message = str(info.value)
    assert message.startswith(f"cross-encoder '{HUB_ID}': the Hugging Face hub (https://huggingface.co) cannot be "
                              "reached (ConnectError: [Errno -3]")
    for fix in ("cross-encoder:/path/to/model", "HF_HUB_OFFLINE=1", "HF_ENDPOINT", f"hf download {HUB_ID}"):
        assert fix in message
    assert probe.urls == ["https://huggingface.co"]  # asked once, no retry
    assert loads == []  # sentence-transformers (and its retries) never ran


def test_the_probe_is_remembered_for_models_loaded_together(monkeypatch: pytest.MonkeyPatch,
                                                            loads: list[dict[str, Any]]) -> None:
    probe = Calls("ConnectError: unreachable")
    monkeypatch.setattr(hub, "probe", probe)
    monkeypatch.setattr(hub, "cached", lambda model: False)
    for model in (HUB_ID, "BAAI/bge-reranker-base"):
        with pytest.raises(BackendUnavailableError, match=model):
            Reranker(f"cross-encoder:{model}").warmup()
    assert len(probe.urls) == 1


def test_hf_endpoint_is_the_one_asked_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.internal/")
    probe = Calls("ConnectTimeout")
    monkeypatch.setattr(hub, "probe", probe)
    monkeypatch.setattr(hub, "cached", lambda model: False)
    with pytest.raises(BackendUnavailableError, match=r"the Hugging Face hub \(https://hf-mirror\.internal\)"):
        hub.prepare(HUB_ID, "cross-encoder")
    assert probe.urls == ["https://hf-mirror.internal"]


def test_unreachable_hub_with_the_model_cached_loads_from_the_cache(
        monkeypatch: pytest.MonkeyPatch, loads: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(hub, "probe", Calls("ConnectError: unreachable"))
    monkeypatch.setattr(hub, "cached", lambda model: model == HUB_ID)
    with caplog.at_level(logging.WARNING, "swaprank"), pytest.raises(BackendUnavailableError):
        Reranker(f"cross-encoder:{HUB_ID}").warmup()
    assert loads and loads[0]["name"] == HUB_ID and loads[0]["local_files_only"] is True
    assert "unreachable (ConnectError: unreachable); loading it from the local cache" in caplog.text


def test_a_reachable_hub_keeps_the_normal_download_path(monkeypatch: pytest.MonkeyPatch,
                                                        loads: list[dict[str, Any]]) -> None:
    monkeypatch.setattr(hub, "probe", Calls(None))
    with pytest.raises(BackendUnavailableError, match="could not load cross-encoder"):
        Reranker(f"cross-encoder:{HUB_ID}").warmup()
    assert loads and "local_files_only" not in loads[0]


def test_offline_mode_and_local_directories_never_probe(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    probe = Calls("ConnectError: unreachable")
    monkeypatch.setattr(hub, "probe", probe)
    assert hub.prepare(str(tmp_path), "cross-encoder") is False
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.prepare(HUB_ID, "cross-encoder") is False
    assert probe.urls == []


def test_a_chain_falls_back_when_the_hub_is_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The configuration is right; this machine cannot fetch the model: the next backend serves."""
    from tests import scripted_backend

    scripted_backend.install()
    monkeypatch.setattr(hub, "probe", Calls("ConnectError: unreachable"))
    monkeypatch.setattr(hub, "cached", lambda model: False)
    result = Reranker(f"cross-encoder:{HUB_ID} | scripted").rerank("q", ["s=0.2 a", "s=0.9 b"])
    assert result.model_name == "scripted:default" and [d.text for d in result] == ["s=0.9 b", "s=0.2 a"]
