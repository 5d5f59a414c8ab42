"""Batch step: many recordings -> one CSV each (and features), a run ledger; resumable, local processes or Dask.

```
libreface batch interviews/ -o study/                       # local worker processes, one per core
libreface batch manifest.csv -o study/ --dask-local 8       # a Dask LocalCluster on 127.0.0.1
libreface batch manifest.csv -o study/ --scheduler tcp://head:8786   # a running Dask cluster (docs/slurm.md)
```

Inputs are files, folders, `.txt` lists, or a manifest CSV with a `path` column; its other columns (participant,
session, ...) are metadata carried into the ledger and, by `libreface collect`, into the dataset. An optional
`recording` column names the outputs.

OUTDIR holds:

```
csv/<recording>.csv              one per recording, renamed into place only when complete
features/<recording>.parquet     with --features
ledger.jsonl                     the run ledger: one JSON line per change, appended and fsync'ed (source of truth)
ledger.csv                       the ledger's latest state, one row per recording, rewritten atomically
.work/<recording>/               attempts in progress: `.partial` files, and one `attempt-*` file per attempt
                                 holding its worker's host:pid; removed when the recording is done or failed
.lock                            held by the coordinating process while a batch runs
```

Only the coordinating process writes the ledger. The ledger is append-only: a crash can tear at most its last line,
which the reader drops. A second `libreface batch` on the same OUTDIR is refused while the first holds `.lock`.
Workers write each attempt to its own file under `.work/` and rename it into `csv/` when it is complete, so an
attempt that dies, or a duplicate that Dask runs after losing track of a worker, never leaves a half-written CSV.

Re-running the same command skips a recording when its ledger status is `done`, its outputs exist, and the input
file (size, modification time), the output settings and the model and landmarker sha256 are unchanged; every other
recording (`failed`, `partial`, `pending`, new, changed) is analysed again from its first frame, so its outputs never
depend on where an earlier run was stopped.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import re
import shutil
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from . import __version__
from .errors import InputError, LibrefaceError, ModelError, OutputError
from .models.registry import DEFAULT_MODEL

log = logging.getLogger(__name__)

__all__ = [
    "LEDGER_COLUMNS",
    "STATUSES",
    "BatchReport",
    "BatchSettings",
    "Outcome",
    "Recording",
    "read_ledger",
    "read_manifest",
    "resolve_recordings",
    "run_batch",
]

STATUSES: tuple[str, ...] = ("done", "failed", "partial", "pending")
"""Ledger statuses: `done` (outputs complete), `failed` (after its retries; `error` says why), `partial` (an attempt
started and was interrupted), `pending` (queued by a run that stopped before trying it)."""

ACTIONS: tuple[str, ...] = ("analysed", "skipped", "failed", "interrupted", "queued")
"""What the latest run did with a recording (ledger column `action`)."""

LEDGER_COLUMNS: tuple[str, ...] = (
    "recording", "path", "status", "action", "attempts", "frames", "faces", "video_fps", "duration_s", "wall_s",
    "speed_x", "peak_rss_mb", "warning", "error", "csv", "features", "model", "model_sha256", "landmarker_sha256",
    "settings", "libreface_version", "started_at", "finished_at", "worker", "run", "source_size", "source_mtime_ns",
)
"""Columns of `ledger.csv`, followed by the manifest's metadata columns.

