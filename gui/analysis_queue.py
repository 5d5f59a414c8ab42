"""AnalysisQueue: the Analyze workspace's list of files, their states, and the one worker that runs them.

Items run one after another. A bad file fails on its own (state FAILED with the library's one-line
message, signal `itemFailed` for the dialog) and the queue goes on with the next item. A cancelled
item keeps its `.partial` outputs; retrying it continues them (the CLI's `--resume`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from .workers import AnalyzeJob, AnalyzeSettings, AnalyzeWorker, output_paths


class ItemState(str, Enum):
    """Where a queue item stands."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    WARNING = "done, with a warning"  # the input was damaged; the rows before the damage are written
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass
class QueueItem:
    """One input file of the queue.

    Attributes:
        item_id: stable id within the session.
        source: input path.
        state: see `ItemState`.
        done: frames analysed so far; expected: frames the run will analyse (0 = unknown).
        csv_path, features_path: outputs of the last run ("" before the first).
        message: the error or warning line of the last run, else "".
    """

    item_id: int
    source: str
    state: ItemState = ItemState.QUEUED
    done: int = 0
    expected: int = 0
    csv_path: str = ""
    features_path: str = ""
    message: str = ""

    @property
    def progress(self) -> float:
        """0..1 (1 when done; 0 while the frame count is unknown)."""
        if self.state in (ItemState.DONE, ItemState.WARNING):
            return 1.0
        return min(1.0, self.done / self.expected) if self.expected else 0.0


class AnalysisQueue(QObject):
    """Files to analyse with the current `settings`, run by one `AnalyzeWorker`.

    Signals:
        itemAdded(item_id), itemRemoved(item_id), itemChanged(item_id): for the table.
        runStarted(item_id, OutputLabels): a run began (the preview can set up its table).
        frameAnalysed(item_id, FrameResult): every analysed frame of the running item.
        itemFailed(item_id, message): for the error dialog.
        finished(): nothing left to run.
    """

    itemAdded = Signal(int)
    itemRemoved = Signal(int)
    itemChanged = Signal(int)
    runStarted = Signal(int, object)
    frameAnalysed = Signal(int, object)
    itemFailed = Signal(int, str)
    finished = Signal()

    def __init__(self, worker: AnalyzeWorker | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.settings = AnalyzeSettings()
        self.items: dict[int, QueueItem] = {}
        self._next_id = 1
        self._running_id: int | None = None
        self._active = False
        self._resume: set[int] = set()
        self._worker = worker or AnalyzeWorker(self)
        self._worker.jobStarted.connect(self._on_started)
        self._worker.frameAnalysed.connect(self._on_frame)
        self._worker.jobFinished.connect(self._on_finished)
        self._worker.jobFailed.connect(self._on_failed)
        self._worker.jobCancelled.connect(self._on_cancelled)

    # -- commands ---------------------------------------------------------------------------------

    def add(self, paths: list[str | Path]) -> list[int]:
        """Queue files (duplicates of a queued or running item are skipped); returns the new ids."""
        pending = {it.source for it in self.items.values() if it.state in (ItemState.QUEUED, ItemState.RUNNING)}
        ids = []
        for p in paths:
            src = str(Path(p))
            if src in pending:
                continue
            item = QueueItem(self._next_id, src)
            self.items[item.item_id] = item
            self._next_id += 1
            pending.add(src)
            ids.append(item.item_id)
            self.itemAdded.emit(item.item_id)
        if self._active and self._running_id is None:
            self._start_next()
        return ids

    def start(self) -> None:
        """Run the queued items, one after another, until none is left."""
        self._active = True
        if self._running_id is None:
            self._start_next()

    def cancel(self) -> None:
        """Stop the running item (it becomes CANCELLED, its `.partial` files stay) and the queue."""
        self._active = False
        if self._running_id is not None:
            self._worker.cancel()

    def retry(self, item_id: int) -> None:
        """Queue a failed, cancelled or finished item again; a cancelled one resumes its `.partial`."""
        item = self.items[item_id]
        if item.state in (ItemState.QUEUED, ItemState.RUNNING):
            return
        if item.state == ItemState.CANCELLED:
            self._resume.add(item_id)
        item.state, item.done, item.message = ItemState.QUEUED, 0, ""
        self.itemChanged.emit(item_id)
        if self._running_id is None:
            self.start()

    def remove(self, item_id: int) -> None:
        """Drop an item that is not running (its output files are left alone)."""
        if item_id == self._running_id:
            return
        if self.items.pop(item_id, None) is not None:
            self._resume.discard(item_id)
            self.itemRemoved.emit(item_id)

    def shutdown(self) -> None:
        """Cancel and stop the worker thread (call when the window closes)."""
        self._active = False
        self._worker.shutdown()

    @property
    def running_id(self) -> int | None:
        """The item being analysed, or None."""
        return self._running_id

    # -- running ----------------------------------------------------------------------------------

    def _start_next(self) -> None:
        item = next((it for it in self.items.values() if it.state == ItemState.QUEUED), None)
        if item is None:
            self._active = False
            self.finished.emit()
            return
        taken = {it.csv_path for it in self.items.values() if it.csv_path and it.item_id != item.item_id}
        resume = item.item_id in self._resume and bool(item.csv_path)
        if resume:
            csv, features = Path(item.csv_path), Path(item.features_path) if item.features_path else None
        else:
            csv, features = output_paths(item.source, self.settings, taken)
        self._resume.discard(item.item_id)
        item.csv_path, item.features_path = str(csv), str(features) if features else ""
        item.state, item.done, item.expected, item.message = ItemState.RUNNING, 0, 0, ""
        self._running_id = item.item_id
        self.itemChanged.emit(item.item_id)
        self._worker.submit(AnalyzeJob(item.item_id, item.source, str(csv), str(features) if features else None,
                                       self.settings, resume=resume))

    def _on_started(self, item_id: int, labels) -> None:
        self.runStarted.emit(item_id, labels)

    def _on_frame(self, item_id: int, result, done: int, expected: int) -> None:
        item = self.items.get(item_id)
        if item is None:
            return
        item.done, item.expected = done, expected
        self.frameAnalysed.emit(item_id, result)
        self.itemChanged.emit(item_id)

    def _end(self, item_id: int, state: ItemState, message: str = "") -> None:
        item = self.items.get(item_id)
        if item is not None:
            item.state, item.message = state, message
            self.itemChanged.emit(item_id)
        self._running_id = None
        if self._active:
            self._start_next()
        else:
            self.finished.emit()

    def _on_finished(self, item_id: int, summary) -> None:
        if item_id in self.items:
            self.items[item_id].done = summary.frames
        if summary.error:
            self._end(item_id, ItemState.WARNING, summary.error)
        else:
            self._end(item_id, ItemState.DONE)

    def _on_failed(self, item_id: int, message: str) -> None:
        self.itemFailed.emit(item_id, message)
        self._end(item_id, ItemState.FAILED, message)

    def _on_cancelled(self, item_id: int) -> None:
        self._end(item_id, ItemState.CANCELLED, "cancelled; the rows so far are in the .partial file")
