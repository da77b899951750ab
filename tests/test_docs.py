"""The documentation site (mkdocs.yml, docs/) cannot rot: its code runs, its reference is generated,
its pages cover the code, and it builds with ``mkdocs build --strict``.

The block rules and the offline stand-ins are tests/doc_blocks.py's, shared with tests/test_readme.py.
``python -m tests.test_docs --write`` rewrites the generated config reference (docs/reference/config.md).
"""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import doc_blocks as db
from tests.assets import REPO


def page(name: str) -> str:
    return (db.DOCS / name).read_text(encoding="utf-8")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def fake_ollama() -> Iterator[Any]:
    yield from db.fake_ollama_server()


@pytest.fixture(scope="module")
def docs_env(hub_cache: Path, fake_cohere: Any, fake_ollama: Any) -> dict[str, str]:
    return db.offline_env(hub_cache, fake_cohere.url)


# ----------------------------------------------------------------------------- code blocks


def test_docs_code_blocks_follow_the_rules() -> None:
    blocks = db.all_blocks(db.docs_pages())
    assert len(blocks) >= 20, "the docs lost their examples"
    db.check_block_rules(blocks)
    for block in blocks:
        if block.lang == "toml":
            db.parse_toml(block.source)


PYTHON_PAGES = [p for p in db.docs_pages() if any(b.lang == "python" for b in db.blocks_of(p))]
BASH_BLOCKS = [b for b in db.all_blocks([db.README, *db.docs_pages()]) if b.lang == "bash" and not b.no_test]


def test_docs_have_runnable_examples() -> None:
    assert len(PYTHON_PAGES) >= 8, "the docs lost their python examples"
    assert BASH_BLOCKS, "the docs show no runnable shell example"


@pytest.mark.slow
@pytest.mark.parametrize("path", PYTHON_PAGES, ids=[db.rel(p) for p in PYTHON_PAGES])
def test_docs_python_blocks_run(path: Path, docs_env: dict[str, str], fake_cohere: Any, tmp_path: Path) -> None:
    """One fresh interpreter per page (each page's blocks in order, each in a fresh namespace)."""
    blocks = [b for b in db.blocks_of(path) if b.lang == "python"]
    fake_cohere.reset()
    outputs = db.run_python_blocks(blocks, docs_env, tmp_path)
    assert set(outputs) == {b.where for b in blocks}
    if db.rel(path) == "docs/backends/hosted.md":
        assert fake_cohere.requests, "the Cohere example never reached the fake Cohere server"


@pytest.mark.slow
@pytest.mark.parametrize("block", BASH_BLOCKS, ids=[b.where for b in BASH_BLOCKS])
def test_docs_bash_blocks_run(block: db.Block, docs_env: dict[str, str], request: pytest.FixtureRequest) -> None:
    if "../shared/" in block.source:
        request.getfixturevalue("scifact")  # skips loudly (QUALITY TEST SKIPPED) without ../shared
    db.run_bash_block(block, docs_env)


# ----------------------------------------------------------------------------- the pages cover the code


def test_config_reference_matches_the_code() -> None:
    expected = db.options_markdown()
    actual = db.generated_region(db.CONFIG_REFERENCE.read_text(encoding="utf-8"))
    assert actual == expected, (
        "docs/reference/config.md differs from the backends' option tables; "
        "run `.venv/bin/python -m tests.test_docs --write` and review the diff"
    )


def test_backend_pages_name_every_backend() -> None:
    from swaprank import available_backends

    text = "\n".join(p.read_text(encoding="utf-8") for p in sorted((db.DOCS / "backends").glob("*.md")))
    missing = [name for name in available_backends() if f"`{name}:" not in text]
    assert not missing, f"backends no page under docs/backends/ describes: {missing}"


def test_errors_page_lists_every_error_type() -> None:
    import swaprank

    errors = page("errors.md")
    for name in swaprank.__all__:
        obj = getattr(swaprank, name)
        if isinstance(obj, type) and issubclass(obj, swaprank.SwapRankError):
            assert f"`{name}`" in errors, f"error type {name} is not in docs/errors.md"
    for attribute in ("vendor", "status", "request_id", "attempts"):
        assert f"`{attribute}`" in errors


