"""What `pip install swaprank` gets: the wheel and sdist build, carry the right metadata and files,
and the wheel installed with one extra into a fresh venv runs the README's 30-second example.

The suite runs without network, so the fresh venv installs from ``.wheelhouse/``, which
``make install`` fills with ``pip download`` of exactly what ``swaprank[cross-encoder]`` needs,
resolved from the package's own metadata (not copied from .venv): a dependency the code uses but
pyproject.toml does not declare is missing there too, and the example fails. The build runs
``python -m build --no-isolation`` (hatchling from the dev extra), since an isolated build would
download hatchling.
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests import doc_blocks as db
from tests.assets import REPO

WHEELHOUSE = Path(os.environ.get("SWAPRANK_WHEELHOUSE", REPO / ".wheelhouse"))
EXTRA = "cross-encoder"


def _project() -> dict[str, Any]:
    project: dict[str, Any] = db.tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("build", reason="the dev extra's build is not installed")
    out = tmp_path_factory.mktemp("dist")
    # No --sdist/--wheel: build makes the sdist, then the wheel from the sdist, so a file missing
    # from the sdist breaks the wheel too.
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(REPO)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"python -m build failed:\n{db.tail(proc.stdout + proc.stderr)}"
    return out


def _one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, f"expected one {pattern} in {dist}, found {[p.name for p in found]}"
    return found[0]


def _wheel_metadata(wheel: Path) -> Message:
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_string(zf.read(name).decode("utf-8"))


def test_wheel_metadata(dist: Path) -> None:
    from swaprank import __version__

    project = _project()
    meta = _wheel_metadata(_one(dist, "*.whl"))
    assert meta["Name"] == project["name"] == "swaprank"
    assert meta["Version"] == project["version"] == __version__
    assert meta["Requires-Python"] == project["requires-python"]
    assert meta["License-Expression"] == project["license"]
    assert set(meta.get_all("Provides-Extra") or []) == set(project["optional-dependencies"])
    requires = [Requirement(r) for r in meta.get_all("Requires-Dist") or []]
    extras = project["optional-dependencies"]

    def key(requirement: Requirement) -> str:
        return f"{canonicalize_name(requirement.name)}{requirement.specifier}"

    def declared(extra: str | None) -> set[str]:
        env = {"extra": extra or ""}
        return {key(r) for r in requires if r.marker is None or r.marker.evaluate(env)}

    def wanted(dependencies: list[str]) -> set[str]:
        """What pyproject.toml asks for; ``swaprank[x]`` stands for extra x's own list (hatchling expands it)."""
        out: set[str] = set()
        for dependency in map(Requirement, dependencies):
            if canonicalize_name(dependency.name) == "swaprank":
                for extra in dependency.extras:
                    out |= wanted(extras[extra])
            else:
                out.add(key(dependency))
        return out

    missing = wanted(project["dependencies"]) - declared(None)
    assert not missing, f"core dependencies missing from the wheel's Requires-Dist: {sorted(missing)}"
    for extra, dependencies in extras.items():
        missing = wanted(dependencies) - declared(extra)
        assert not missing, f"[{extra}] dependencies missing from the wheel's Requires-Dist: {sorted(missing)}"
    assert meta["Description-Content-Type"] == "text/markdown"
    body = meta.get_payload()
    assert isinstance(body, str)
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert body.strip() == readme.strip(), "the long description is not README.md"


def test_wheel_contents(dist: Path) -> None:
    with zipfile.ZipFile(_one(dist, "*.whl")) as zf:
        names = zf.namelist()
        entry_points = zf.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "swaprank/py.typed" in names, "the wheel must ship py.typed (the package is typed)"
    assert "swaprank/__init__.py" in names
    strays = [n for n in names if not (n.startswith("swaprank/") or ".dist-info/" in n)]
    assert not strays, f"the wheel carries files outside the package: {strays[:10]}"
    assert not [n for n in names if n.startswith("tests/") or "/tests/" in n], "the wheel must not ship the tests"
    assert "swaprank = swaprank.cli:main" in entry_points
    sources = {p.relative_to(REPO / "src").as_posix() for p in (REPO / "src" / "swaprank").rglob("*.py")}
    missing = sorted(sources - set(names))
    assert not missing, f"modules missing from the wheel: {missing[:10]}"
    if (REPO / "LICENSE").is_file():
        assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "the wheel lacks LICENSE"


def test_sdist_contents(dist: Path) -> None:
    sdist = _one(dist, "*.tar.gz")
    root = sdist.name.removesuffix(".tar.gz")
    with tarfile.open(sdist) as tf:
        names = {m.name.removeprefix(root + "/") for m in tf.getmembers()}
    for required in ("pyproject.toml", "README.md", "src/swaprank/__init__.py", "src/swaprank/py.typed"):
        assert required in names, f"the sdist lacks {required}"
    if (REPO / "LICENSE").is_file():
        assert "LICENSE" in names
    local = [n for n in names if n.split("/")[0] in {".venv", ".venv-infinity", ".wheelhouse", "site", "dist"}]
    assert not local, f"the sdist carries local build or environment files: {local[:10]}"
    assert sdist.stat().st_size < 5_000_000, f"the sdist is {sdist.stat().st_size} bytes: something large slipped in"


@pytest.mark.slow
def test_wheel_with_one_extra_runs_the_readme_example_in_a_fresh_venv(
        dist: Path, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    if not (WHEELHOUSE / ".complete").is_file():
        pytest.skip(f"PACKAGING TEST SKIPPED: no wheelhouse at {WHEELHOUSE} (run `make wheelhouse`, with network)")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # Only the wheelhouse, never the developer's pip configuration or indexes; this process's pip
    # installs into the fresh venv (--python), which therefore needs no pip of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_CONFIG_FILE"] = os.devnull
    wheel = _one(dist, "*.whl")
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index", "--find-links",
         str(WHEELHOUSE), "--no-compile", "--disable-pip-version-check", "-q", f"{wheel}[{EXTRA}]"],
        env=env, capture_output=True, text=True, timeout=900)
    log = install.stdout + install.stderr
    assert install.returncode == 0, f"pip install {wheel.name}[{EXTRA}] failed:\n{db.tail(log)}"
    check = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "check"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, f"pip check in the fresh venv:\n{check.stdout}{check.stderr}"

    hub_cache = db.make_hub_cache(tmp_path_factory)
    run_env = {**db.offline_env(hub_cache, "http://127.0.0.1:9"), "PATH": f"{venv / 'bin'}{os.pathsep}/usr/bin:/bin"}
    run_env.pop("PYTHONPATH", None)
    where = subprocess.run([str(python), "-c", "import swaprank; print(swaprank.__file__)"], cwd=tmp_path,
                           env=run_env, capture_output=True, text=True, timeout=120)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(venv), f"swaprank imported from {where.stdout} instead of the venv"
    cli = subprocess.run([str(venv / "bin" / "swaprank"), "--help"], cwd=tmp_path, env=run_env,
                         capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0 and "rerank" in cli.stdout, cli.stderr

    code, shown = db.readme_example()
    (tmp_path / "example.py").write_text(code, encoding="utf-8")
    proc = subprocess.run([str(python), "example.py"], cwd=tmp_path, env=run_env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, f"the README's example failed in the fresh venv:\n{db.tail(proc.stderr)}"
    db.check_shown_output(shown, proc.stdout.splitlines(), exact=db.stand_in_is_shared_model())
