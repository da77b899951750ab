"""One batch job: validate, resume, score the missing pairs on Ray Data, write parts, summarise.

The order matters: the model spec and the whole input are checked before Ray starts (a typo costs
a second, not a cluster start-up), then the output directory is matched against its manifest, then
only the rows missing from it are handed to Ray Data as blocks of ``batch_size`` rows, so each
batch an actor scores is one block and becomes one part on disk. The driver writes every part:
on a cluster the actors' nodes need no access to the output path.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swaprank import Reranker, ray_runtime
from swaprank.batch.inputs import Pairs, read_pairs
from swaprank.batch.manifest import Manifest, ResumeMismatchError, read_manifest, write_manifest
from swaprank.batch.parts import LOCK_NAME, CorruptPartError, OutputDirectory, OutputLockedError
from swaprank.batch.scorer import SCORE_COLUMNS, PairScorer
from swaprank.redaction import redacted_chain
from swaprank.types import ConfigError

DEFAULT_BATCH_SIZE = 256


@dataclass(frozen=True)
class BatchSettings:
    """What ``swaprank batch`` was asked to do. ``limit`` scores at most that many of the missing pairs
    in this run (a partial run; the next run with the same output continues)."""

    input: Path
    output: Path
    model: str | None = None  # None: SWAPRANK_MODEL
    address: str | None = None  # None: an embedded local Ray
    num_actors: int = 1
    batch_size: int = DEFAULT_BATCH_SIZE
    cpus_per_actor: float | None = None  # None: the local machine's CPUs split between actors; 1 on a cluster
    keep_text: bool = True
    limit: int | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("num_actors", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} must be a positive int, got {value!r}")
        if self.limit is not None and (isinstance(self.limit, bool) or not isinstance(self.limit, int)
                                       or self.limit < 1):
            raise ConfigError(f"limit must be a positive int or None, got {self.limit!r}")
        if self.cpus_per_actor is not None and not self.cpus_per_actor > 0:
            raise ConfigError(f"cpus_per_actor must be positive, got {self.cpus_per_actor!r}")


@dataclass(frozen=True)
class BatchSummary:
    """How a run went: ``scored`` pairs in this run, ``skipped`` already in the output, ``remaining`` left."""

    total: int
    scored: int
    skipped: int
    remaining: int
    seconds: float
    output: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pairs_per_second(self) -> float:
        return self.scored / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "scored": self.scored, "skipped": self.skipped, "remaining": self.remaining,
                "seconds": round(self.seconds, 3), "pairs_per_s": round(self.pairs_per_second, 2),
                "output": str(self.output), **self.extra}

    def line(self) -> str:
        state = "complete" if self.remaining == 0 else f"{self.remaining} pairs still missing (run again to finish)"
        return (f"scored {self.scored} pairs, skipped {self.skipped} already done, in {self.seconds:.1f} s "
                f"({self.pairs_per_second:.1f} pairs/s); {self.output}: {self.total - self.remaining}/{self.total} "
                f"pairs, {state}")


def run_batch(settings: BatchSettings, on_part: Callable[[int], None] | None = None) -> BatchSummary:
    """Score every pair of ``settings.input`` not yet in ``settings.output``; see the module docstring.

    ``on_part(rows)`` is called after each part is on disk (progress; an exception raised there
    stops the run the way a crash would, leaving every part written so far).

    The output directory is locked for the whole run (a second run on it fails fast with
    :class:`~swaprank.batch.parts.OutputLockedError`); its parts are checked before resuming and
    again, from disk, before the summary is returned, so ``remaining == 0`` means every pair is on
    disk exactly once (anything else is a :class:`~swaprank.batch.parts.CorruptPartError`).
    """
    started = time.perf_counter()
    reranker = Reranker(settings.model)  # a bad spec fails here, before any file is read
    pairs = read_pairs(settings.input)
    columns = output_columns(pairs, settings.keep_text)
    _refuse_foreign(settings.output)
    with _locked(settings.output):
        _open_output(settings, pairs, redacted_chain(reranker.specs), columns)
        out = OutputDirectory(settings.output, _expected(pairs, columns), columns)
        skipped = out.scan()
        missing = out.missing()
        if settings.limit is not None:
            missing = missing[: settings.limit]
        scored = 0
        if len(missing):
            scored = _score(settings, reranker.model, pairs, missing, out, on_part)
        # what is on disk, read back and checked again, not what this process believes it wrote
        on_disk = OutputDirectory(settings.output, out.expected, columns).scan()
        if on_disk != int(out.done.sum()):
            raise CorruptPartError(f"{settings.output} holds {on_disk} scored pairs after this run, which wrote "
                                   f"{skipped + scored} (another process changed it); run again to finish",
                                   path=settings.output)
    return BatchSummary(total=len(pairs), scored=scored, skipped=skipped, remaining=len(pairs) - on_disk,
                        seconds=time.perf_counter() - started, output=settings.output)


def output_columns(pairs: Pairs, keep_text: bool) -> list[str]:
    names = [name for name in pairs.table.column_names if keep_text or name != "text"]
    return [*names, *SCORE_COLUMNS]


def _expected(pairs: Pairs, columns: list[str]) -> Any:
    """The input as every part must hold it: the output's columns but the scores."""
    return pairs.table.select([name for name in columns if name not in SCORE_COLUMNS])


