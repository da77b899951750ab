"""The README is the first ten minutes: short, runnable, and its shown output is what the code prints.

Its code blocks follow the same rules as the documentation site's (tests/doc_blocks.py): every
python block runs here, offline, with the hub ids resolved to local stand-ins. Everything the README
no longer holds (the config reference, backends, errors, serving...) lives under docs/ and is
checked by tests/test_docs.py.

The 30-second example shows its output. That output was printed by this test's own offline run,
where ``cross-encoder/ms-marco-MiniLM-L-6-v2`` resolves to the SciFact-trained MiniLM-L6 stand-in
from ../shared (the README says so). With the stand-in present the printed lines must match the
shown ones (scores within 0.002, everything else exactly); with the tiny random model (no
../shared) only the shape is checked, since its scores and order mean nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests import doc_blocks as db
from tests.assets import REPO

WORD_LIMIT = 2500
SECTIONS = ["What it is", "Install", "30-second example", "LlamaIndex drop-in", "LangChain drop-in",
            "Swap the model", "Where to go next", "Development"]


def readme_text() -> str:
    return db.README.read_text(encoding="utf-8")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


# ----------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def readme_outputs(hub_cache: Path, fake_cohere: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Every README python block, run once in one fresh interpreter: its output by block place."""
    blocks = [b for b in db.blocks_of(db.README) if b.lang == "python"]
    return db.run_python_blocks(blocks, db.offline_env(hub_cache, fake_cohere.url), tmp_path_factory.mktemp("readme"))


# ----------------------------------------------------------------------------- the tests


def test_readme_code_blocks_follow_the_rules() -> None:
    blocks = db.blocks_of(db.README)
    assert blocks, "README has no code blocks"
    db.check_block_rules(blocks)
    for block in blocks:
        if block.lang == "toml":
            db.parse_toml(block.source)


@pytest.mark.slow
def test_readme_python_blocks_run(readme_outputs: dict[str, str]) -> None:
    python = [b for b in db.blocks_of(db.README) if b.lang == "python"]
    assert len(python) >= 4, "the README lost its quickstarts"
    assert set(readme_outputs) == {b.where for b in python}


@pytest.mark.slow
def test_readme_shown_output_is_what_the_example_prints(readme_outputs: dict[str, str]) -> None:
    code, shown = db.readme_example()
    block = next(b for b in db.blocks_of(db.README) if b.lang == "python" and b.source == code)
    exact = db.stand_in_is_shared_model()
    db.check_shown_output(shown, readme_outputs[block.where].splitlines(), exact=exact)
    if not exact:
        pytest.skip("QUALITY TEST SKIPPED: ../shared's MiniLM-L6 is absent, only the output's shape was checked")


def test_readme_is_short_with_a_table_of_contents() -> None:
    text = readme_text()
    words = len(text.split())
    assert words <= WORD_LIMIT, f"README has {words} words (limit {WORD_LIMIT}): move detail to docs/"
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings == SECTIONS, f"README sections {headings}, expected {SECTIONS}"
    toc = re.findall(r"^- \[[^\]]+\]\(#([^)]+)\)$", text.split("## ", 1)[0], re.M)
    assert toc == [github_anchor(h) for h in headings], "the table of contents does not match the sections"


def test_readme_install_hint_matches_the_makefile() -> None:
    install = db.section(readme_text(), "Install")
    assert 'pip install "swaprank[cross-encoder]"' in install
    makefile = (REPO / "Makefile").read_text()
    torch_spec = re.search(r"^TORCH_SPEC \?= (\S+)$", makefile, re.M)
    assert torch_spec, "Makefile lost TORCH_SPEC"
    assert f"pip install {torch_spec.group(1)} " in install, (
        f"the README's CPU-only hint must install {torch_spec.group(1)} first, as make install does")


def test_readme_states_the_test_command_ci_runs() -> None:
    text = readme_text()
    development = db.section(text, "Development")
    assert "make test" in development and "make demo" in text
    makefile = (REPO / "Makefile").read_text()
    for target in ("demo", "test", "install"):
        assert re.search(rf"^{target}:", makefile, re.M), f"Makefile has no {target} target"
    ci = (REPO / ".ci" / "run").read_text()
    assert "make test" in ci, "CI must run the README's test command, make test"


def test_readme_extras_exist() -> None:
    extras = set(db.pyproject_extras())
    text = readme_text()
    install = db.section(text, "Install")
    named = {e.strip() for part in re.findall(r"swaprank\[([^\]]+)\]", text) for e in part.split(",")}
    listed = set(re.findall(r"`([a-z][a-z0-9-]*)`", install.split("Extras add them:", 1)[1]))
    assert named <= extras, f"README names extras pyproject.toml lacks: {sorted(named - extras)}"
    assert listed <= extras, f"README lists extras pyproject.toml lacks: {sorted(listed - extras)}"
    missing = extras - listed - {"bench", "dev"}
    assert not missing, f"extras missing from the README's short list: {sorted(missing)}"


def test_readme_backend_table_names_real_backends_and_extras() -> None:
    from swaprank import available_backends
    from swaprank.backends.registry import ALIASES

    names = set(available_backends()) | set(ALIASES)
    extras = set(db.pyproject_extras())
    rows = db.table_rows(db.section(readme_text(), "Swap the model"))
    assert len(rows) >= 5, "the Swap the model table lost its backends"
    for spec, _, extra in rows:
        for member in spec.strip("`").split("\\|"):
            backend = member.strip().split(":", 1)[0]
            assert backend in names, f"{spec}: {backend!r} is not a registered backend"
        for name in re.findall(r"`([^`]+)`", extra):
            assert set(name.split(",")) <= extras, f"{spec}: extra {name!r} is not in pyproject.toml"


def test_readme_links_resolve() -> None:
    broken = [t for t in db.local_links(db.README) if not (REPO / t).exists()]
    assert not broken, f"broken links: {broken}"
    linked = {t for t in db.local_links(db.README) if t.startswith("docs/")}
    assert "docs/index.md" in linked and "docs/reference/config.md" in linked
