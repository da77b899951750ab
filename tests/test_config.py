"""Config strings: grammar, aliases, typed options, chains, env default, round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swaprank import BackendSpec, ConfigError, Reranker, format_chain, format_spec, parse_chain, parse_spec
from swaprank.config import DEFAULT_MODEL, build_spec
from tests import scripted_backend


@pytest.fixture(autouse=True)
def _scripted() -> None:
    scripted_backend.install()


def test_full_spec_with_typed_options() -> None:
    spec = parse_spec("cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2?device=cpu&max_length=256&batch_size=8")
    assert spec.backend == "cross-encoder"
    assert spec.model == "cross-encoder/ms-marco-MiniLM-L-6-v2"
    assert spec.option_dict == {"device": "cpu", "max_length": 256, "batch_size": 8}
    assert isinstance(spec.get("max_length"), int)


def test_alias_and_default_model() -> None:
    assert parse_spec("ce:some/model") == parse_spec("cross-encoder:some/model")
    assert parse_spec("ce").model == "cross-encoder/ms-marco-MiniLM-L-6-v2"
    assert parse_spec("scripted?fail=true") == BackendSpec("scripted", "default", (("fail", True),))
    assert parse_spec("CE:m").backend == "cross-encoder"


def test_model_may_contain_colons_and_paths() -> None:
    assert parse_spec("cross-encoder:/abs/path/model").model == "/abs/path/model"
    assert parse_spec(r"cross-encoder:C:\models\ce?device=cpu").model == r"C:\models\ce"


def test_unknown_backend_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown backend 'cohre'; valid backends: .*cohere.*cross-encoder") as e:
        parse_spec("cohre:rerank-v3.5")
    assert "ce=cross-encoder" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'max_len' for backend 'cross-encoder'; valid options: "
                                          r"activation, aggregate, batch_size, calibration, device, dtype"):
        parse_spec("cross-encoder:m?max_len=3")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cross-encoder:m?batch_size=big", "option 'batch_size' expects int, got 'big'"),
        ("cross-encoder:m?batch_size=0", "option 'batch_size' must be >= 1"),
        ("cross-encoder:m?batch_size=1.5", "option 'batch_size' expects int"),
        ("cross-encoder:m?long_docs=split", "option 'long_docs' must be one of window, truncate"),
        ("cross-encoder:m?trust_remote_code=maybe", "option 'trust_remote_code' expects bool"),
        ("cross-encoder:m?device", "option 'device' in .* must look like name=value"),
        ("cross-encoder:m?device=cpu&device=cuda", "option 'device' given twice"),
        ("", "the model config string is empty"),
        ("tei", "backend .tei. has no default model; write it as tei:<model>"),
        ("a | | b", "empty entry in fallback chain"),
    ],
)
def test_bad_values_are_config_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_chain(text)


def test_chain_parses_in_order() -> None:
    chain = parse_chain("scripted:a?fail=true | ce:m|scripted:b")
    assert [(s.backend, s.model) for s in chain] == [("scripted", "a"), ("cross-encoder", "m"), ("scripted", "b")]
    assert format_chain(chain) == "scripted:a?fail=true | cross-encoder:m | scripted:b"


def test_env_default_and_builtin_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWAPRANK_MODEL", "scripted:from-env")
    assert Reranker().model == "scripted:from-env"
    monkeypatch.delenv("SWAPRANK_MODEL")
    assert Reranker().model == DEFAULT_MODEL


def test_format_escapes_values_that_contain_separators() -> None:
    spec = build_spec("cross-encoder", "m", {"device": "cuda:0&x|y?z"})
    text = format_spec(spec)
    assert "&x" not in text and "|" not in text.split("?", 1)[1]
    assert parse_spec(text) == spec
    assert parse_chain(format_chain((spec, spec))) == (spec, spec)


_option_values = st.fixed_dictionaries(
    {},
    optional={
        "device": st.text(min_size=1, max_size=12).filter(lambda s: s.strip() == s),
        "max_length": st.integers(min_value=8, max_value=4096),
        "batch_size": st.integers(min_value=1, max_value=512),
        "long_docs": st.sampled_from(["window", "truncate"]),
        "trust_remote_code": st.booleans(),
        "window_overlap": st.integers(min_value=0, max_value=100),
    },
)


@given(model=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_./:\\-]{0,40}", fullmatch=True), options=_option_values)
def test_round_trip_parse_format(model: str, options: dict[str, object]) -> None:
    spec = build_spec("cross-encoder", model, options)
    assert parse_spec(format_spec(spec)) == spec
    assert parse_spec(str(spec)) == spec
