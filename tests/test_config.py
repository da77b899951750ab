"""Config strings: grammar, aliases, typed options, chains, env default, round trip."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_unknown_backend_suggests_the_closest_then_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown backend 'cohre'; did you mean 'cohere'\? valid backends: "
                                          r".*cohere.*cross-encoder") as e:
        parse_spec("cohre:rerank-v3.5")
    assert "ce=cross-encoder" in str(e.value)
    assert isinstance(e.value, ValueError)


def test_unknown_option_suggests_the_closest_then_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'max_len' for backend 'cross-encoder'; did you mean "
                                          r"'max_length'\? valid options: activation, aggregate, batch_size, "
                                          r"calibration, device, dtype"):
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
    spec = build_spec("cross-encoder", "m", {"instruction": "cuda:0&x|y?z"})
    text = format_spec(spec)
    assert "&x" not in text and "|" not in text.split("?", 1)[1]
    assert parse_spec(text) == spec
    assert parse_chain(format_chain((spec, spec))) == (spec, spec)


_option_values = st.fixed_dictionaries(
    {},
    optional={
        "instruction": st.text(min_size=1, max_size=12).filter(lambda s: s.strip() == s),
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


# ------------------------------------------------------------- hints for what a new user writes (issue 25)


def test_a_bare_hub_id_suggests_the_cross_encoder_spec_keeping_its_case() -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec("cross-encoder/ms-marco-MiniLM-L-6-v2")
    message = str(info.value)
    assert message.startswith("'cross-encoder/ms-marco-MiniLM-L-6-v2' names no backend: did you mean "
                              '"cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"?')
    assert "unknown backend" not in message and "valid backends: " in message
    with pytest.raises(ConfigError, match=r'did you mean "cross-encoder:BAAI/bge-reranker-base"\?'):
        parse_chain("cohere:rerank-v3.5 | BAAI/bge-reranker-base?max_length=256")


def test_a_bare_unknown_name_says_how_a_config_string_is_written() -> None:
    with pytest.raises(ConfigError, match=r"unknown backend 'ms-marco-MiniLM-L-6-v2'; valid backends: .* a config "
                                          r"string is backend:model, e\.g\. cross-encoder:<hub id or directory>"):
        parse_spec("ms-marco-MiniLM-L-6-v2")
    with pytest.raises(ConfigError, match=r"unknown backend 'cohre'; did you mean 'cohere'\?"):
        parse_spec("cohre")


@pytest.mark.parametrize(("text", "meant"), [
    ("crossencoder:m", "cross-encoder"), ("text-embedding-inference:m", "text-embeddings-inference"),
    ("VOYAGER:m", "voyage")])
def test_misspelled_backends_and_aliases_get_a_suggestion(text: str, meant: str) -> None:
    with pytest.raises(ConfigError, match=rf"did you mean '{meant}'\? valid backends"):
        parse_spec(text)


def test_a_misspelled_option_gets_a_suggestion_before_the_list() -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec("cross-encoder:m?quantise=int8")
    assert str(info.value).startswith("unknown option 'quantise' for backend 'cross-encoder'; did you mean "
                                      "'quantize'? valid options: ")


@pytest.mark.parametrize(("option", "argument"), [("top_n=3", "top_n"), ("top_k=3", "top_n"),
                                                  ("threshold=0.2", "score_threshold"),
                                                  ("min_results=1", "min_results"),
                                                  ("on_error=passthrough", "on_error")])
def test_reranker_arguments_in_the_string_say_where_they_belong(option: str, argument: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(f"cross-encoder:m?{option}")
    name = option.split("=")[0]
    assert str(info.value).startswith(f"'{name}' is not a config-string option of backend 'cross-encoder': "
                                      f"{argument} is an argument of Reranker and of the adapters, e.g. "
                                      f"Reranker(model, {argument}=...)")


def test_a_key_in_the_string_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec("cross-encoder:m?api_key=sk-live-123456")
    assert "a credential never goes in a config string" in str(info.value) and "pass api_key=" in str(info.value)
    assert "sk-live" not in str(info.value)


def test_a_bad_choice_suggests_the_closest_value() -> None:
    with pytest.raises(ConfigError, match=r"option 'runtime' must be one of auto, torch, onnx, openvino; got 'onxx' "
                                          r"\(did you mean 'onnx'\?\)"):
        parse_spec("cross-encoder:m?runtime=onxx")


# ------------------------------------------------- every config error at construction, never a fallback


@pytest.mark.parametrize(("device", "hint"), [("gpu", "did you mean 'cuda'?"), ("GPU", "did you mean 'cuda'?"),
                                              ("cuda0", "did you mean 'cuda:0'?"), ("cdua", "did you mean 'cuda'?"),
                                              ("auto", "leave device out")])
@pytest.mark.parametrize("backend", ["cross-encoder", "colbert"])
def test_a_bad_device_is_refused_when_parsed(backend: str, device: str, hint: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_spec(f"{backend}:org/model?device={device}")
    assert str(info.value).startswith(f"option 'device' got '{device}': {hint}")
    assert "valid: cpu, cuda, cuda:N, mps" in str(info.value)


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:1", "mps", "xpu:0", "CPU"])
def test_valid_device_names_parse(device: str) -> None:
    assert parse_spec(f"cross-encoder:org/model?device={device}").get("device") == device


def test_a_bad_device_inside_a_chain_fails_at_construction_not_as_a_fallback() -> None:

    with pytest.raises(ConfigError, match="option 'device' got 'gpu'"):
        Reranker("cross-encoder:org/model?device=gpu | scripted")


@pytest.mark.parametrize("backend", ["cross-encoder", "colbert"])
@pytest.mark.parametrize("model", ["/nonexistent/swaprank-model", "./no-such-model", "../no-such-model",
                                   "~/no-such-swaprank-model"])
def test_a_missing_model_directory_fails_at_construction_naming_it(backend: str, model: str) -> None:
    from swaprank.langchain import RerankCompressor

    for build in (lambda s: Reranker(s), lambda s: Reranker(f"{s} | scripted"),
                  lambda s: RerankCompressor(model=s)):
        with pytest.raises(ConfigError, match=rf"{backend} model directory does not exist: '{re.escape(model)}'"):
            build(f"{backend}:{model}")


def test_a_file_given_as_a_model_directory_says_so(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"")
    with pytest.raises(ConfigError, match="cross-encoder model directory is a file, not a model directory"):
        Reranker(f"cross-encoder:{tmp_path / 'model.bin'}")


def test_options_the_runtime_cannot_honour_fail_at_construction() -> None:
    with pytest.raises(ConfigError, match="device=cuda applies to runtime=torch; runtime=onnx runs on the CPU"):
        Reranker("cross-encoder:org/model?runtime=onnx&device=cuda | scripted")
    with pytest.raises(ConfigError, match="quantize=int8 runs on runtime=openvino or runtime=onnx, not torch"):
        Reranker("cross-encoder:org/model?runtime=torch&quantize=int8")
    with pytest.raises(ConfigError, match="instruction= is empty"):
        Reranker("cross-encoder:org/model?instruction=%20")


def test_parsing_alone_does_not_look_at_the_disk() -> None:
    """A spec may be parsed on one machine and served on another: only building a Reranker checks paths."""
    assert parse_spec("cross-encoder:/models/elsewhere").model == "/models/elsewhere"