recording: output name (csv/<recording>.csv); path: the input, absolute; attempts: tries in the latest run;
frames, faces: analysed frames and face rows; video_fps: the container's frame rate; duration_s: the recording's
length in seconds (container); wall_s: analysis wall time; speed_x: duration_s / wall_s (video seconds per wall
second, for one worker); peak_rss_mb: the worker process's peak resident memory; warning: decoding stopped early or
skipped damaged data (the frames before it are in the CSV); settings: hash of the output settings and the model and
landmarker sha256; started_at, finished_at: UTC, ISO 8601; worker: host:pid.
"""

MANIFEST_PATH_COLUMN = "path"
MANIFEST_NAME_COLUMN = "recording"
_RESERVED = frozenset(LEDGER_COLUMNS) | {"frame", "face_id", "person_id", "timestamp", "confidence", "success"}

LEDGER_FILE = "ledger.jsonl"
LEDGER_VIEW = "ledger.csv"
CSV_DIR = "csv"
FEATURES_DIR = "features"
WORK_DIR = ".work"
LOCK_FILE = ".lock"


# ---------------------------------------------------------------------------------------------------------------------
# Settings and records
# ---------------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchSettings:
    """What every recording of a batch is analysed with.

    Attributes:
        model: registered student name, or a path to an .onnx file.
        fmt: CSV layout, "native" or "openface".
        max_faces, every, fps, small_faces, mirror: as in `AnalyzerOptions`.
        landmarks, blendshapes: extra CSV columns (blendshapes: native layout only).
        features: also write `features/<recording>.parquet`.
        threads: ONNX Runtime threads per worker; 0 = cores // workers (local) or 1 (remote scheduler).
            Not part of the skip check: it changes speed, not results.
    """

    model: str = DEFAULT_MODEL
    fmt: str = "native"
    max_faces: int = 1
    every: int = 1
    fps: float | None = None
    small_faces: bool = True
    mirror: bool = True
    landmarks: bool = False
    blendshapes: bool = False
    features: bool = False
    threads: int = 0

    def __post_init__(self) -> None:
        if self.fmt not in ("native", "openface"):
            raise ValueError(f"fmt must be 'native' or 'openface', got {self.fmt!r}")
        self.analyzer_options(self.threads)  # the analyzer's own checks of the shared fields
        if self.fmt == "openface" and self.blendshapes:
            raise ValueError("blendshapes are only available with fmt='native'")

    def output_fields(self) -> dict:
        """The settings that change the outputs (all but `threads`)."""
        d = asdict(self)
        d.pop("threads")
        return d

    def analyzer_options(self, threads: int):
        from .pipeline import AnalyzerOptions

        return AnalyzerOptions(model=self.model, max_faces=self.max_faces, every=self.every, fps=self.fps,
                               small_faces=self.small_faces, mirror=self.mirror, threads=threads)


@dataclass(frozen=True)
class Recording:
    """One input of a batch.

    Attributes:
        name: unique, filesystem-safe name of its outputs (csv/<name>.csv); fixed the first time it is seen.
        path: the input file, absolute.
        meta: manifest metadata (column -> text), {} for inputs given as files or folders.
    """

    name: str
    path: str
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    """What one worker did with one recording (returned by the worker, written to the ledger).

    Attributes:
        status: "done" or "failed".
        frames, faces: analysed frames and face rows written (None when failed).
        video_fps: container frame rate (None for images); duration_s: recording length, seconds.
        wall_s: time the worker spent on it; peak_rss_mb: the worker process's peak resident memory, MiB.
        warning: why decoding stopped early or skipped data, else None; error: one line when failed, else None.
        attempts: tries in this run, counting those whose worker died.
    """

    name: str
    status: str
    frames: int | None = None
    faces: int | None = None
    video_fps: float | None = None
    duration_s: float | None = None
    wall_s: float = 0.0
    peak_rss_mb: float | None = None
    warning: str | None = None
    error: str | None = None
    attempts: int = 1
    worker: str = ""
    started_at: str = ""
    finished_at: str = ""


@dataclass(frozen=True)
class _Job:
    """What a worker needs for one recording (pickled to the worker)."""

    name: str
    source: str
    outdir: str
    settings: BatchSettings
    threads: int
    model_sha256: str
    quiet_native_logs: bool = False

    @property
    def work(self) -> Path:
        return Path(self.outdir) / WORK_DIR / self.name


@dataclass
class BatchReport:
    """What `run_batch` did.

    Attributes:
        outdir: the output folder; ledger: its ledger.csv.
        done: recordings analysed by this run; skipped: already done with the same settings and model.
        failed: (recording or input, one-line error) for each failure.
        interrupted: recordings left `partial` or `pending` by a Ctrl-C / SIGTERM (then `signal` is set).
        video_s, wall_s: video seconds analysed by this run and its wall time.
    """

    outdir: Path
    ledger: Path
    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    interrupted: list[str] = field(default_factory=list)
    signal: int | None = None
    video_s: float = 0.0
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted and self.signal is None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ---------------------------------------------------------------------------------------------------------------------
# Inputs: files, folders, lists and manifests -> named recordings
# ---------------------------------------------------------------------------------------------------------------------


def read_manifest(path: str | os.PathLike) -> list[tuple[Path, dict[str, str], str | None]]:
    """Rows of a manifest CSV: (input path, metadata, explicit recording name or None).

    The file is UTF-8 CSV with a header. `path` (required) is a video or image, relative to the manifest's folder or
    absolute; `recording` (optional) names the outputs; every other column is metadata, kept as text.

    Raises:
        InputError: unreadable file, no `path` column, an empty path, or a column libreface itself writes.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: cannot read the manifest ({_one_line(e)}); expected a UTF-8 CSV with a "
                         f"'{MANIFEST_PATH_COLUMN}' column") from None
    if MANIFEST_PATH_COLUMN not in header:
        raise InputError(f"{path}: the manifest has no '{MANIFEST_PATH_COLUMN}' column (columns: "
                         f"{', '.join(header) or 'none'}); expected a header such as path,participant,session")
    clash = sorted(h for h in header if h in _RESERVED and h not in (MANIFEST_PATH_COLUMN, MANIFEST_NAME_COLUMN))
    if clash:
        raise InputError(f"{path}: manifest column(s) {', '.join(clash)} clash with columns libreface writes; "
                         "rename them (e.g. with a prefix such as meta_)")
    meta_cols = [h for h in header if h not in (MANIFEST_PATH_COLUMN, MANIFEST_NAME_COLUMN) and h]
    out = []
    for line, row in enumerate(rows, start=2):
        if not any(row.values()):
            continue
        entry = row.get(MANIFEST_PATH_COLUMN, "")
        if not entry:
            raise InputError(f"{path}: line {line} has an empty '{MANIFEST_PATH_COLUMN}'; expected a video or "
                             "image path on every row")
        p = Path(entry).expanduser()
        p = p if p.is_absolute() else path.parent / p
        name = row.get(MANIFEST_NAME_COLUMN) or None
        out.append((p, {c: row.get(c, "") for c in meta_cols}, name))
    if not out:
        raise InputError(f"{path}: the manifest lists no recordings; expected one row per video or image")
    return out


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _safe_name(text: str) -> str:
    return _UNSAFE.sub("_", text).strip("._") or "recording"


