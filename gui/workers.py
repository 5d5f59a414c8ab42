"""AnalyzeWorker: runs `Analyzer.analyze_to_files` off the GUI thread, one job at a time.

The worker is the CLI's code path, called with `on_result=`: the same `Analyzer`, the same
`CsvSink` / `FeatureSink`, so the CSV a job writes is byte-identical to `libreface INPUT -o OUT`
with the same settings. Every analysed frame is also emitted as a signal for the live preview.

Cancelling raises `Cancelled` inside the `on_result` callback: the library's sinks then flush and
leave their crash-safe `<output>.partial` files (valid CSV / features), exactly as after Ctrl-C in
the CLI, and nothing is renamed to the final name.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import chain, count, islice
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from libreface.errors import LibrefaceError
from libreface.outputs.names import candidate_names
from libreface.pipeline import Analyzer, AnalyzerOptions
from libreface.results import OutputLabels

log = logging.getLogger(__name__)


class Cancelled(Exception):
    """Raised in the `on_result` callback to stop a run; the sinks keep their `.partial` files."""


@dataclass(frozen=True)
class AnalyzeSettings:
    """What the Analyze workspace asks for; each field is the CLI flag of the same name.

    Attributes:
        max_faces: `--max-faces`, most faces analysed per frame.
        every: `--every`, analyse every N-th frame (1 = all).
        fmt: `--format`, "native" or "openface".
        features: write feature vectors (`--features`) next to the CSV.
        landmarks: `--landmarks`, add the landmark columns.
        output_dir: folder of the outputs; "" writes them next to each input file.
        threads: `--threads`, ONNX Runtime threads; 0 = all cores.
    """

    max_faces: int = 1
    every: int = 1
    fmt: str = "native"
    features: bool = False
    landmarks: bool = False
    output_dir: str = ""
    threads: int = 0

    def options(self) -> AnalyzerOptions:
        """The `AnalyzerOptions` the CLI builds from the same flags (other options at their defaults)."""
        return replace(AnalyzerOptions(), max_faces=self.max_faces, every=self.every, threads=self.threads)


@dataclass(frozen=True)
class AnalyzeJob:
    """One input to analyse.

    Attributes:
        job_id: the queue's id of the item.
        source: input file path.
        csv_path: final CSV path (rows stream into `<csv_path>.partial` until done).
        features_path: features file (.parquet or .npz), or None.
        settings: the settings in force when the job started.
        resume: continue an existing `.partial` (after a cancel) instead of starting over.
    """

    job_id: int
    source: str
    csv_path: str
    features_path: str | None
    settings: AnalyzeSettings
    resume: bool = False


def expected_frames(n_frames_hint: int | None, every: int) -> int:
    """Frames a run will analyse, from the header's frame count (0 when unknown)."""
    return math.ceil(n_frames_hint / every) if n_frames_hint else 0


