"""Batch records: settings, recordings, jobs, outcomes and the report passed between the steps; the folder layout."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ..models.registry import DEFAULT_MODEL

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

LEDGER_FILE = "ledger.jsonl"
LEDGER_VIEW = "ledger.csv"
CSV_DIR = "csv"
FEATURES_DIR = "features"
WORK_DIR = ".work"
LOCK_FILE = ".lock"


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
    mirror: bool = False
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
        from ..pipeline import AnalyzerOptions

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
class Job:
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


def utc_now() -> str:
    """The time now, UTC, ISO 8601 with milliseconds and a `Z`, as the ledger writes it."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def one_line(text: str) -> str:
    """`text` with every run of whitespace (newlines too) made one space: an error message for one ledger cell."""
    return " ".join(str(text).split())