def _candidates(path: Path) -> Iterator[str]:
    """Names for `path`, shortest first: stem, parent__stem, grandparent__parent__stem, ..., then with the suffix,
    then with a hash of the full path."""
    stem = _safe_name(path.stem)
    parents = [_safe_name(p) for p in path.parent.parts if _UNSAFE.sub("", p).strip("._")]  # not "/", "..", "C:\\"
    yield stem
    for k in range(1, len(parents) + 1):
        yield "__".join(parents[-k:] + [stem])
    with_suffix = "__".join(parents + [stem]) + ("_" + _safe_name(path.suffix) if path.suffix else "")
    yield with_suffix
    yield f"{with_suffix}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


def _assign_names(items: list[tuple[Path, dict, str | None]], known: dict[str, str]) -> list[Recording]:
    """Give each input a unique (case-insensitively) name, reusing the names the ledger already has for its path."""
    taken = {name.casefold(): path for path, name in known.items()}  # folded name -> path
    names: dict[str, str] = {}  # path -> name
    for path, _, given in items:
        key = str(path)
        if key in known:
            names[key] = known[key]
        elif given:
            name = _safe_name(given)
            owner = taken.get(name.casefold())
            if owner is not None and owner != key:
                raise InputError(f"recording name {given!r} is given to both {owner} and {key}; "
                                 "make the 'recording' column unique")
            names[key] = name
            taken[name.casefold()] = key
    # the others: by groups of equal stems, the shortest candidate that is unique for the whole group
    groups: dict[str, list[Path]] = {}
    for path, _, _ in items:
        if str(path) not in names:
            groups.setdefault(_safe_name(path.stem).casefold(), []).append(path)
    for group in groups.values():
        cands = [list(_candidates(p)) for p in group]
        for level in range(max(len(c) for c in cands)):
            chosen = [c[min(level, len(c) - 1)] for c in cands]
            folded = [n.casefold() for n in chosen]
            if len(set(folded)) == len(folded) and not any(f in taken for f in folded):
                break
        for p, name in zip(group, chosen):
            names[str(p)] = name
            taken[name.casefold()] = str(p)
    return [Recording(names[str(p)], str(p), meta) for p, meta, _ in items]