class AnalyzeWorker(QObject):
    """Analyses one job at a time, each on its own daemon thread; the Analyzer (model) is loaded once per options.

    Job threads never touch Qt: they post their events to a queue that a GUI-thread timer drains
    every `POLL_MS` and re-emits as signals. A job's thread posts its last event as soon as its
    outputs are final and then lets the library tear the pipeline down on that same thread, so a
    slow teardown never delays the next job.

    Signals (emitted on the GUI thread):
        jobStarted(job_id, OutputLabels): the model is loaded and the first frame analysed.
        frameAnalysed(job_id, FrameResult, done, expected): one per analysed frame; `expected` is
            0 when the container does not say how many frames it has.
        jobFinished(job_id, RunSummary): the CSV (and features) have their final names.
        jobFailed(job_id, message): one line naming the file; no final file was written.
        jobCancelled(job_id): stopped on request; `.partial` files remain.
    """

    POLL_MS = 15

    jobStarted = Signal(int, object)
    frameAnalysed = Signal(int, object, int, int)
    jobFinished = Signal(int, object)
    jobFailed = Signal(int, str)
    jobCancelled = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._lock = threading.Lock()  # guards the cached Analyzer
        self._analyzer: Analyzer | None = None
        self._cancel = threading.Event()
        self._settled = threading.Event()  # set once the current job's outputs are final
        self._settled.set()
        self._events: queue.SimpleQueue = queue.SimpleQueue()  # (signal name, args) from job threads
        self._timer = QTimer(self)
        self._timer.setInterval(self.POLL_MS)
        self._timer.timeout.connect(self._deliver)

    def submit(self, job: AnalyzeJob) -> None:
        """Start `job` on a new thread (returns at once)."""
        self._cancel, self._settled = threading.Event(), threading.Event()
        threading.Thread(target=self._run, args=(job, self._cancel, self._settled), daemon=True,
                         name=f"libreface-gui-job{job.job_id}").start()
        self._timer.start()

    def cancel(self) -> None:
        """Stop the running job at its next frame (thread-safe)."""
        self._cancel.set()

    def shutdown(self, timeout_s: float = 15.0) -> bool:
        """Cancel the running job and wait until its `.partial` files are final; False on timeout."""
        self._cancel.set()
        settled = self._settled.wait(timeout_s)
        self._timer.stop()
        return settled

    def _deliver(self) -> None:
        """Emit, on the GUI thread, what the job threads posted since the last call."""
        while True:
            try:
                name, args = self._events.get_nowait()
            except queue.Empty:
                break
            getattr(self, name).emit(*args)
        if self._settled.is_set() and self._events.empty():
            self._timer.stop()

    def _analyzer_for(self, options: AnalyzerOptions) -> Analyzer:
        with self._lock:
            if self._analyzer is None or self._analyzer.options != options:
                self._analyzer = Analyzer(options)  # the previous one frees with its last reference
            return self._analyzer

    def _run(self, job: AnalyzeJob, cancel: threading.Event, settled: threading.Event) -> None:
        """The job thread: posts events, never calls Qt."""
        post = self._events.put
        s = job.settings
        done = 0

        def on_result(result) -> None:
            nonlocal done
            if cancel.is_set():
                raise Cancelled
            if done == 0:
                post(("jobStarted", (job.job_id, analyzer.labels)))
            done += 1
            hint = analyzer.last_info.n_frames_hint if analyzer.last_info else None
            post(("frameAnalysed", (job.job_id, result, done, expected_frames(hint, s.every))))

        try:
            if cancel.is_set():
                raise Cancelled
            analyzer = self._analyzer_for(s.options())
            summary = analyzer.analyze_to_files(
                job.source, job.csv_path, fmt=s.fmt, landmarks=s.landmarks, blendshapes=False,
                features_path=job.features_path, resume=job.resume, progress=False, on_result=on_result,
            )
        # Each branch reports before its exception is released: releasing it closes the pipeline,
        # which may take a while (see the class docstring) and must not delay the report.
        except Cancelled:  # the sinks have already flushed their .partial files
            post(("jobCancelled", (job.job_id,)))
            settled.set()
        except (LibrefaceError, ValueError) as e:
            post(("jobFailed", (job.job_id, str(e))))
            settled.set()
        except Exception as e:  # noqa: BLE001 - a bug must not kill the queue; one line, traceback in the log
            log.exception("analysis of %s failed", job.source)
            post(("jobFailed", (job.job_id, f"{job.source}: internal error: {type(e).__name__}: {e}")))
            settled.set()
        else:
            post(("jobFinished", (job.job_id, summary)))
            settled.set()


@lru_cache(maxsize=4)
def model_labels(model: str | None = None) -> OutputLabels:
    """Output names (AUs, expression classes, feature size) of a registered model, default the analyzer's.

    Loads the model once (cached): the library has no call that reads a card without a session yet.
    """
    options = AnalyzerOptions(threads=1) if model is None else AnalyzerOptions(model=model, threads=1)
    with Analyzer(options) as analyzer:
        return analyzer.labels


def features_suffix() -> str:
    """".parquet" (as the CLI writes into a folder) when pyarrow is installed, else ".npz"."""
    import importlib.util

    return ".parquet" if importlib.util.find_spec("pyarrow") is not None else ".npz"


def output_paths(source: str | Path, settings: AnalyzeSettings, taken: set[str] = frozenset()) -> tuple[Path, Path | None]:
    """CSV and features paths for `source`: `<folder>/<stem>.csv` and `<folder>/<stem>.parquet`, like the CLI
    writing into a folder; when another queued input already claimed the name (case-insensitively), the next of
    `<parent>__<stem>`, `<grandparent>__<parent>__<stem>`, ... as the CLI and `libreface batch` name equal file names
    from different folders (`libreface.outputs.names`)."""
    source = Path(source)
    folder = Path(settings.output_dir) if settings.output_dir else source.parent
    claimed = {t.casefold() for t in taken}
    names = chain([source.stem], islice(candidate_names(source.absolute()), 1, None),  # then `<stem>_2`, ... (the
                  (f"{source.stem}_{n}" for n in count(2)))                            # same file queued again)
    csv = next(c for c in (folder / f"{name}.csv" for name in names) if str(c).casefold() not in claimed)
    features = csv.with_suffix(features_suffix()) if settings.features else None
    return csv, features
