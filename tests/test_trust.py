"""Trust boundaries of a config string (issue 24): a config string is code.

- Every option that can run code, read local files or send a credential elsewhere carries a ``risk``;
  ``trusted=False`` (Reranker, parse_spec, parse_chain, the CLI's ``--untrusted-model``, serve's
  settings) refuses each one with ``UntrustedOptionError`` naming the option and the fix; the default
  (trusted) still takes them.
- A key from the environment (or the AWS chain) goes only to an approved host: the vendor's own,
  loopback, ``SWAPRANK_ALLOWED_HOSTS``. Anything else is ``UnapprovedHostError`` when the backend is
  built: the fake servers below see zero requests.
- No error message or repr built from a config string quotes a credential.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from swaprank import (
    ConfigError,
    Reranker,
    UnapprovedHostError,
    UntrustedOptionError,
    parse_chain,
    parse_spec,
)
from swaprank.backends.hosted import HostedBackend
from swaprank.backends.registry import Registry, default_registry
from swaprank.cli import main as cli_main
from swaprank.config import build_spec
from swaprank.redaction import MASK, is_secret_name
from swaprank.serve.settings import ServeSettings
from tests.fakes import FakeServer, spec_for
from tests.fakes.helpers import DOCS, FAST, QUERY, TEST_KEY

pytest_plugins = ["tests.fakes.fixtures"]

USER, PASSWORD = "alice-user", "s3cret-pw-9f2"
USERINFO = f"{USER}:{PASSWORD}@"
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNlY3JldA"
SECRETS = (USER, PASSWORD, JWT, "c2lnbmF0dXJl")


def assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"{secret!r} leaked into: {text!r}"


# ----------------------------------------------------------------------------- secret names

SECRET_NAMES = [
    "accesskey", "access_key", "AccessKey", "jwt", "sig", "signature", "X-Amz-Security-Token", "x-amz-signature",
    "X-Amz-Credential", "password", "passwd", "pwd", "client_secret", "clientSecret", "token", "access_token",
    "id_token", "refresh_token", "api_key", "apikey", "api-key", "x-api-key", "key", "secret", "auth",
    "authorization", "session_token", "sessionToken", "code", "subscription-key", "private_key",
    "aws_secret_access_key", "sas_token", "cookie", "X-Goog-Signature", "hmac", "passphrase",
]
# Not secrets: tuning knobs, and the SAS token's public fields (sv: service version, se: expiry, sp:
# permissions, sr: resource) whose only secret is ``sig``.
PLAIN_NAMES = [
    "timeout", "max_tokens_per_doc", "max_tokens", "top_n", "tokenizer", "truncate_prompt_tokens", "sv", "se", "sp",
    "sr", "spr", "region", "profile", "model", "instruction", "base_url", "trust_remote_code", "max_length",
    "device", "doc_cache", "author", "keyword", "window_tokens", "",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_names_are_masked(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_plain_names_are_not_masked(name: str) -> None:
    assert not is_secret_name(name)


# ----------------------------------------------------------------------------- no echo of credentials

LEAKY_STRINGS = [
    # _split_options: a fragment without "=" (the string is quoted, redacted)
    (f"jina:m?base_url=http://{USERINFO}h.test/?jwt={JWT}&stray", "must look like name=value"),
    # ... and a fragment that is itself a token
    (f"jina:m?base_url=http://{USERINFO}h.test&{JWT}", "must look like name=value"),
    # parse_spec: an option given twice
    (f"jina:m?base_url=http://{USERINFO}h.test&timeout=1&timeout=2&jwt={JWT}", "given twice"),
    # parse_chain: an empty entry
    (f"jina:m?base_url=http://{USERINFO}h.test&jwt={JWT} | | cohere", "empty entry"),
    # Option.coerce: a wrong type, a value not among the choices
    (f"jina:m?timeout=http://{USERINFO}h.test/?jwt={JWT}", "expects float"),
    (f"jina:m?long_docs=http://{USERINFO}h.test/?sig={JWT}", "must be one of"),
    (f"jina:m?api_version={JWT}", "unknown option"),
    # an unknown backend: "user:pass@host" written without its backend and scheme
    (f"{USERINFO}h.test:8080?jwt={JWT}", "unknown backend"),
]


@pytest.mark.parametrize(("text", "message"), LEAKY_STRINGS)
def test_config_errors_never_quote_credentials(text: str, message: str) -> None:
    for trusted in (True, False):
        with pytest.raises(ConfigError, match=message) as caught:
            parse_chain(text, trusted=trusted)
        assert_clean(str(caught.value))
        assert_clean(repr(caught.value))


def test_a_secret_named_value_of_the_wrong_type_is_masked() -> None:
    table = {"api_key": __import__("swaprank").Option(int, None, "a key")}
    registry = Registry()
    registry.register("keyed", lambda spec, api_key=None: None, options=table)
    with pytest.raises(ConfigError, match=r"expects int, got \*\*\*") as caught:
        parse_spec(f"keyed:m?api_key={JWT}", registry=registry)
    assert_clean(str(caught.value))


@pytest.mark.parametrize("model", [f"{USERINFO}h.test:8080", f"ftp://{USERINFO}h.test", f"http//{USERINFO}h.test"])
def test_tei_address_check_never_quotes_credentials(model: str) -> None:
    with pytest.raises(ConfigError, match="tei needs the server URL") as caught:
        Reranker(f"tei:{model}").warmup()
    assert_clean(str(caught.value))


def test_self_hosted_address_check_never_quotes_credentials() -> None:
    with pytest.raises(ConfigError, match="vllm is self-hosted") as caught:
        Reranker(f"vllm:m?base_url={USERINFO}h.test:8000").warmup()
    assert_clean(str(caught.value))


def test_repr_masks_url_credentials_and_secret_query_parameters() -> None:
    base = f"http://{USERINFO}127.0.0.1:9/v1/rerank?accesskey=AK{PASSWORD}&jwt={JWT}&sig={JWT}&sv=2021-08-06"
    reranker = Reranker(f"jina:m?base_url={base.replace('&', '%26')}")
    shown = unquote(repr(reranker))
    assert_clean(shown)
    assert "sv=2021-08-06" in shown and MASK in shown
    assert reranker.specs[0].get("base_url") == base  # the real value still builds the backend


# ----------------------------------------------------------------------------- marked options


def _registrations() -> list[Any]:
    return [default_registry().registration(name) for name in default_registry().names()]


def _risky() -> list[tuple[str, str, str]]:
    out = []
    for found in _registrations():
        for key, option in (found.options or {}).items():
            if option.risk is not None:
                out.append((found.name, key, option.risk))
    return out


def test_the_options_that_matter_are_marked() -> None:
    risky = {(backend, key): risk for backend, key, risk in _risky()}
    assert risky[("cross-encoder", "trust_remote_code")] == "runs-code"
    assert risky[("colbert", "trust_remote_code")] == "runs-code"
    assert risky[("cross-encoder", "calibration")] == "reads-files"
    assert risky[("bedrock", "profile")] == "sends-credentials"
    hosted = [f for f in _registrations() if isinstance(f.factory, type) and issubclass(f.factory, HostedBackend)]
    assert len(hosted) >= 10
    for found in hosted:
        assert found.options is not None
        if "base_url" in found.options:
            assert risky[(found.name, "base_url")] == "sends-credentials", found.name
        assert risky[(found.name, "tokenizer")] == "reads-files", found.name
    for _, _, risk in _risky():
        assert risk in ("runs-code", "reads-files", "sends-credentials")
    for found in _registrations():
        for option in (found.options or {}).values():
            assert bool(option.risk) == bool(option.risk_reason)


def _value(option_type: type) -> str:
    return "true" if option_type is bool else "http://h.test:8000"


@pytest.mark.parametrize(("backend", "key", "risk"), _risky())
def test_untrusted_strings_refuse_each_marked_option(backend: str, key: str, risk: str) -> None:
    found = default_registry().registration(backend)
    model = "http://127.0.0.1:8080" if backend == "tei" else (found.default_model or "m")
    assert found.options is not None
    text = f"{backend}:{model}?{key}={_value(found.options[key].type)}"
    spec = parse_spec(text)  # trusted (the default) takes it
    assert spec.get(key) is not None
    with pytest.raises(UntrustedOptionError) as caught:
        parse_spec(text, trusted=False)
    error = caught.value
    assert isinstance(error, ConfigError)
    if backend != "tei":  # tei's model part (the address) is refused first
        assert error.option == key and error.backend == backend
        assert f"option {key!r} of backend {backend!r}" in str(error) and risk in str(error)
    assert "set it in code" in str(error) and "trusted=True" in str(error)


def test_untrusted_strings_keep_everything_else() -> None:
    text = ("cohere:rerank-v3.5?timeout=5&max_retries=1&instruction=legal | "
            "cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2?device=cpu&max_length=256&long_docs=truncate")
    assert parse_chain(text, trusted=False) == parse_chain(text)


@pytest.mark.parametrize("model", ["/models/ce", "./ce", "../ce", "~/ce", "models/../../etc", "C:\\models\\ce",
                                   "a/b/c", "file:///models/ce"])
@pytest.mark.parametrize("backend", ["cross-encoder", "colbert"])
def test_untrusted_strings_refuse_a_local_model_path(backend: str, model: str) -> None:
    assert parse_spec(f"{backend}:{model}").model == model
    with pytest.raises(UntrustedOptionError, match=r"the model is a local path.*trusted=True") as caught:
        parse_spec(f"{backend}:{model}", trusted=False)
    assert caught.value.option == "model"


def test_untrusted_strings_take_a_hub_id_unless_it_exists_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    hub_id = "cross-encoder/ms-marco-MiniLM-L-6-v2"
    assert parse_spec(f"cross-encoder:{hub_id}", trusted=False).model == hub_id
    assert parse_spec("colbert", trusted=False).model  # the default model is a hub id
    (tmp_path / "cross-encoder" / "ms-marco-MiniLM-L-6-v2").mkdir(parents=True)  # now it loads from disk
    with pytest.raises(UntrustedOptionError, match="local path"):
        parse_spec(f"cross-encoder:{hub_id}", trusted=False)


def test_untrusted_strings_refuse_a_tei_address() -> None:
    with pytest.raises(UntrustedOptionError, match=r"tei.*the model part is the server's address"):
        parse_spec("tei:http://127.0.0.1:8080", trusted=False)


def test_untrusted_strings_refuse_options_no_table_vouches_for() -> None:
    registry = Registry()
    registry.register("plugin", lambda spec, api_key=None: None)  # no option table: takes anything
    assert parse_spec("plugin:m?path=/etc/passwd", registry=registry).get("path") == "/etc/passwd"
    assert parse_spec("plugin:m", registry=registry, trusted=False).model == "m"
    with pytest.raises(UntrustedOptionError, match="declares no option table"):
        parse_spec("plugin:m?path=/etc/passwd", registry=registry, trusted=False)


def test_reranker_trusted_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "cohere:rerank-v3.5 | cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2?trust_remote_code=true"
    assert Reranker(text).specs[1].get("trust_remote_code") is True  # trusted by default (nothing loads yet)
    with pytest.raises(UntrustedOptionError, match="'trust_remote_code' of backend 'cross-encoder'"):
        Reranker(text, trusted=False)
    with pytest.raises(ConfigError, match="trusted must be True or False"):
        Reranker(text, trusted="no")  # type: ignore[arg-type]
    # SWAPRANK_MODEL is the operator's own setting: read as trusted even by an untrusted Reranker.
    monkeypatch.setenv("SWAPRANK_MODEL", text)
    assert Reranker(None, trusted=False).specs == Reranker(text).specs


def test_both_adapters_take_untrusted_strings() -> None:
    from swaprank.langchain import RerankCompressor
    from swaprank.llama_index import RerankPostprocessor

    text = "cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2?trust_remote_code=true"
    for adapter in (RerankCompressor, RerankPostprocessor):
        assert adapter(model=text).reranker.trusted is True
        with pytest.raises(UntrustedOptionError, match="trust_remote_code"):
            adapter(model=text, trusted=False)
        component = adapter(model="cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2", trusted=False)
        with pytest.raises(UntrustedOptionError):
            component.model = text  # a live setting is checked like the constructor
        assert component.model == "cross-encoder:cross-encoder/ms-marco-MiniLM-L-6-v2"


def test_serve_settings_and_cli_take_untrusted_strings(capsys: pytest.CaptureFixture[str]) -> None:
    text = "jina:m?base_url=http://h.test:8000"
    assert ServeSettings(model=text).reranker_options()["trusted"] is True
    with pytest.raises(UntrustedOptionError, match="'base_url' of backend 'jina'"):
        ServeSettings(model=text, trusted=False)
    assert ServeSettings(model="jina:m", trusted=False).reranker_options()["trusted"] is False

    assert cli_main(["rerank", "--untrusted-model", "--model", "cross-encoder:/models/ce", "-q", QUERY, "a"]) == 2
    err = capsys.readouterr().err
    assert "UntrustedOptionError" in err and "local path" in err
    assert cli_main(["batch", "--untrusted-model", "--model", text, "--input", "/nonexistent.jsonl",
                     "--output", "/nonexistent-out"]) == 2
    assert "'base_url' of backend 'jina' is refused" in capsys.readouterr().err
    for command in ("eval", "bench"):
        assert cli_main([command, "--untrusted-model", "--model", text, "--data", "/nonexistent"]) == 2
        assert "'base_url' of backend 'jina' is refused in an untrusted config string" in capsys.readouterr().err
        assert cli_main([command, "--model", text, "--data", "/nonexistent"]) == 2  # trusted: fails on the data
        assert "untrusted" not in capsys.readouterr().err

    import argparse

    from swaprank.cli.serve import add_arguments, settings_from

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(UntrustedOptionError):
        settings_from(parser.parse_args(["--untrusted-model", "--model", text]))
    assert settings_from(parser.parse_args(["--model", text])).trusted is True


# ----------------------------------------------------------------------------- where env keys may go

APPROVED_NAME = "reranker.corp.test"  # resolves to the fakes' 127.0.0.1, but is not loopback by name
KEYED = ["cohere", "voyage", "jina", "pinecone", "zeroentropy", "mixedbread", "nvidia", "vllm", "llamacpp",
         "infinity", "bedrock"]


@pytest.fixture
def corp_host(monkeypatch: pytest.MonkeyPatch) -> str:
    """A non-loopback host name for the fake servers: the name resolves to 127.0.0.1 (this process's
    resolver only); what swaprank decides about it is untouched."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == APPROVED_NAME else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setenv("NO_PROXY", f"127.0.0.1,localhost,{APPROVED_NAME}")
    monkeypatch.setenv("no_proxy", f"127.0.0.1,localhost,{APPROVED_NAME}")
    monkeypatch.delenv("SWAPRANK_ALLOWED_HOSTS", raising=False)
    return APPROVED_NAME