def resolve_recordings(inputs: Iterable[str | os.PathLike], known: dict[str, str] | None = None
                       ) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Expand the inputs of a batch into named recordings.

    Args:
        inputs: video or image files, folders (their media files, sorted), `.txt` lists, and manifest `.csv` files.
            A file that does not exist is kept: the batch records it as failed, and the others go on.
        known: input path -> recording name already in the ledger; those names are kept.

    Returns:
        (recordings in input order without duplicates, [(input, one-line error)] for folders or lists that give
        nothing).
    """
    from .sources import iter_inputs

    items: list[tuple[Path, dict, str | None]] = []
    errors: list[tuple[str, str]] = []
    for item in inputs:
        p = Path(item).expanduser()
        try:
            if p.suffix.lower() == ".csv" and p.is_file():
                items += read_manifest(p)
            elif p.is_dir() or (p.suffix.lower() == ".txt" and p.is_file()):
                items += [(q, {}, None) for q in iter_inputs([p])]
            else:
                items.append((p, {}, None))
        except InputError as e:
            errors.append((str(item), str(e)))
    seen: dict[str, tuple[Path, dict, str | None]] = {}
    for path, meta, name in items:
        path = Path(os.path.abspath(path))
        if str(path) in seen:
            if seen[str(path)][1] != meta:
                log.warning("%s: listed twice with different metadata; the first row is used", path)
            continue
        seen[str(path)] = (path, meta, name)
    return _assign_names(list(seen.values()), known or {}), errors


# ---------------------------------------------------------------------------------------------------------------------
# The ledger
# ---------------------------------------------------------------------------------------------------------------------


class _Ledger:
    """Append-only JSON-lines ledger, written by the coordinating process only, under an exclusive lock."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self.path = outdir / LEDGER_FILE
        self._lock_fd = _lock(outdir / LOCK_FILE)
        try:
            self.state = _fold(self.path)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            size = os.fstat(self._fd).st_size
            if size:
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":  # a torn last line from a crash: start on a fresh line
                        os.write(self._fd, b"\n")
        except OSError as e:
            _unlock(self._lock_fd)
            raise OutputError(f"{self.path}: cannot write the ledger ({e.strerror or e}); "
                              "choose a writable output folder") from None

    def append(self, record: dict) -> None:
        data = (json.dumps(record, ensure_ascii=False, allow_nan=False, default=str) + "\n").encode("utf-8")
        try:
            os.write(self._fd, data)
            os.fsync(self._fd)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot append to the ledger ({e.strerror or e}); "
                              "free some disk space and rerun the same command") from None

    def update(self, name: str, **fields) -> dict:
        rec = {**self.state.get(name, {}), **fields, "type": "recording", "recording": name, "time": _now()}
        self.append(rec)
        self.state[name] = rec
        return rec

    def write_view(self) -> Path:
        return _write_view(self.outdir / LEDGER_VIEW, self.state.values())

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        _unlock(self._lock_fd)
        self._lock_fd = None


