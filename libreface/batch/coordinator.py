"""Batch coordinator: resolve inputs, skip what is done, schedule the rest, record outcomes, stop cleanly on signals."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from ..errors import OutputError
from .executors import dask_outcomes, import_dask, local_cluster, local_outcomes
from .ledger import Ledger
from .manifest import resolve_recordings
from .records import (CSV_DIR, FEATURES_DIR, LEDGER_VIEW, BatchReport, BatchSettings, Job, Outcome, Recording,
                      utc_now)
from .worker import attempts_on_disk


def _model_hashes(model: str) -> tuple[str, str]:
    """(student sha256, landmarker sha256), after verifying both files here (fails before any worker starts)."""
    from ..models.registry import get_entry, list_models, sha256_file, verify, weights_path

    if model.endswith(".onnx") and Path(model).is_file():
        student = sha256_file(Path(model))
    else:
        if model not in list_models():
            raise ValueError(f"unknown model {model!r}; available: {', '.join(list_models())} or an .onnx file")
        verify(model)
        student = get_entry(model).sha256
    landmarker = ""
    for name in list_models(kind="landmarker"):
        weights_path(get_entry(name).file)
        landmarker = get_entry(name).sha256
    return student, landmarker


def _settings_hash(settings: BatchSettings, student: str, landmarker: str) -> str:
    from ..align import ALIGN_VERSION

    key = {**settings.output_fields(), "model_sha256": student, "landmarker_sha256": landmarker,
           "align": ALIGN_VERSION}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def _is_fresh(rec: dict | None, outdir: Path, settings_hash: str, size: int, mtime_ns: int) -> bool:
    if not rec or rec.get("status") != "done" or rec.get("settings") != settings_hash:
        return False
    if rec.get("source_size") != size or rec.get("source_mtime_ns") != mtime_ns:
        return False
    outputs = [rec.get("csv")] + ([rec["features"]] if rec.get("features") else [])
    return all(o and (outdir / o).is_file() for o in outputs)


def _threads_per_worker(threads: int, workers: int) -> int:
    from ..models.session import default_threads

    return threads or max(1, default_threads() // max(1, workers))


def run_batch(
    inputs: Iterable[str | os.PathLike],
    outdir: str | os.PathLike,
    settings: BatchSettings | None = None,
    *,
    jobs: int = 0,
    dask_local: int = 0,
    scheduler: str | None = None,
    client=None,
    retries: int = 2,
    progress: bool = False,
    on_outcome: Callable[[Outcome], None] | None = None,
    quiet_native_logs: bool = False,
    recursive: bool = False,
) -> BatchReport:
    """Analyse many recordings into `outdir`, resumably (see `libreface.batch` for the layout and the ledger).

    Args:
        inputs: files, folders, `.txt` lists, manifest `.csv` files.
        outdir: output folder (created).
        settings: analysis and output settings, the same for every recording.
        jobs: local worker processes; 0 = one per core. Used when no Dask option is given.
        dask_local: run on a Dask LocalCluster with this many single-threaded worker processes on 127.0.0.1.
        scheduler: address of a running Dask scheduler, e.g. "tcp://head:8786".
        client: a `distributed.Client` to use as it is (e.g. on a dask-jobqueue SLURMCluster); not closed here.
        retries: extra tries for a recording whose task raised or whose worker died; input errors are not retried.
        progress: a progress bar (and one line per failure) on stderr.
        on_outcome: called in the coordinating process with every worker `Outcome`.
        quiet_native_logs: workers drop MediaPipe's C++ log lines (`libreface.landmarks.quiet_native_logs`).
        recursive: folders in `inputs` give the media files of their subfolders too (names stay unique:
            `p01__session1`, `p02__session1`; `libreface.outputs.names`).

    Returns:
        A `BatchReport`. A Ctrl-C or SIGTERM does not raise: the recordings in flight are marked `partial` in the
        ledger and `report.signal` is set.

    Raises:
        ModelError: the model or the landmarker is missing or damaged (checked before anything runs).
        OutputError: `outdir` cannot be written, or another batch holds its lock.
        ImportError: a Dask option without Dask installed.
    """
    settings = settings or BatchSettings()
    if settings.model.endswith(".onnx") and Path(settings.model).is_file():  # workers may start elsewhere
        settings = replace(settings, model=str(Path(settings.model).resolve()))
    if sum(bool(x) for x in (dask_local, scheduler, client)) > 1:
        raise ValueError("give at most one of dask_local, scheduler and client")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")
    use_dask = bool(dask_local or scheduler or client)
    if use_dask:
        import_dask()
    student_sha, landmarker_sha = _model_hashes(settings.model)
    settings_hash = _settings_hash(settings, student_sha, landmarker_sha)
    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{outdir}: cannot create the output folder ({e.strerror or e}); choose another -o") from None

    t0 = time.perf_counter()
    ledger = Ledger(outdir)
    report = BatchReport(outdir, outdir / LEDGER_VIEW)
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:4]
    stop = _SignalCatcher()
    cluster = own_client = bar = None
    by_name: dict[str, Job] = {}
    remaining: set[str] = set()
    try:
        with stop:
            known = {r["path"]: name for name, r in ledger.state.items() if r.get("path")}
            recordings, input_errors = resolve_recordings(inputs, known, recursive=recursive)
            report.failed += input_errors
            for _, error in input_errors:
                _say(error, progress)
            executor = ("dask-local" if dask_local else "dask" if (scheduler or client) else "local")
            ledger.append({"type": "run", "run": run_id, "started_at": utc_now(), "executor": executor,
                           "settings": settings_hash, "options": settings.output_fields(),
                           "model_sha256": student_sha, "landmarker_sha256": landmarker_sha,
                           "libreface_version": __version__, "host": socket.gethostname(), "pid": os.getpid(),
                           "recordings": len(recordings)})
            common = {"model": settings.model, "model_sha256": student_sha, "landmarker_sha256": landmarker_sha,
                      "settings": settings_hash, "libreface_version": __version__, "run": run_id}
            todo: list[tuple[Recording, int]] = []
            for order, rec in enumerate(recordings):
                prev = ledger.state.get(rec.name)
                meta = rec.meta or (prev or {}).get("meta") or {}  # a plain path keeps what a manifest gave it
                try:
                    st = os.stat(rec.path)
                except OSError:
                    st = None
                if st is not None and _is_fresh(prev, outdir, settings_hash, st.st_size, st.st_mtime_ns):
                    ledger.update(rec.name, action="skipped", run=run_id, order=order, meta=meta)
                    report.skipped.append(rec.name)
                    continue
                base = {**common, "path": rec.path, "meta": meta, "order": order,
                        "csv": f"{CSV_DIR}/{rec.name}.csv",
                        "features": f"{FEATURES_DIR}/{rec.name}.parquet" if settings.features else None,
                        "source_size": st.st_size if st else None, "source_mtime_ns": st.st_mtime_ns if st else None}
                blank = dict.fromkeys(("frames", "faces", "video_fps", "duration_s", "wall_s", "speed_x",
                                       "peak_rss_mb", "warning", "error", "worker", "started_at", "finished_at"))
                if st is None or not Path(rec.path).is_file():
                    what = "not found; check the path" if st is None else "not a regular file"
                    error = f"{rec.path}: {what}"
                    ledger.update(rec.name, **{**base, **blank, "status": "failed", "action": "failed", "attempts": 0,
                                               "error": error, "finished_at": utc_now()})
                    report.failed.append((rec.name, error))
                    _say(error, progress)
                    continue
                ledger.update(rec.name, **base, **blank, status="pending", action="queued", attempts=0)
                todo.append((rec, st.st_size))

            todo.sort(key=lambda t: -t[1])  # largest first: the long ones do not end up alone at the end
            n_workers = dask_local or jobs or _cores()
            threads = settings.threads if (scheduler or client) else _threads_per_worker(settings.threads, n_workers)
            threads = threads or 1
            job_list = [Job(rec.name, rec.path, str(outdir), settings, threads, student_sha, quiet_native_logs)
                        for rec, _ in todo]
            for job in job_list:  # stale attempts of an earlier run
                shutil.rmtree(job.work, ignore_errors=True)
            by_name = {job.name: job for job in job_list}
            remaining = set(by_name)
            if progress and job_list:
                from tqdm import tqdm

                bar = tqdm(total=len(job_list), unit="file", desc="batch", dynamic_ncols=True, file=sys.stderr,
                           mininterval=0.5)
            if job_list:
                if use_dask:
                    if client is None:
                        distributed = import_dask()
                        if dask_local:
                            cluster = local_cluster(dask_local, retries)
                            own_client = distributed.Client(cluster)
                        else:
                            own_client = distributed.Client(scheduler, timeout="30s")
                    outcomes = dask_outcomes(client or own_client, job_list, retries)
                else:
                    outcomes = local_outcomes(job_list, n_workers, retries)
                with closing(outcomes):
                    for outcome in outcomes:
                        with stop.deferred():
                            _record(ledger, outcome, by_name[outcome.name], report, bar)
                            remaining.discard(outcome.name)
                        if on_outcome is not None:
                            on_outcome(outcome)
    except KeyboardInterrupt:
        report.signal = stop.signum or signal.SIGINT
        for name in sorted(remaining):
            job = by_name[name]
            started = attempts_on_disk(job) > 0
            ledger.update(name, status="partial" if started else "pending",
                          action="interrupted" if started else "queued", attempts=attempts_on_disk(job),
                          error="interrupted" if started else None, finished_at=utc_now() if started else None)
            report.interrupted.append(name)
    finally:
        if bar is not None:
            bar.close()
        if own_client is not None:
            own_client.close()
        if cluster is not None:
            cluster.close()
        try:
            ledger.write_view()
        finally:
            ledger.close()
    report.wall_s = time.perf_counter() - t0
    return report


def _say(message: str, show: bool, bar=None) -> None:
    """One line on stderr (through the progress bar when there is one)."""
    if not show:
        return
    if bar is not None:
        bar.write(f"libreface: {message}", file=sys.stderr)
    else:
        print(f"libreface: {message}", file=sys.stderr)


def _cores() -> int:
    from ..models.session import default_threads

    return default_threads()


def _record(ledger: Ledger, outcome: Outcome, job: Job, report: BatchReport, bar) -> None:
    fields = {k: getattr(outcome, k) for k in ("status", "frames", "faces", "video_fps", "duration_s", "wall_s",
                                                "peak_rss_mb", "warning", "error", "attempts", "worker", "started_at",
                                                "finished_at")}
    fields["speed_x"] = (round(outcome.duration_s / outcome.wall_s, 3)
                         if outcome.duration_s and outcome.wall_s else None)
    fields["action"] = "analysed" if outcome.status == "done" else "failed"
    if outcome.status == "done":
        report.done.append(outcome.name)
        report.video_s += outcome.duration_s or 0.0
        shutil.rmtree(job.work, ignore_errors=True)
    else:
        report.failed.append((outcome.name, outcome.error or "failed"))
        shutil.rmtree(job.work, ignore_errors=True)
        _say(f"{outcome.error} (after {outcome.attempts} attempt(s))", bar is not None, bar)
    ledger.update(outcome.name, **fields)
    if bar is not None:
        bar.update(1)


class _SignalCatcher:
    """Within the block, SIGTERM (SLURM's scancel, a job's time limit) ends the batch like Ctrl-C does; within
    `deferred()`, either waits until the block is done (a result is recorded whole: ledger line and clean-up)."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old = None
        self._defer = 0
        self._pending = False

    def _handler(self, signum, frame) -> None:
        self.signum = signum
        if self._defer:
            self._pending = True
            return
        raise KeyboardInterrupt

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._defer += 1
        try:
            yield
        finally:
            self._defer -= 1
        if not self._defer and self._pending:
            self._pending = False
            raise KeyboardInterrupt

    def __enter__(self) -> "_SignalCatcher":
        if threading.current_thread() is threading.main_thread():
            self._old = (signal.signal(signal.SIGTERM, self._handler), signal.signal(signal.SIGINT, self._handler))
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old[0])
            signal.signal(signal.SIGINT, self._old[1])
