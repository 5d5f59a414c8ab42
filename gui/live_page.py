"""The Live workspace: analyse a webcam in real time; Record writes the CSV and feature vectors only.

The analysis keeps up by dropping camera frames rather than lagging behind (see `gui.live`); the
counts of analysed and dropped frames are shown. Recordings are named
`webcam<index>_<YYYYmmdd-HHMMSS>.csv` (+ `.parquet`) in the chosen folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QStandardPaths, Qt, QTimer, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from libreface.pipeline import AnalyzerOptions
from libreface.sources import Source

from .live import LiveWorker, RecordTarget
from .result_view import ResultView
from .settings import app_settings
from .table import ResultTable
from .workers import features_suffix

LIVE_TABLE_ROWS = 20000
"""Rows kept for the live timelines (older ones scroll out): about 11 minutes at 30 analysed fps."""
DISPLAY_INTERVAL_MS = 50
"""The newest analysed frame is drawn at most this often (20 frames / s); every result still goes
into the table and the recording."""
TIMELINE_EVERY_TICKS = 10
"""Timelines are redrawn every this many display ticks (twice a second)."""


def default_recordings_folder() -> str:
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
    return str(Path(docs) / "libreface")


class LivePage(QWidget):
    """Camera selection, start / stop, record, and the live ResultView.

    Signals:
        status(text): a short message for the status bar.
        recordingSaved(csv_path): a recording ended and its files have their final names.
    """

    status = Signal(str)
    recordingSaved = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker: LiveWorker | None = None
        self.table: ResultTable | None = None
        self.errors: list[str] = []
        self.saved: list[str] = []
        self._index = 0
        self.camera = QSpinBox()
        self.camera.setRange(0, 63)
        self.camera.setToolTip("Camera index (0 = the default camera)")
        self.max_faces = QSpinBox()
        self.max_faces.setRange(1, 32)
        self.start_button = QPushButton("Start camera")
        self.record_button = QPushButton("Record")
        self.record_button.setCheckable(True)
        self.record_button.setEnabled(False)
        self.record_button.setToolTip("Write the CSV and the feature vectors (never the video)")
        self.features_box = QCheckBox("Feature vectors")
        self.features_box.setChecked(True)
        self.folder = QLineEdit(str(app_settings().value("live/output_dir", default_recordings_folder())))
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        self.stats = QLabel("")
        self.start_button.clicked.connect(self.toggle)
        self.record_button.toggled.connect(self.set_recording)
        row = QHBoxLayout()
        row.addWidget(QLabel("Camera"))
        row.addWidget(self.camera)
        row.addWidget(QLabel("Max faces"))
        row.addWidget(self.max_faces)
        row.addWidget(self.start_button)
        row.addWidget(self.record_button)
        row.addWidget(self.features_box)
        row.addWidget(QLabel("Recordings in"))
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.view = ResultView()
        self.view.video.placeholder = "Start the camera to analyse it live; nothing is recorded unless you press Record"
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.stats)
        layout.addWidget(self.view, 1)
        self._pending = None  # (image, frame index, stats) of the newest analysed frame not shown yet
        self._ticks = 0
        self._ui_timer = QTimer(self)
        self._ui_timer.setInterval(DISPLAY_INTERVAL_MS)
        self._ui_timer.timeout.connect(self._ui_tick)

    @property
    def running(self) -> bool:
        return self.worker is not None

    def toggle(self) -> None:
        self.stop() if self.running else self.start()

    def start(self, open_source: Callable[[], Source] | None = None, pace: bool = False) -> None:
        """Open the camera (or `open_source()`, e.g. a video file standing in for one, with `pace=True`)."""
        if self.worker is not None:
            return
        from libreface.sources import WebcamSource

        self._index = self.camera.value()
        index = self._index
        opener = open_source or (lambda: WebcamSource(index))
        self.worker = LiveWorker(opener, AnalyzerOptions(max_faces=self.max_faces.value()), pace=pace, parent=self)
        self.worker.sessionStarted.connect(self._started)
        self.worker.frameReady.connect(self._frame)
        self.worker.recordingSaved.connect(self._saved)
        self.worker.failed.connect(self._failed)
        self.worker.stopped.connect(self._stopped)
        self.worker.start()
        self.start_button.setText("Stop camera")
        self.camera.setEnabled(False)
        self.status.emit(f"Opening camera {index}…")

    def stop(self) -> None:
        """Stop the session (a recording in progress is saved first)."""
        if self.worker is not None:
            self.worker.stop()

    def recording_target(self) -> RecordTarget:
        """File names for a new recording, in the chosen folder."""
        folder = Path(self.folder.text().strip() or default_recordings_folder())
        stem = f"webcam{self._index}_{time.strftime('%Y%m%d-%H%M%S')}"
        csv = folder / f"{stem}.csv"
        features = csv.with_suffix(features_suffix()) if self.features_box.isChecked() else None
        return RecordTarget(str(csv), str(features) if features else None)

    def set_recording(self, on: bool) -> None:
        if self.worker is None:
            return
        if on:
            target = self.recording_target()
            self.worker.set_recording(target)
            self.status.emit(f"Recording to {target.csv_path}")
        else:
            self.worker.set_recording(None)
        self.record_button.setText("Stop recording" if on else "Record")

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for recordings", self.folder.text())
        if folder:
            self.folder.setText(folder)
            app_settings().setValue("live/output_dir", folder)

    @Slot(object, object)
    def _started(self, labels, info) -> None:
        self.table = ResultTable(labels, max_rows=LIVE_TABLE_ROWS)
        self.view.set_table(self.table)
        self.record_button.setEnabled(True)
        self._ui_timer.start()
        self.status.emit(f"Camera {info.path}: {info.width}x{info.height}")

    @Slot(object, object, object)
    def _frame(self, image, result, stats: dict) -> None:
        if self.table is None:
            return
        if len(self.table.frames) and result.frame <= self.table.frames[-1]:  # a new run (record toggled)
            self.table = ResultTable(self.table.labels, max_rows=LIVE_TABLE_ROWS)
            self.view.set_table(self.table)
        self.table.append(result)
        self._pending = (image, result.frame, stats)

    def _ui_tick(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            image, frame, stats = pending
            self.view.show_frame(frame, image)
            self.stats.setText(f"{stats['fps']:.1f} frames/s analysed · camera frames this run: {stats['received']}, "
                               f"dropped to keep up: {stats['dropped']}"
                               + ("   ● REC" if self.worker is not None and self.worker.recording else ""))
        self._ticks += 1
        if self._ticks % TIMELINE_EVERY_TICKS == 0:
            self.view.refresh()

    @Slot(object)
    def _saved(self, summary) -> None:
        self.saved.append(summary.csv)
        self.status.emit(f"Recording saved: {summary.csv} ({summary.frames} frames)")
        self.recordingSaved.emit(summary.csv)

    @Slot(str)
    def _failed(self, message: str) -> None:
        self.errors.append(message)
        box = QMessageBox(QMessageBox.Icon.Warning, "libreface: live", message, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.finished.connect(box.deleteLater)
        box.show()
        self.status.emit(message)

    @Slot()
    def _stopped(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.wait(10000)
            worker.deleteLater()
        self._ui_timer.stop()
        self._ui_tick()
        self.record_button.blockSignals(True)
        self.record_button.setChecked(False)
        self.record_button.setText("Record")
        self.record_button.blockSignals(False)
        self.record_button.setEnabled(False)
        self.start_button.setText("Start camera")
        self.camera.setEnabled(True)
        self.status.emit("Camera stopped")

    def shutdown(self) -> None:
        if self.worker is not None:
            worker = self.worker
            worker.stop()
            worker.wait(15000)
        self._ui_timer.stop()