def _lock(path: Path):
    """Take an exclusive lock on `path` (held until `_unlock`); OutputError if another batch holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise OutputError(f"{path}: cannot create the lock file ({e.strerror or e}); "
                          "choose a writable output folder") from None
    try:
        if os.name == "nt":  # pragma: no cover - Windows
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = ""
        try:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip()
        except OSError:
            pass
        os.close(fd)
        raise OutputError(f"{path.parent}: another libreface batch is writing this folder"
                          f"{f' ({holder})' if holder else ''}; wait for it to end or choose another -o") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
    return fd


def _unlock(fd) -> None:
    if fd is not None:
        os.close(fd)  # closing the descriptor releases flock / msvcrt locks


def _fold(path: Path) -> dict[str, dict]:
    """Latest record of each recording in a ledger file; torn or foreign lines are skipped."""
    state: dict[str, dict] = {}
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return state
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(rec, dict) and rec.get("type") == "recording" and rec.get("recording"):
            state[rec["recording"]] = rec
    if bad:
        log.warning("%s: skipped %d unreadable line(s) (a run that crashed mid-write)", path, bad)
    return state


def _view_rows(records: Iterable[dict]) -> tuple[list[str], list[dict]]:
    records = sorted(records, key=lambda r: (r.get("order", 1 << 62), r["recording"]))
    meta_cols: list[str] = []
    for r in records:
        for k in r.get("meta") or {}:
            if k not in meta_cols:
                meta_cols.append(k)
    rows = []
    for r in records:
        row = {c: r.get(c) for c in LEDGER_COLUMNS}
        row.update({k: (r.get("meta") or {}).get(k, "") for k in meta_cols})
        rows.append(row)
    return list(LEDGER_COLUMNS) + meta_cols, rows


def _write_view(path: Path, records: Iterable[dict]) -> Path:
    """ledger.csv: one row per recording, written to a temporary file and renamed (never half-written)."""
    cols, rows = _view_rows(records)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for row in rows:
            w.writerow({k: "" if v is None else v for k, v in row.items()})
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_ledger(outdir: str | os.PathLike):
    """The ledger of a batch folder as a pandas DataFrame: one row per recording, columns `LEDGER_COLUMNS` then the
    manifest's metadata columns. Read from `ledger.jsonl`, so it is current even while a batch runs."""
    import pandas as pd

    path = Path(outdir) / LEDGER_FILE
    if not path.is_file():
        raise InputError(f"{path}: no batch ledger here; expected the -o folder of a `libreface batch` run")
    cols, rows = _view_rows(_fold(path).values())
    return pd.DataFrame(rows, columns=cols)


# ---------------------------------------------------------------------------------------------------------------------
# The worker side
# ---------------------------------------------------------------------------------------------------------------------

_CACHE = threading.local()  # per worker thread: AnalyzerOptions -> (Analyzer, model sha256)


def _cached_analyzer(options, quiet_native_logs: bool = False):
    """The worker's Analyzer for `options`, loaded once per process and thread (models load once per worker)."""
    if quiet_native_logs:
        from .landmarks import quiet_native_logs as quiet

        quiet()  # once per process: MediaPipe's C++ lines, dropped here rather than interleaved with others'
    cache = getattr(_CACHE, "analyzers", None)
    if cache is None:
        cache = _CACHE.analyzers = {}
    if options not in cache:
        from .models.registry import get_entry, sha256_file
        from .pipeline import Analyzer

        for old in cache.values():  # one model in memory at a time
            old[0].close()
        cache.clear()
        analyzer = Analyzer(options)
        sha = (sha256_file(Path(options.model)) if options.model.endswith(".onnx") and Path(options.model).is_file()
               else get_entry(options.model).sha256)
        cache[options] = (analyzer, sha)
    return cache[options]


def _init_local_worker(settings: BatchSettings, threads: int, quiet_native_logs: bool) -> None:
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


def _analyze(job: _Job) -> Outcome:
    """Analyse one recording on a worker (a local process or a Dask worker); safe to run twice at once.

    Input and model problems come back as a `failed` Outcome (retrying cannot fix them); any other exception is
    raised, so that the executor retries the recording.
    """
    started, t0 = _now(), time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    token = uuid.uuid4().hex[:12]
    work = job.work
    work.mkdir(parents=True, exist_ok=True)
    (work / f"attempt-{token}").write_text(worker)  # which worker is on it (host:pid), for people and tests
    attempts = len(list(work.glob("attempt-*")))

    def failed(error: str) -> Outcome:
        return Outcome(job.name, "failed", error=_one_line(error), attempts=attempts, worker=worker, started_at=started,
                       finished_at=_now(), wall_s=round(time.perf_counter() - t0, 3), peak_rss_mb=_peak_rss_mb())

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
        warning=_one_line(summary.error) if summary.error else None, attempts=attempts, worker=worker,
        started_at=started, finished_at=_now(),
    )


