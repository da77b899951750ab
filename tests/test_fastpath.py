"""The fast CPU path on a tiny random BERT: export, artifact cache, parity probe, torch-free serving.

The tiny model's scores mean nothing, so the exact runtimes (ONNX Runtime and OpenVINO at fp32) are
held to the torch model's own scores; reduced precision and int8 are held to their recorded parity
and to the policy (order, input alignment, windows) that must not change with the runtime.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from sentence_transformers import CrossEncoder

from swaprank import BackendUnavailableError, ConfigError, MissingDependencyError, Reranker
from swaprank.backends import registry
from swaprank.backends.cross_encoder import CrossEncoderBackend
from swaprank.backends.fastpath import choice
from swaprank.backends.fastpath.artifact import MANIFEST, ArtifactIntegrityError, Manifest, cache_root, sha256_file
from swaprank.backends.fastpath.export import ParityError
from swaprank.cli import main as swaprank_main
from swaprank.config import parse_spec
from swaprank.windows import expand
from tests.assets import REPO, build_tiny_cross_encoder
from tests.test_cross_encoder import DOCS, LONG_DOC, QUERY


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private artifact cache and a cold instance cache, so every test exports what it loads."""
    monkeypatch.setenv("SWAPRANK_CACHE_DIR", str(tmp_path / "cache"))
    registry.default_registry().close()
    yield cache_root()
    registry.default_registry().close()


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def artifacts(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*") if (p / MANIFEST).is_file()) if root.exists() else []


def torch_logits(model_dir: Path, pairs: list[tuple[str, str]]) -> list[float]:
    return [float(v) for v in CrossEncoder(str(model_dir), device="cpu").predict(pairs, show_progress_bar=False)]


def backend_for(spec: str) -> CrossEncoderBackend:
    backend = registry.default_registry().acquire(parse_spec(spec))
    assert isinstance(backend, CrossEncoderBackend)
    return backend


# ----------------------------------------------------------------------------- exact runtimes


@pytest.mark.parametrize("runtime", ["onnx", "openvino"])
def test_fp32_runtimes_reproduce_torch_scores_in_input_order(runtime: str, cache: Path, model_copy: Path) -> None:
    docs = [*DOCS, LONG_DOC]
    result = Reranker(f"cross-encoder:{model_copy}?runtime={runtime}").rerank(QUERY, docs)
    backend = backend_for(f"cross-encoder:{model_copy}?runtime={runtime}")
    assert backend.plan.runtime == runtime and backend.artifact is not None
    # the long document is windowed by the same code as on torch, and scored by its best window
    expansion = expand(QUERY, docs, backend.windowing())
    torch_windows = expand(QUERY, docs, backend_for(f"cross-encoder:{model_copy}").windowing())
    assert expansion.texts == torch_windows.texts and expansion.windowed == 1
    expected = torch_logits(model_copy, [(QUERY, t) for t in expansion.texts])
    owners = expansion.owners
    best = [max(v for v, o in zip(expected, owners, strict=True) if o == i) for i in range(len(docs))]
    by_index = {r.index: r for r in result}
    assert sorted(by_index) == list(range(len(docs)))
    for i, logit in enumerate(best):
        assert by_index[i].raw_score == pytest.approx(logit, abs=1e-4)
        assert by_index[i].text == docs[i]
    assert [r.score for r in result] == sorted((r.score for r in result), reverse=True)
    assert by_index[0].score == by_index[4].score  # duplicates still share one score
    manifest = Manifest.read(backend.artifact)
    assert manifest.parity["max_abs_diff"] < 1e-3 and manifest.parity["top_k_agreement"] == 1.0


def test_a_model_saved_with_a_sigmoid_exports_probabilities_like_torch(cache: Path, tmp_path: Path) -> None:
    """sentence-transformers 6 saves a 1-label model with a Sigmoid activation, which torch applies.
    The exported graph returns logits, so its manifest must say so: it once said "probabilities", the
    logits were taken as scores, left [0, 1] and every call failed. Scores match torch's; raw scores
    are the logits (torch's raw is the probability itself)."""
    from tests.assets import build_tiny_cross_encoder

    model = build_tiny_cross_encoder(tmp_path / "sigmoid", outputs_logits=False)
    torch_result = Reranker(f"cross-encoder:{model}").rerank(QUERY, DOCS)
    exported = Reranker(f"cross-encoder:{model}?runtime=onnx").rerank(QUERY, DOCS)
    assert [r.index for r in exported] == [r.index for r in torch_result]
    for mine, reference in zip(exported, torch_result, strict=True):
        assert mine.score == pytest.approx(reference.score, abs=1e-4)
        assert mine.score == pytest.approx(1 / (1 + math.exp(-mine.raw_score)), abs=1e-6)


def test_export_once_then_cache_hit_without_exporting(cache: Path, model_copy: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec = f"cross-encoder:{model_copy}?runtime=onnx"
    first = Reranker(spec).rerank(QUERY, DOCS)
    assert len(artifacts(cache)) == 1
    registry.default_registry().close()

    def no_export(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cached artifact was exported again")

    monkeypatch.setattr("swaprank.backends.fastpath.export.build_artifact", no_export)
    second = Reranker(spec).rerank(QUERY, DOCS)
    assert [(r.index, r.raw_score) for r in second] == [(r.index, r.raw_score) for r in first]
    assert len(artifacts(cache)) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]  # no temporary directory left


def test_cache_key_changes_with_model_files_and_options(cache: Path, model_copy: Path) -> None:
    Reranker(f"cross-encoder:{model_copy}?runtime=onnx").warmup()
    first = artifacts(cache)
    registry.default_registry().close()
    # a different model in the same directory (new weights) must not reuse the old artifact
    build_tiny_cross_encoder(model_copy, seed=1)
    Reranker(f"cross-encoder:{model_copy}?runtime=onnx").warmup()
    second = artifacts(cache)
    assert len(second) == 2 and first[0] in second
    registry.default_registry().close()
    Reranker(f"cross-encoder:{model_copy}?runtime=openvino").warmup()
    assert len(artifacts(cache)) == 3
    new = backend_for(f"cross-encoder:{model_copy}?runtime=onnx")
    assert new.artifact is not None and new.artifact not in first
    assert Manifest.read(new.artifact).source_digest != Manifest.read(first[0]).source_digest


def test_two_processes_exporting_at_once_publish_one_whole_artifact(cache: Path, model_copy: Path) -> None:
    script = textwrap.dedent(f"""
        import logging, sys
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        from swaprank import Reranker
        result = Reranker({f"cross-encoder:{model_copy}?runtime=onnx"!r}).rerank("q", ["a b c", "d e f"])
        print("SCORES", [round(r.raw_score, 5) for r in result])
    """)
    env = {**os.environ, "SWAPRANK_CACHE_DIR": str(cache.parent)}
    procs = [subprocess.Popen([sys.executable, "-c", script], cwd=REPO, env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    scores = [next(line for line in out.splitlines() if line.startswith("SCORES")) for out, _ in outputs]
    assert scores[0] == scores[1]
    assert sum(err.count("exported {") for _, err in outputs) == 1  # the second process waited and reused it
    assert len(artifacts(cache)) == 1
    assert not [p for p in cache.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]


# ----------------------------------------------------------------------------- reduced precision and int8


@pytest.mark.parametrize("spec_options", ["quantize=int8&runtime=onnx", "quantize=int8&runtime=openvino",
                                          "precision=bf16&runtime=openvino"])
def test_reduced_precision_artifacts_record_parity_and_keep_the_policy(spec_options: str, cache: Path,
                                                                       model_copy: Path) -> None:
    # parity limits off: the tiny random model's int8 error says nothing; the real model is held to the
    # default limits in test_real_model_int8_passes_the_default_parity_limits.
    spec = f"cross-encoder:{model_copy}?{spec_options}&parity_max_diff=1&parity_min_agreement=0"
    result = Reranker(spec).rerank(QUERY, [*DOCS, LONG_DOC])
    backend = backend_for(spec)
    manifest = Manifest.read(backend.artifact)  # type: ignore[arg-type]
    assert manifest.quantize == ("int8" if "int8" in spec_options else "none")
    assert set(manifest.parity) >= {"max_abs_diff", "top_k_agreement", "pairs", "limit_max_abs_diff"}
    assert manifest.parity["pairs"] == 100 and 0.0 <= manifest.parity["top_k_agreement"] <= 1.0
    if manifest.quantize == "int8":
        assert manifest.calibration["source"] == "builtin" and manifest.calibration["pairs"] > 0
    assert sorted(r.index for r in result) == list(range(6))
    assert all(0.0 <= r.score <= 1.0 and type(r.score) is float for r in result)
    assert [r.score for r in result] == sorted((r.score for r in result), reverse=True)


def test_parity_refusal_is_typed_and_caches_nothing(cache: Path, model_copy: Path) -> None:
    spec = f"cross-encoder:{model_copy}?quantize=int8&runtime=onnx&parity_max_diff=0"
    with pytest.raises(ParityError, match=r"scores too differently .* max \|score diff\|") as info:
        Reranker(spec).rerank(QUERY, DOCS)
    assert isinstance(info.value, BackendUnavailableError) and info.value.vendor == "cross-encoder"
    assert artifacts(cache) == []
    assert not [p for p in cache.iterdir() if p.name.startswith(".") and not p.name.endswith(".lock")]


def test_parity_refusal_falls_back_to_the_exact_model(cache: Path, model_copy: Path) -> None:
    chain = f"cross-encoder:{model_copy}?quantize=int8&runtime=onnx&parity_max_diff=0 | cross-encoder:{model_copy}"
    result = Reranker(chain).rerank(QUERY, DOCS)
    assert result.model == f"cross-encoder:{model_copy}"
    assert {r.index: r.raw_score for r in result} == pytest.approx(
        dict(enumerate(torch_logits(model_copy, [(QUERY, d) for d in DOCS]))), abs=1e-5)


# ----------------------------------------------------------------------------- choosing a runtime


def test_auto_picks_the_fastest_installed_runtime(monkeypatch: pytest.MonkeyPatch) -> None:
    assert choice.choose("auto", None, "none") == choice.Plan("torch", "fp32", "none")
    assert choice.choose("auto", None, "int8") == choice.Plan("openvino", "bf16", "int8")
    assert choice.choose("auto", "fp32", "int8") == choice.Plan("openvino", "fp32", "int8")
    assert choice.choose("auto", "bf16", "none").runtime == "openvino"
    monkeypatch.setattr(choice, "installed", lambda name: name == "onnx")
    assert choice.choose("auto", None, "int8") == choice.Plan("onnx", "fp32", "int8")
    monkeypatch.setattr(choice, "installed", lambda name: False)
    with pytest.raises(MissingDependencyError, match=r'"swaprank\[openvino\]" or "swaprank\[onnx\]"'):
        choice.choose("auto", None, "int8")


def test_the_one_time_export_says_what_it_does_and_hides_the_runtimes_chatter(
        cache: Path, model_copy: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
    spec = f"cross-encoder:{model_copy}?quantize=int8&runtime=openvino&parity_max_diff=1&parity_min_agreement=0"
    with caplog.at_level(logging.INFO):
        Reranker(spec).warmup()
        Reranker(spec).rerank(QUERY, DOCS)  # a later load reuses the artifact: nothing more is said
    notices = [r for r in caplog.records if r.name == "swaprank.export"]
    assert [r.levelno for r in notices] == [logging.INFO, logging.INFO]
    (target,) = artifacts(cache)
    before, after = (r.getMessage() for r in notices)
    assert before == (f"exporting {model_copy} to openvino bf16 int8 once (seconds to a minute); "
                      f"cached at {target}")
    assert re.fullmatch(rf"exported {re.escape(str(model_copy))} to openvino bf16 int8 in \d+\.\d s; cached at "
                        rf"{re.escape(str(target))} \(later loads reuse it\)", after)
    assert not [r for r in caplog.records if r.name.startswith("nncf") and r.levelno < logging.WARNING]
    out, err = capfd.readouterr()
    assert "INFO:nncf" not in out + err  # nncf's own stdout handler was held at WARNING


def test_export_notices_reach_stderr_when_the_application_configured_no_logging(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from swaprank.backends.fastpath import notices

    monkeypatch.setattr(notices.logger, "hasHandlers", lambda: False)
    notices.announce("exporting m to onnx fp32 once")
    assert capsys.readouterr().err == "swaprank: exporting m to onnx fp32 once\n"


def test_the_runtimes_info_lines_are_dropped_during_an_export_only() -> None:
    from swaprank.backends.fastpath.notices import quiet_runtimes

    nncf = logging.getLogger("nncf")
    info = logging.LogRecord("nncf", logging.INFO, __file__, 1, "noise", None, None)
    warning = logging.LogRecord("nncf", logging.WARNING, __file__, 1, "news", None, None)
    with quiet_runtimes():
        assert not nncf.filter(info) and nncf.filter(warning)
    assert nncf.filter(info)


@pytest.mark.parametrize(("options", "message"), [
    ("quantize=int8&runtime=torch", "quantize=int8 runs on runtime=openvino or runtime=onnx"),
    ("precision=bf16&runtime=onnx", "no bf16 kernels"),
    ("runtime=onnx&dtype=float16", "dtype=float16 applies to runtime=torch"),
    ("backend=onnx", "unknown option 'backend'"),  # the pre-release alias of runtime is gone
    ("quantize=int4", "option 'quantize' must be one of none, int8"),
])
def test_impossible_combinations_are_config_errors(options: str, message: str, tiny_model_dir: Path,
                                                   cache: Path) -> None:
    with pytest.raises(ConfigError, match=message):
        Reranker(f"cross-encoder:{tiny_model_dir}?{options}").warmup()


# ----------------------------------------------------------------------------- export command, torch-free serving


def test_swaprank_export_writes_a_directory_that_cross_encoder_dir_serves(
        cache: Path, model_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "exported"
    assert swaprank_main(["export", f"cross-encoder:{model_copy}?runtime=onnx", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["artifact"] == str(out) and report["runtime"] == "onnx" and report["parity"]["max_abs_diff"] < 1e-3
    assert (out / "model.onnx").is_file() and (out / "tokenizer.json").is_file()
    assert artifacts(cache) == []  # --out is not the cache
    result = Reranker(f"cross-encoder:{out}").rerank(QUERY, DOCS)
    expected = torch_logits(model_copy, [(QUERY, d) for d in DOCS])
    assert {r.index: r.raw_score for r in result} == pytest.approx(dict(enumerate(expected)), abs=1e-4)
    with pytest.raises(ConfigError, match="is an exported quantize=none artifact"):
        Reranker(f"cross-encoder:{out}?quantize=int8").warmup()
    with pytest.raises(ConfigError, match="device=cuda applies to runtime=torch"):
        Reranker(f"cross-encoder:{out}?device=cuda").warmup()
    assert swaprank_main(["export", f"cross-encoder:{model_copy}?runtime=torch", "--out", str(out)]) == 2
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("mine")
    assert swaprank_main(["export", f"cross-encoder:{model_copy}?runtime=onnx", "--out", str(precious)]) == 2
    assert (precious / "notes.txt").read_text() == "mine"


def test_an_artifact_from_another_format_version_is_refused_with_advice(cache: Path, model_copy: Path,
                                                                        tmp_path: Path) -> None:
    out = tmp_path / "exported"
    assert swaprank_main(["export", f"cross-encoder:{model_copy}?runtime=onnx", "--out", str(out)]) == 0
    manifest = json.loads((out / MANIFEST).read_text())
    (out / MANIFEST).write_text(json.dumps({**manifest, "format": 99}))
    with pytest.raises(ConfigError, match=r"artifact format 99.*export it again"):
        Reranker(f"cross-encoder:{out}").warmup()
    (out / "model.onnx").write_bytes(b"not a model")
    # recorded as the artifact's own bytes (so the digests pass): the runtime's refusal is still typed
    (out / MANIFEST).write_text(json.dumps({**manifest, "files": {**manifest["files"],
                                                                   "model.onnx": sha256_file(out / "model.onnx")}}))
    with pytest.raises(BackendUnavailableError, match="could not load artifact"):
        Reranker(f"cross-encoder:{out}").warmup()
    # an artifact of the previous format (no digests) is refused, never served unchecked
    del manifest["files"]
    (out / MANIFEST).write_text(json.dumps({**manifest, "format": 1}))
    with pytest.raises(ConfigError, match=r"artifact format 1.*records a digest of every file.*--force"):
        Reranker(f"cross-encoder:{out}").warmup()


# ----------------------------------------------------------------------------- integrity of stored artifacts


@pytest.fixture(scope="module")
def pristine(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX artifact exported for this section; tests tamper with copies of it."""
    out = tmp_path_factory.mktemp("pristine") / "artifact"
    assert swaprank_main(["export", f"cross-encoder:{tiny_model_dir}?runtime=onnx", "--out", str(out)]) == 0
    return out


@pytest.fixture
def artifact_copy(pristine: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(pristine, tmp_path / "artifact"))


def edit_manifest(directory: Path, **changes: object) -> None:
    data = json.loads((directory / MANIFEST).read_text())
    (directory / MANIFEST).write_text(json.dumps({**data, **changes}))


def test_the_manifest_records_a_digest_of_every_file_and_an_untouched_artifact_scores_as_before(
        artifact_copy: Path, tiny_model_dir: Path) -> None:
    manifest = Manifest.read(artifact_copy)
    on_disk = sorted(p.name for p in artifact_copy.iterdir() if p.name != MANIFEST)
    assert sorted(manifest.files) == on_disk == ["model.onnx", "tokenizer.json"]
    assert all(sha256_file(artifact_copy / name) == digest for name, digest in manifest.files.items())
    result = Reranker(f"cross-encoder:{artifact_copy}").rerank(QUERY, DOCS)
    expected = torch_logits(tiny_model_dir, [(QUERY, d) for d in DOCS])
    assert {r.index: r.raw_score for r in result} == pytest.approx(dict(enumerate(expected)), abs=1e-4)


def test_a_flipped_byte_in_the_model_is_refused_with_the_path_and_the_fix(artifact_copy: Path,
                                                                         tiny_model_dir: Path) -> None:
    """Negating the logits of a cached model once changed the ranking without a word."""
    model = artifact_copy / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError) as info:
        Reranker(f"cross-encoder:{artifact_copy}").warmup()
    message = str(info.value)
    assert str(artifact_copy) in message and "'model.onnx' has SHA-256" in message
    assert "swaprank export SPEC --out DIR --force" in message and "Nothing of it was loaded" in message
    assert isinstance(info.value, BackendUnavailableError) and info.value.vendor == "cross-encoder"
    # a typed availability error: a fallback chain moves on and serves the next spec instead
    chain = f"cross-encoder:{artifact_copy} | cross-encoder:{tiny_model_dir}"
    assert Reranker(chain).rerank(QUERY, DOCS).model == f"cross-encoder:{tiny_model_dir}"


def test_a_modified_cache_entry_says_delete_the_directory_and_is_refused_after_an_earlier_load(
        cache: Path, model_copy: Path) -> None:
    spec = f"cross-encoder:{model_copy}?runtime=onnx"
    Reranker(spec).warmup()  # exported and verified once in this process
    [entry] = artifacts(cache)
    registry.default_registry().close()
    tokenizer = entry / "tokenizer.json"
    tokenizer.write_text(tokenizer.read_text().replace('"[SEP]"', '"[SEQ]"', 1))
    with pytest.raises(ArtifactIntegrityError, match=r"'tokenizer.json' has SHA-256.*delete the directory") as info:
        Reranker(spec).warmup()
    assert str(entry) in str(info.value)
    shutil.rmtree(entry)  # the advised fix: the next load exports it again
    registry.default_registry().close()
    Reranker(spec).warmup()
    assert artifacts(cache) == [entry]


@pytest.mark.parametrize("model_file", ["../model.onnx", "/etc/passwd", "sub/../../model.onnx", "C:\\model.onnx",
                                        "..\\model.onnx", ""])
def test_a_manifest_naming_a_file_outside_the_artifact_is_refused(artifact_copy: Path, model_file: str) -> None:
    shutil.copy(artifact_copy / "model.onnx", artifact_copy.parent / "model.onnx")
    files = json.loads((artifact_copy / MANIFEST).read_text())["files"]
    edit_manifest(artifact_copy, model_file=model_file,
                  files={**files, model_file: files["model.onnx"]})
    with pytest.raises(ArtifactIntegrityError, match="not a plain file name inside it"):
        Reranker(f"cross-encoder:{artifact_copy}").warmup()


def test_a_symlink_leading_out_of_the_artifact_is_refused(artifact_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.onnx"
    shutil.move(artifact_copy / "model.onnx", outside)
    (artifact_copy / "model.onnx").symlink_to(outside)  # the same bytes, so only the escape is wrong
    with pytest.raises(ArtifactIntegrityError, match=r"'model.onnx' leads outside the artifact directory"):
        Reranker(f"cross-encoder:{artifact_copy}").warmup()
    (artifact_copy / "model.onnx").unlink()
    (artifact_copy / "inner.onnx").symlink_to("model.onnx")  # dangling inside: missing file, typed
    edit_manifest(artifact_copy, model_file="inner.onnx",
                  files={**Manifest.read(artifact_copy).files, "inner.onnx": sha256_file(outside)})
    with pytest.raises(ArtifactIntegrityError, match="cannot be read"):
        Reranker(f"cross-encoder:{artifact_copy}").warmup()


def test_a_manifest_without_digests_for_what_is_loaded_is_refused(artifact_copy: Path) -> None:
    files = Manifest.read(artifact_copy).files
    edit_manifest(artifact_copy, files={"model.onnx": files["model.onnx"]})
    with pytest.raises(ArtifactIntegrityError, match=r"no digest for 'tokenizer\.json'"):
        Reranker(f"cross-encoder:{artifact_copy}").warmup()
    edit_manifest(artifact_copy, files={})
    with pytest.raises(ArtifactIntegrityError, match="records no valid file digests"):
        Reranker(f"cross-encoder:{artifact_copy}").warmup()
    os.remove(artifact_copy / "tokenizer.json")
    edit_manifest(artifact_copy, files=files)
    with pytest.raises(ArtifactIntegrityError, match=r"'tokenizer\.json' cannot be read"):
        Reranker(f"cross-encoder:{artifact_copy}").warmup()


def test_calibration_pairs_from_the_user_are_used_and_recorded(cache: Path, model_copy: Path, tmp_path: Path) -> None:
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps({"query": f"question {i}", "text": f"an answer about topic {i}"})
                               for i in range(12)) + "\n")
    out = tmp_path / "int8"
    no_limits = "parity_max_diff=1&parity_min_agreement=0"
    assert swaprank_main(["export", f"cross-encoder:{model_copy}?quantize=int8&runtime=openvino&{no_limits}",
                          "--out", str(out), "--calibration", str(pairs)]) == 0
    calibration = Manifest.read(out).calibration
    assert calibration["source"] == "user" and calibration["pairs"] == 12
    registry.default_registry().close()
    # the same pairs through the config string: cached under their own key, not the built-in one's
    spec = f"cross-encoder:{model_copy}?quantize=int8&runtime=openvino&{no_limits}&calibration={pairs}"
    assert Manifest.read(backend_for(spec).artifact).calibration["source"] == "user"  # type: ignore[arg-type]
    pairs.write_text('{"query": "only a query"}\n')
    assert swaprank_main(["export", f"cross-encoder:{model_copy}?quantize=int8", "--out", str(tmp_path / "x"),
                          "--calibration", str(pairs)]) == 2


def test_serving_from_an_artifact_imports_neither_torch_nor_transformers(cache: Path, model_copy: Path) -> None:
    for options in ("runtime=onnx", "quantize=int8&runtime=openvino&parity_max_diff=1&parity_min_agreement=0"):
        Reranker(f"cross-encoder:{model_copy}?{options}").warmup()  # export in this process (uses torch)
        script = textwrap.dedent(f"""
            import json, sys
            from swaprank import Reranker
            result = Reranker({f"cross-encoder:{model_copy}?{options}"!r}).rerank("q", ["a b c", "d e f"])
            heavy = sorted(m for m in ("torch", "transformers", "sentence_transformers", "optimum", "nncf")
                           if m in sys.modules)
            print(json.dumps({{"heavy": heavy, "n": len(result),
                               "telemetry": "openvino_telemetry" in sys.modules
                                            and sys.modules["openvino_telemetry"] is not None}}))
        """)
        env = {**os.environ, "SWAPRANK_CACHE_DIR": str(cache.parent)}
        done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, text=True, capture_output=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout.strip().splitlines()[-1])
        assert report == {"heavy": [], "n": 2, "telemetry": False}


# ----------------------------------------------------------------------------- the real model


@pytest.mark.quality
@pytest.mark.slow
def test_real_model_int8_passes_the_default_parity_limits(real_model: str) -> None:
    # the session's cache (tests/conftest.py): the README's quickstart reuses this export
    backend = backend_for(f"cross-encoder:{real_model}?quantize=int8")
    assert backend.plan.runtime == "openvino"
    parity = Manifest.read(backend.artifact).parity  # type: ignore[arg-type]
    assert parity["max_abs_diff"] <= parity["limit_max_abs_diff"]
    assert parity["top_k_agreement"] >= parity["limit_top_k_agreement"]