def _refuse_foreign(path: Path) -> None:
    """Refuse a file, or a directory holding other things, before a lock file is put in it."""
    if path.exists() and not path.is_dir():
        raise ResumeMismatchError(f"--output {str(path)!r} is a file; swaprank batch writes a directory of "
                                  "Parquet parts (pandas.read_parquet reads it as one table)")
    if path.is_dir() and read_manifest(path) is None and any(p.name != LOCK_NAME for p in path.iterdir()):
        raise ResumeMismatchError(f"--output {str(path)!r} is a non-empty directory without a swaprank batch "
                                  "manifest; refusing to write into it")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold ``path``/_swaprank_batch.lock (an OS file lock, released when the process dies) for the run."""
    from filelock import FileLock, Timeout

    path.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path / LOCK_NAME), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise OutputLockedError(
            f"another swaprank batch run is writing {path} (it holds {path / LOCK_NAME}); two runs on one output "
            "would interleave their parts. Wait for it to finish, or use another --output", path=path / LOCK_NAME,
        ) from None
    try:
        yield
    finally:
        lock.release()


def _open_output(settings: BatchSettings, pairs: Pairs, model_label: str, columns: list[str]) -> None:
    """Match the directory's manifest against this job (or write it); the caller holds the lock."""
    path = settings.output
    manifest = Manifest(input_path=str(pairs.path), input_fingerprint=pairs.fingerprint, rows=len(pairs),
                        model=model_label, columns=columns)
    existing = read_manifest(path)
    if existing is not None:
        manifest.checked_against(existing)
    else:
        _refuse_foreign(path)  # again, under the lock
        write_manifest(path, manifest)


def _score(settings: BatchSettings, spec: str, pairs: Pairs, missing: Any, out: OutputDirectory,
           on_part: Callable[[int], None] | None) -> int:
    connected = ray_runtime.connect(settings.address)
    try:
        ray = ray_runtime.import_ray()
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = settings.progress
        if not settings.progress:
            logging.getLogger("ray.data").setLevel(logging.WARNING)
        todo = pairs.table.take(missing)
        blocks = [todo.slice(start, settings.batch_size) for start in range(0, todo.num_rows, settings.batch_size)]
        dataset = ray.data.from_arrow(blocks).map_batches(
            PairScorer,
            fn_constructor_kwargs={"spec": spec, "keep_text": settings.keep_text},
            batch_size=settings.batch_size,
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(size=settings.num_actors),
            num_cpus=_cpus_per_actor(ray, settings),
            udf_modifying_row_count=False,
        )
        scored = 0
        batches = iter(dataset.iter_batches(batch_size=None, batch_format="pyarrow"))
        try:
            for batch in batches:
                written = out.write(batch)
                scored += written
                if on_part is not None and written:
                    on_part(written)
        finally:
            close = getattr(batches, "close", None)
            if close is not None:  # stops the execution (and frees its actors) when the loop is left early
                close()
        return scored
    finally:
        ray_runtime.disconnect(connected)


def _cpus_per_actor(ray: Any, settings: BatchSettings) -> float:
    """Local: the machine's CPUs split between the actors (each model then uses that many threads);
    on a cluster: one CPU each unless told, since the cluster's size is not this machine's."""
    if settings.cpus_per_actor is not None:
        return settings.cpus_per_actor
    if settings.address is not None:
        return 1.0
    cpus = float(ray.cluster_resources().get("CPU", 1.0))
    return max(1.0, float(int(cpus // settings.num_actors)))