def _attempts_on_disk(job: _Job) -> int:
    return len(list(job.work.glob("attempt-*"))) if job.work.is_dir() else 0


def _failure(job: _Job, error: BaseException | str, attempts: int | None = None) -> Outcome:
    if isinstance(error, BaseException):
        name = type(error).__name__
        if name == "KilledWorker":
            n = attempts or _attempts_on_disk(job)
            text = (f"{job.source}: the worker analysing it died {n} time(s) (out of memory, or a crash in a native "
                    "library?); try fewer workers per machine or more memory per worker")
        else:
            text = f"{job.source}: {name}: {error}"
    else:
        text = error
    return Outcome(job.name, "failed", error=_one_line(text), attempts=attempts or max(1, _attempts_on_disk(job)),
                   finished_at=_now())


# ---------------------------------------------------------------------------------------------------------------------
# Executors: each turns jobs into Outcomes, in completion order
# ---------------------------------------------------------------------------------------------------------------------


def _local_outcomes(jobs: list[_Job], workers: int, retries: int) -> Iterator[Outcome]:
    """Local worker processes (spawned), each loading the models once. A task that raises is resubmitted up to
    `retries` times; when a worker process dies, the pool is replaced and the recordings it held are resubmitted,
    each charged one attempt per death it was running at."""
    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    first = jobs[0]
    ctx = mp.get_context("spawn")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(min(workers, len(jobs)), mp_context=ctx, initializer=_init_local_worker,
                                   initargs=(first.settings, first.threads, first.quiet_native_logs))

    errors: dict[str, int] = {}
    pool = new_pool()
    running = {pool.submit(_analyze, job): job for job in jobs}
    try:
        while running:
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            lost: list[_Job] = []
            again: list[_Job] = []
            for fut in finished:
                job = running.pop(fut)
                try:
                    yield fut.result()
                except BrokenProcessPool:
                    lost.append(job)
                except Exception as e:  # noqa: BLE001 - a transient failure: this path's retry (no engine here)
                    errors[job.name] = errors.get(job.name, 0) + 1
                    if errors[job.name] <= retries:
                        again.append(job)
                    else:
                        yield _failure(job, e)
            if lost:  # a worker died: every future of the pool fails; start a new pool
                lost += list(running.values())
                running.clear()
                _stop_pool(pool)
                pool = new_pool()
                for job in lost:
                    n = _attempts_on_disk(job)
                    if n > retries:
                        yield _failure(job, f"{job.source}: the worker process analysing it died {n} time(s) (out "
                                            "of memory, or a crash in a native library?)", attempts=n)
                    else:
                        again.append(job)
            for job in again:
                running[pool.submit(_analyze, job)] = job
    finally:
        _stop_pool(pool)