def test_concepts_page_documents_every_constructor_argument() -> None:
    from swaprank import Reranker
    from swaprank.langchain import RerankCompressor
    from swaprank.llama_index import RerankPostprocessor

    rows = {row[0].strip("`"): row for row in db.table_rows(db.section(page("concepts.md"), "Arguments"))}
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
    assert not missing, f"arguments missing from docs/concepts.md's Arguments table: {missing}"
    stale = sorted(set(rows) - set(expected))
    assert not stale, f"docs/concepts.md documents arguments that no longer exist: {stale}"
    for name, row in rows.items():
        if name in ("model", "top_n", "metadata_mode"):
            continue  # defaults differ per class and are spelled out in the row
        assert row[1] == f"`{expected[name]!r}`", f"{name}: the docs say {row[1]}, the code says {expected[name]!r}"


def test_cli_page_documents_every_command() -> None:
    from swaprank.cli import _COMMANDS

    cli = page("cli.md")
    for command in _COMMANDS:
        assert f"`swaprank {command}`" in cli, f"`swaprank {command}` is not in docs/cli.md"


def test_getting_started_lists_every_extra() -> None:
    extras = set(db.pyproject_extras())
    text = page("getting-started.md")
    listed = {row[0].strip("`") for row in db.table_rows(db.section(text, "Install"))}
    assert extras <= listed, f"extras missing from docs/getting-started.md's table: {sorted(extras - listed)}"
    assert listed <= extras, f"docs/getting-started.md lists extras pyproject.toml lacks: {sorted(listed - extras)}"
    every_page = "\n".join(p.read_text(encoding="utf-8") for p in db.docs_pages())
    named = {e.strip() for group in re.findall(r"swaprank\[([^\]]+)\]|\.\[([^\]]+)\]", every_page)
             for part in group if part for e in part.split(",")}
    assert named <= extras, f"the docs name extras pyproject.toml lacks: {sorted(named - extras)}"


def test_model_numbers_are_measured() -> None:
    """Every number in "Choosing a model" appears verbatim in a results file: none is invented."""
    from tests.assets import SHARED

    sources = [REPO / "benchmarks" / "RESULTS.md", SHARED / "models" / "minilm-l6-scifact-ce" / "RESULTS.md"]
    text = "\n".join(p.read_text(encoding="utf-8") for p in sources if p.is_file())
    rows = db.table_rows(db.section(page("backends/index.md"), "Choosing a model"))
    numbers = {n for row in rows for cell in row[2:4] for n in re.findall(r"\d[\d,]*\.?\d*", cell)}
    if not numbers:
        pytest.fail("the Choosing a model table shows no measured number")
    missing = sorted(n for n in numbers if n not in text)
    if missing and not sources[1].is_file():
        pytest.skip("QUALITY TEST SKIPPED: ../shared model RESULTS.md not found to check the docs' numbers")
    assert not missing, f"numbers in 'Choosing a model' found in no results file: {missing}"


def test_notebooks_page_covers_every_notebook() -> None:
    text = page("notebooks.md")
    for notebook in sorted((REPO / "notebooks").glob("*.ipynb")):
        assert f"notebooks/{notebook.name}" in text, f"docs/notebooks.md does not name {notebook.name}"


def test_api_reference_covers_the_public_api() -> None:
    import swaprank

    text = page("api.md")
    documented = set(re.findall(r"^::: (swaprank[\w.]*)$", text, re.M))
    for name in swaprank.__all__:
        if name.startswith("__") or name == "Option":
            continue  # Option is documented where backends use it, as swaprank.backends.Option
        assert f"swaprank.{name}" in documented, f"swaprank.{name} is missing from docs/api.md"
    assert "swaprank.backends.Option" in documented and "swaprank.backends.Backend" in documented


# ----------------------------------------------------------------------------- the site


def test_mkdocs_nav_lists_every_page() -> None:
    nav = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    for path in db.docs_pages():
        name = path.relative_to(db.DOCS).as_posix()
        assert f": {name}" in nav, f"{name} is not in mkdocs.yml's nav"


def test_docs_site_builds_strict(tmp_path: Path) -> None:
    """``mkdocs build --strict`` offline: any warning (a broken link or anchor, a page outside the
    nav, a docstring mkdocstrings cannot render, a missing snippet) fails the build."""
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**db.offline_env(tmp_path, "http://127.0.0.1:9"), "NO_MKDOCS_2_WARNING": "1"})
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{db.tail(log)}"
    warnings = [line for line in log.splitlines() if line.startswith("WARNING")]
    assert not warnings, "\n".join(warnings)
    assert (tmp_path / "site" / "index.html").is_file()
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert "rerank_many" in api, "the API reference did not render Reranker's methods"


if __name__ == "__main__":  # python -m tests.test_docs --write
    if sys.argv[1:] == ["--write"]:
        db.write_options()
        print(f"rewrote the generated config reference in {db.CONFIG_REFERENCE}")
    else:
        print(db.options_markdown())