def _env_key(vendor: str, monkeypatch: pytest.MonkeyPatch) -> None:
    names = default_registry().registration(vendor).factory.key_env  # type: ignore[union-attr]
    for name in names:
        monkeypatch.delenv(name, raising=False)
    if names:
        monkeypatch.setenv(names[0], TEST_KEY)


def _corp_spec(server: FakeServer, host: str) -> str:
    return spec_for(server.vendor, f"http://{host}:{server.port}", **FAST)


@pytest.mark.parametrize("vendor", KEYED)
def test_an_env_key_never_goes_to_an_unapproved_host(server: FakeServer, corp_host: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _env_key(server.vendor, monkeypatch)
    reranker = Reranker(_corp_spec(server, corp_host))
    with pytest.raises(UnapprovedHostError) as caught:
        reranker.rerank(QUERY, DOCS)
    error = caught.value
    assert isinstance(error, ConfigError) and error.host == corp_host and error.backend == server.vendor
    assert f"SWAPRANK_ALLOWED_HOSTS={corp_host}" in str(error)
    assert ("AWS credentials" if server.vendor == "bedrock" else "api_key=") in str(error)
    assert TEST_KEY not in str(error)
    assert server.requests == [] and server.gets == []


@pytest.mark.parametrize("allowed", [APPROVED_NAME, f"other.test, {APPROVED_NAME}:8000", "*.corp.test",
                                     f"https://{APPROVED_NAME.upper()}/"])
@pytest.mark.parametrize("vendor", KEYED)
def test_an_approved_host_gets_the_env_key(server: FakeServer, corp_host: str, allowed: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _env_key(server.vendor, monkeypatch)
    monkeypatch.setenv("SWAPRANK_ALLOWED_HOSTS", allowed)
    result = Reranker(_corp_spec(server, corp_host)).rerank(QUERY, DOCS)
    assert len(result) == len(DOCS)
    assert server.requests
    if server.vendor != "bedrock":  # Bedrock signs; the fake checks the signature instead
        assert server.sent_key(server.requests[-1].headers) == TEST_KEY


@pytest.mark.parametrize("vendor", ["cohere", "jina", "vllm", "nvidia"])
def test_a_key_given_in_code_goes_where_the_same_code_says(server: FakeServer, corp_host: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    _env_key(server.vendor, monkeypatch)
    result = Reranker(_corp_spec(server, corp_host), api_key=TEST_KEY).rerank(QUERY, DOCS)
    assert len(result) == len(DOCS) and server.sent_key(server.requests[-1].headers) == TEST_KEY


@pytest.mark.parametrize("vendor", ["jina", "vllm"])
def test_loopback_is_approved(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _env_key(server.vendor, monkeypatch)
    for host in ("127.0.0.1", "localhost"):
        server.reset()
        server.api_key = TEST_KEY
        assert len(Reranker(spec_for(server.vendor, f"http://{host}:{server.port}", **FAST)).rerank(QUERY, DOCS))
        assert server.sent_key(server.requests[-1].headers) == TEST_KEY


@pytest.mark.parametrize("vendor", ["vllm"])
def test_without_a_key_any_host_is_fine(server: FakeServer, corp_host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    server.api_key = None
    assert len(Reranker(_corp_spec(server, corp_host)).rerank(QUERY, DOCS)) == len(DOCS)
    assert server.sent_key(server.requests[-1].headers) is None


@pytest.mark.parametrize(("backend", "base_url"), [
    ("jina", "https://api.jina.ai/v1"), ("cohere", "https://api.cohere.com"), ("voyage", "https://api.voyageai.com"),
    ("mixedbread", "https://api.mixedbread.com/v1"), ("zeroentropy", "https://API.zeroentropy.dev./v1"),
    ("pinecone", "https://api.pinecone.io"), ("nvidia", "https://ai.api.nvidia.com/v1/retrieval"),
])
def test_the_vendors_own_host_is_always_approved(backend: str, base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _env_key(backend, monkeypatch)
    monkeypatch.delenv("SWAPRANK_ALLOWED_HOSTS", raising=False)
    reranker = Reranker(f"{backend}:m?base_url={base_url}")
    reranker.warmup()  # builds the client; sends nothing
    reranker.close()


@pytest.mark.parametrize("base_url", [
    "http://127.0.0.1@evil.test/", "http://evil.test#@127.0.0.1/", "http://127.0.0.1.evil.test/",
    "http://localhost.evil.test/", "http://evil.test\\@127.0.0.1/", "http://127.0.0.1\\@evil.test/",
    "http://2130706433/", "http://api.jina.ai.evil.test/", "evil.test:8000", "http://[::ffff:7f00:1]:8000/x y",
])
def test_tricky_addresses_are_not_approved(base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _env_key("jina", monkeypatch)
    monkeypatch.setenv("SWAPRANK_ALLOWED_HOSTS", "*.corp.test")
    spec = build_spec("jina", "m", {"base_url": base_url})
    with pytest.raises(UnapprovedHostError) as caught:
        Reranker(spec).warmup()
    assert TEST_KEY not in str(caught.value)


def test_the_allow_list_does_not_approve_the_bare_domain_of_a_wildcard(monkeypatch: pytest.MonkeyPatch) -> None:
    _env_key("jina", monkeypatch)
    monkeypatch.setenv("SWAPRANK_ALLOWED_HOSTS", "*.corp.test")
    with pytest.raises(UnapprovedHostError, match=r"'corp\.test'"):
        Reranker("jina:m?base_url=http://corp.test/").warmup()
    Reranker("jina:m?base_url=http://a.b.corp.test/").warmup()
    assert os.environ["SWAPRANK_ALLOWED_HOSTS"] == "*.corp.test"