def _stop_pool(pool) -> None:
    """Cancel what is queued and end the worker processes now (they may be in the middle of a recording)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # the executor has no public terminate (3.11)
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)


def _dask():
    try:
        import distributed
    except ImportError as e:
        raise ImportError("--dask-local and --scheduler need Dask: pip install 'libreface-cpu[dask]'") from e
    return distributed


def _local_cluster(workers: int, retries: int):
    """A LocalCluster of `workers` single-threaded worker processes, every port on 127.0.0.1 (any free one)."""
    import dask

    distributed = _dask()
    with dask.config.set({"distributed.scheduler.allowed-failures": retries}):
        return distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                        scheduler_port=0, dashboard_address="127.0.0.1:0",
                                        silence_logs=logging.ERROR)


def _dask_outcomes(client, jobs: list[_Job], retries: int) -> Iterator[Outcome]:
    """Dask futures: `retries=` re-runs a task that raised, the scheduler re-runs the tasks of a worker that died
    (up to its `allowed-failures`, then KilledWorker). Largest files are given the highest priority."""
    distributed = _dask()
    run = uuid.uuid4().hex[:8]
    futures = {
        client.submit(_analyze, job, key=f"libreface-{job.name}-{run}", retries=retries, pure=False,
                      priority=len(jobs) - i): job
        for i, job in enumerate(jobs)
    }
    try:
        for fut in distributed.as_completed(futures):
            job = futures[fut]
            if fut.status == "finished":
                yield fut.result()
            elif fut.status == "cancelled":
                yield _failure(job, f"{job.source}: cancelled by the Dask cluster")
            else:
                yield _failure(job, fut.exception())
            fut.release()
    finally:
        pending = [f for f in futures if not f.done()]
        if pending:
            client.cancel(pending)


# ---------------------------------------------------------------------------------------------------------------------
# The coordinator
# ---------------------------------------------------------------------------------------------------------------------


def _model_hashes(model: str) -> tuple[str, str]:
    """(student sha256, landmarker sha256), after verifying both files here (fails before any worker starts)."""
    from .models.registry import get_entry, list_models, sha256_file, verify, weights_path

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
    from .align import ALIGN_VERSION

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
    from .models.session import default_threads

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
) -> BatchReport:
    """Analyse many recordings into `outdir`, resumably (see the module docstring for the layout and the ledger).

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
        _dask()
    student_sha, landmarker_sha = _model_hashes(settings.model)
    settings_hash = _settings_hash(settings, student_sha, landmarker_sha)
    outdir = Path(outdir)
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{outdir}: cannot create the output folder ({e.strerror or e}); choose another -o") from None

    t0 = time.perf_counter()
    ledger = _Ledger(outdir)
    report = BatchReport(outdir, outdir / LEDGER_VIEW)
    run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:4]
    stop = _SignalCatcher()
    cluster = own_client = bar = None
    by_name: dict[str, _Job] = {}
    remaining: set[str] = set()
    try:
        with stop:
            known = {r["path"]: name for name, r in ledger.state.items() if r.get("path")}
            recordings, input_errors = resolve_recordings(inputs, known)
            report.failed += input_errors
            for _, error in input_errors:
                _say(error, progress)
            executor = ("dask-local" if dask_local else "dask" if (scheduler or client) else "local")
            ledger.append({"type": "run", "run": run_id, "started_at": _now(), "executor": executor,
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
                                               "error": error, "finished_at": _now()})
                    report.failed.append((rec.name, error))
                    _say(error, progress)
                    continue
                ledger.update(rec.name, **base, **blank, status="pending", action="queued", attempts=0)
                todo.append((rec, st.st_size))

            todo.sort(key=lambda t: -t[1])  # largest first: the long ones do not end up alone at the end
            n_workers = dask_local or jobs or _cores()
            threads = settings.threads if (scheduler or client) else _threads_per_worker(settings.threads, n_workers)
            threads = threads or 1
            job_list = [_Job(rec.name, rec.path, str(outdir), settings, threads, student_sha, quiet_native_logs)
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
                        distributed = _dask()
                        if dask_local:
                            cluster = _local_cluster(dask_local, retries)
                            own_client = distributed.Client(cluster)
                        else:
                            own_client = distributed.Client(scheduler, timeout="30s")
                    outcomes = _dask_outcomes(client or own_client, job_list, retries)
                else:
                    outcomes = _local_outcomes(job_list, n_workers, retries)
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
            started = _attempts_on_disk(job) > 0
            ledger.update(name, status="partial" if started else "pending",
                          action="interrupted" if started else "queued", attempts=_attempts_on_disk(job),
                          error="interrupted" if started else None, finished_at=_now() if started else None)
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
    from .models.session import default_threads

    return default_threads()


def _record(ledger: _Ledger, outcome: Outcome, job: _Job, report: BatchReport, bar) -> None:
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


# ---------------------------------------------------------------------------------------------------------------------
# Command line: `libreface batch`
# ---------------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="libreface batch", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Analyse many recordings into one folder, resumably: one CSV per recording and a run ledger. "
        "Rerun the same command to finish what is missing; then `libreface collect OUTDIR`.")
    p.add_argument("inputs", nargs="+", type=Path,
                   help="video or image files, folders, .txt lists, or a manifest .csv with a 'path' column (its other "
                   "columns, e.g. participant and session, are kept as metadata; an optional 'recording' column "
                   "names the outputs)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (created)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=0, help="local worker processes; 0 = one per core")
    where.add_argument("--dask-local", type=int, default=0, metavar="N",
                       help="run on a Dask LocalCluster of N worker processes on 127.0.0.1 (needs the dask extra)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on a Dask cluster, e.g. tcp://head:8786 (see docs/slurm.md)")
    p.add_argument("--retries", type=int, default=2,
                   help="extra tries for a recording whose worker raised or died; bad input files are not retried")
    p.add_argument("--format", choices=["native", "openface"], default="native", help="CSV column layout")
    p.add_argument("--model", default=DEFAULT_MODEL, help="student model: a registered name or an .onnx file")
    p.add_argument("--max-faces", type=int, default=1, help="most faces analysed per frame")
    p.add_argument("--every", type=int, default=1, help="analyse every N-th frame")
    p.add_argument("--fps", type=float, default=None, help="analyse at most this many frames per second of video")
    p.add_argument("--features", action="store_true", help="also write features/<recording>.parquet")
    p.add_argument("--landmarks", action="store_true", help="add the landmark columns")
    p.add_argument("--blendshapes", action="store_true", help="add the 52 blendshape columns (native format)")
    p.add_argument("--no-small-faces", action="store_true", help="skip the second detection pass for small faces")
    p.add_argument("--no-mirror", action="store_true", help="run each face once, not also mirrored and averaged")
    p.add_argument("--threads", type=int, default=0,
                   help="ONNX Runtime threads per worker; 0 = cores // workers (1 with --scheduler)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _quiet_dask_logs() -> None:
    """Keep Dask's INFO / WARNING lines (cluster start, worker restarts) for --debug: the ledger says what happened.
    Its import sets each `distributed.*` logger's level from the Dask config, so they are lowered after it."""
    _dask()
    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.ERROR)


def batch_command(argv: list[str]) -> int:
    """`libreface batch`: exit 0 when every recording is done, 1 when any failed, 2 for bad arguments, 130 / 143
    after Ctrl-C / SIGTERM (rerun the same command to finish)."""
    p = build_parser()
    args = p.parse_args(argv)
    for flag, low in (("jobs", 0), ("dask_local", 0), ("threads", 0), ("retries", 0), ("every", 1), ("max_faces", 1)):
        if getattr(args, flag) < low:
            p.error(f"--{flag.replace('_', '-')} must be >= {low}, got {getattr(args, flag)}")
    if args.fps is not None and args.fps <= 0:
        p.error(f"--fps must be > 0, got {args.fps}")
    if args.format == "openface" and args.blendshapes:
        p.error("--blendshapes is only available with --format native")
    settings = BatchSettings(model=args.model, fmt=args.format, max_faces=args.max_faces, every=args.every,
                             fps=args.fps, small_faces=not args.no_small_faces, mirror=not args.no_mirror, landmarks=args.landmarks,
                             blendshapes=args.blendshapes, features=args.features, threads=args.threads)
    try:
        if (args.dask_local or args.scheduler) and not args.debug:
            _quiet_dask_logs()
        report = run_batch(args.inputs, args.output, settings, jobs=args.jobs, dask_local=args.dask_local,
                           scheduler=args.scheduler, retries=args.retries, progress=not args.quiet,
                           quiet_native_logs=not args.debug)
    except ImportError as e:  # a missing optional extra: exit 1, as the analyze command does
        if args.debug:
            raise
        print(f"libreface: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    except ValueError as e:
        if args.debug:
            raise
        p.error(str(e))
    if args.quiet:
        pass
    elif report.signal is not None:
        print(f"libreface: interrupted; {len(report.done)} recording(s) finished in this run, "
              f"{len(report.interrupted)} left; rerun the same command to finish them", file=sys.stderr)
    else:
        speed = f", {report.video_s / report.wall_s:.1f} video-s per s" if report.video_s and report.wall_s else ""
        print(f"libreface: {len(report.done)} analysed, {len(report.skipped)} already done, {len(report.failed)} "
              f"failed in {report.wall_s:.1f} s{speed}; ledger: {report.ledger}", file=sys.stderr)
    if report.signal is not None:
        return 128 + int(report.signal)
    return 1 if report.failed else 0
