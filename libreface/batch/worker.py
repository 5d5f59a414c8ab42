"""Batch worker: analyse one recording (a `Job`) into its CSV / features, committed by rename, -> an `Outcome`."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
import uuid
from pathlib import Path

from ..errors import LibrefaceError, ModelError
from .records import CSV_DIR, FEATURES_DIR, BatchSettings, Job, Outcome, one_line, utc_now

log = logging.getLogger(__name__)

_CACHE = threading.local()  # per worker thread: AnalyzerOptions -> (Analyzer, model sha256)


def _cached_analyzer(options, quiet_native_logs: bool = False):
    """The worker's Analyzer for `options`, loaded once per process and thread (models load once per worker)."""
    if quiet_native_logs:
        from ..landmarks import quiet_native_logs as quiet

        quiet()  # once per process: MediaPipe's C++ lines, dropped here rather than interleaved with others'
    cache = getattr(_CACHE, "analyzers", None)
    if cache is None:
        cache = _CACHE.analyzers = {}
    if options not in cache:
        from ..models.registry import get_entry, sha256_file
        from ..pipeline import Analyzer

        for old in cache.values():  # one model in memory at a time
            old[0].close()
        cache.clear()
        analyzer = Analyzer(options)
        sha = (sha256_file(Path(options.model)) if options.model.endswith(".onnx") and Path(options.model).is_file()
               else get_entry(options.model).sha256)
        cache[options] = (analyzer, sha)
    return cache[options]


def init_local_worker(settings: BatchSettings, threads: int, quiet_native_logs: bool) -> None:
    """ProcessPoolExecutor initializer: ignore Ctrl-C (the coordinator stops us) and load the models once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _cached_analyzer(settings.analyzer_options(threads), quiet_native_logs)
    except Exception as e:  # reported by each task instead of breaking the pool
        log.debug("model load failed in the worker: %s", e)


def _peak_rss_mb() -> float | None:
    try:
        import resource

        kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return round(kb / (1 << 20 if sys.platform == "darwin" else 1 << 10), 1)
    except (ImportError, OSError):  # pragma: no cover - Windows
        return None


def _duration_s(path: str, kind: str, fps: float | None, n_frames: int | None) -> float | None:
    """Length of a recording from its container (0.0 for an image)."""
    if kind == "image":
        return 0.0
    try:
        import av

        with av.open(path) as c:
            s = c.streams.video[0]
            if s.duration and s.time_base:
                return float(s.duration * s.time_base)
            if c.duration:
                return c.duration / 1e6
    except Exception:  # noqa: BLE001 - a damaged header: fall back on the frame count
        pass
    return n_frames / fps if n_frames and fps else None


def _commit(tmp: Path, final: Path) -> None:
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, final)
    try:
        fd = os.open(final.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def analyze(job: Job) -> Outcome:
    """Analyse one recording on a worker (a local process or a Dask worker); safe to run twice at once.

    Input and model problems come back as a `failed` Outcome (retrying cannot fix them); any other exception is
    raised, so that the executor retries the recording.
    """
    started, t0 = utc_now(), time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    token = uuid.uuid4().hex[:12]
    work = job.work
    work.mkdir(parents=True, exist_ok=True)
    (work / f"attempt-{token}").write_text(worker)  # which worker is on it (host:pid), for people and tests
    attempts = len(list(work.glob("attempt-*")))

    def failed(error: str) -> Outcome:
        return Outcome(job.name, "failed", error=one_line(error), attempts=attempts, worker=worker, started_at=started,
                       finished_at=utc_now(), wall_s=round(time.perf_counter() - t0, 3), peak_rss_mb=_peak_rss_mb())

    s = job.settings
    try:
        analyzer, sha = _cached_analyzer(s.analyzer_options(job.threads), job.quiet_native_logs)
        if sha != job.model_sha256:
            raise ModelError(f"worker {worker}: model {s.model!r} has sha256 {sha[:12]}…, the batch started with "
                             f"{job.model_sha256[:12]}…; install the same weights on every worker")
        tmp_csv = work / f"{token}.csv"
        tmp_features = work / f"{token}.parquet" if s.features else None
        summary = analyzer.analyze_to_files(job.source, tmp_csv, fmt=s.fmt, landmarks=s.landmarks,
                                            blendshapes=s.blendshapes, features_path=tmp_features)
        info = analyzer.last_info
        if tmp_features is not None:
            _commit(tmp_features, Path(job.outdir) / FEATURES_DIR / f"{job.name}.parquet")
        _commit(tmp_csv, Path(job.outdir) / CSV_DIR / f"{job.name}.csv")
    except LibrefaceError as e:
        return failed(str(e))
    except ValueError as e:  # bad options or unknown model: the same on every try
        return failed(f"{job.source}: {e}")
    return Outcome(
        job.name, "done", frames=summary.frames, faces=summary.faces,
        video_fps=round(info.fps, 4) if info and info.fps else None,
        duration_s=_duration_s(job.source, info.kind, info.fps, info.n_frames_hint) if info else None,
        wall_s=round(time.perf_counter() - t0, 3), peak_rss_mb=_peak_rss_mb(),
        warning=one_line(summary.error) if summary.error else None, attempts=attempts, worker=worker,
        started_at=started, finished_at=utc_now(),
    )


def attempts_on_disk(job: Job) -> int:
    """Attempts started on `job` in this run: its `.work/<recording>/attempt-*` files (one per worker start)."""
    return len(list(job.work.glob("attempt-*"))) if job.work.is_dir() else 0


def failure(job: Job, error: BaseException | str, attempts: int | None = None) -> Outcome:
    """A `failed` Outcome for a job whose worker raised or died (built by the executor, not the worker)."""
    if isinstance(error, BaseException):
        name = type(error).__name__
        if name == "KilledWorker":
            n = attempts or attempts_on_disk(job)
            text = (f"{job.source}: the worker analysing it died {n} time(s) (out of memory, or a crash in a native "
                    "library?); try fewer workers per machine or more memory per worker")
        else:
            text = f"{job.source}: {name}: {error}"
    else:
        text = error
    return Outcome(job.name, "failed", error=one_line(text), attempts=attempts or max(1, attempts_on_disk(job)),
                   finished_at=utc_now())
