"""The Viewer workspace: browse a video with the CSV libreface wrote for it, and correct labels.

Play / pause (Space), frame step (Left / Right), seek with the slider or by clicking a timeline.
Overlays, bars and timelines come from the CSV (`ResultTable.from_csv`); the pictures are decoded
on a `FrameReader` thread. When the run wrote feature vectors, the label panel marks faces into
`<features stem>.labels.csv`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSlider,
    QSplitter,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from libreface.errors import LibrefaceError
from libreface.outputs import FEATURE_FORMATS
from libreface.results import OutputLabels
from libreface.sources import VIDEO_SUFFIXES

from .analyze_page import MEDIA_FILTER
from .dialogs import show_error
from .frames import FrameReader
from .label_panel import LabelPanel
from .result_view import ResultView
from .table import ResultTable
from .workers import model_labels


def find_results_csv(video: str | Path, folders: list[str | Path] = ()) -> Path | None:
    """The CSV of `video`: `<stem>.csv` next to it, else in one of `folders` (the output folder)."""
    video = Path(video)
    for folder in [video.parent, *folders]:
        if folder:
            cand = Path(folder) / f"{video.stem}.csv"
            if cand.is_file():
                return cand
    return None


def find_video(csv: str | Path) -> Path | None:
    """The video a CSV was made from, when it sits next to it with the same stem."""
    csv = Path(csv)
    for suffix in VIDEO_SUFFIXES:
        for cand in (csv.with_suffix(suffix), csv.with_suffix(suffix.upper())):
            if cand.is_file():
                return cand
    return None


def find_features(csv: str | Path) -> Path | None:
    """The feature vectors written with a CSV: `<stem>.parquet` or `<stem>.npz` next to it."""
    for suffix in FEATURE_FORMATS[::-1]:  # .parquet first
        cand = Path(csv).with_suffix(suffix)
        if cand.is_file():
            return cand
    return None


class ViewerPage(QWidget):
    """Video + CSV browser with label correction.

    Args:
        labels_provider: returns the model's `OutputLabels` (default: the default model's).
        output_folders: returns extra folders where CSVs are looked for (the Analyze output folder).

    Signals:
        opened(path): a video or CSV was opened (for the recent-files menu).
        status(text): a short message for the status bar.
        frameShown(index): a decoded frame is on screen with its overlays.
    """

    opened = Signal(str)
    status = Signal(str)
    frameShown = Signal(int)

    def __init__(self, labels_provider: Callable[[], OutputLabels] = model_labels,
                 output_folders: Callable[[], list[str]] = lambda: [], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._labels_provider = labels_provider
        self._output_folders = output_folders
        self.video_path: Path | None = None
        self.csv_path: Path | None = None
        self.table: ResultTable | None = None
        self.n_frames = 0  # known length (header hint, then the real end once reached)
        self.fps = 25.0
        self._last_frame_seen = -1
        self.error_boxes: list[QMessageBox] = []

        style = self.style()
        self.open_video_button = QPushButton("Open video…")
        self.open_csv_button = QPushButton("Open results CSV…")
        self.play_button = QPushButton()
        self.play_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_button.setToolTip("Play / pause (Space)")
        self.prev_button = QPushButton()
        self.prev_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward))
        self.prev_button.setToolTip("Previous frame (Left)")
        self.next_button = QPushButton()
        self.next_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward))
        self.next_button.setToolTip("Next frame (Right)")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 0)
        self.position = QLabel("")
        for w in (self.play_button, self.prev_button, self.next_button, self.slider):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # Space / arrows stay the window's shortcuts
        self.open_video_button.clicked.connect(self.open_video_dialog)
        self.open_csv_button.clicked.connect(self.open_csv_dialog)
        self.play_button.clicked.connect(self.toggle_play)
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(1))
        self.slider.valueChanged.connect(self._slider_moved)

        self.view = ResultView()
        self.labels_panel = LabelPanel()
        self.labels_panel.status.connect(self.status)
        self.view.faceChanged.connect(lambda _: self._update_target())
        self.view.seekRequested.connect(self.seek)

        transport = QHBoxLayout()
        transport.addWidget(self.open_video_button)
        transport.addWidget(self.open_csv_button)
        transport.addWidget(self.prev_button)
        transport.addWidget(self.play_button)
        transport.addWidget(self.next_button)
        transport.addWidget(self.slider, 1)
        transport.addWidget(self.position)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.view)
        split.addWidget(self.labels_panel)
        split.setStretchFactor(0, 4)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(transport)
        layout.addWidget(split, 1)

        self.reader = FrameReader(parent=self)
        self.reader.opened.connect(self._reader_opened)
        self.reader.frameReady.connect(self._frame_ready)
        self.reader.ended.connect(self._reader_ended)
        self.reader.failed.connect(self._show_error)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self._tick)

    # -- opening ----------------------------------------------------------------------------------

    def open_video_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video", "", MEDIA_FILTER)
        if path:
            self.open(path)

    def open_csv_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open libreface results", "", "CSV files (*.csv)")
        if path:
            self.open(find_video(path) or self.video_path, path)

    def open_path(self, path: str | Path) -> bool:
        """Open a video (its CSV is looked up) or a CSV (its video is looked up)."""
        if Path(path).suffix.lower() == ".csv":
            return self.open(find_video(path), path)
        return self.open(path)

    def open(self, video: str | Path | None, csv: str | Path | None = None) -> bool:
        """Show `video` with the results of `csv` (looked up next to the video when None).

        Returns False (with a message) when the CSV cannot be read; the video still shows.
        """
        self.pause()
        self.video_path = Path(video) if video else None
        self.n_frames, self._last_frame_seen = 0, -1
        if csv is None and self.video_path is not None:
            csv = find_results_csv(self.video_path, self._output_folders())
        self.csv_path = Path(csv) if csv else None
        ok = self._load_csv()
        self.reader.open(self.video_path)
        if self.video_path is not None:
            self.reader.request(0)
            self.opened.emit(str(self.video_path))
        elif self.csv_path is not None:
            self.view.video.set_image(None)
            self.view.video.placeholder = f"The video of {self.csv_path.name} was not found next to it"
            self.opened.emit(str(self.csv_path))
            self.view.show_frame(int(self.table.frames[0]) if self.table is not None and len(self.table.frames) else 0,
                                 None)
        self._update_position(0)
        return ok

    def _load_csv(self) -> bool:
        self.table = None
        if self.csv_path is None:
            self.view.set_table(None)
            self.labels_panel.info.setText("No results CSV for this video: analyse it first (Analyze tab).")
            self.status.emit(f"{self.video_path.name}: no results CSV found; analyse it first" if self.video_path else "")
            return True
        try:
            labels = self._labels_provider()
            self.table = ResultTable.from_csv(self.csv_path, labels)
        except (ValueError, OSError, LibrefaceError) as e:
            self._show_error(str(e))
            self.view.set_table(None)
            return False
        self.view.set_table(self.table)
        if len(self.table.frames):
            self.n_frames = max(self.n_frames, int(self.table.frames[-1]) + 1)
            self._set_range()
        features = find_features(self.csv_path) if self.table.source_format == "native" else None
        self.labels_panel.set_features(features, labels)
        self.status.emit(f"{self.csv_path.name}: {len(self.table.frames)} analysed frames, "
                         f"{len(self.table.face_ids())} face(s)")
        return True

    @Slot(str)
    def _show_error(self, message: str) -> None:
        show_error(self, "libreface", message, self.error_boxes)
        self.status.emit(message)

    # -- navigation -------------------------------------------------------------------------------

    @property
    def current_frame(self) -> int:
        return self.view.current_frame

    def seek(self, frame: int) -> None:
        """Show frame `frame` (clamped to the video)."""
        frame = max(0, int(frame))
        if self.n_frames:
            frame = min(frame, self.n_frames - 1)
        if self.video_path is not None:
            self.reader.request(frame)
        else:
            self.view.show_frame(frame, None)
            self._after_frame(frame)

    def step(self, delta: int) -> None:
        """Frame step: +1 / -1 frames from the one shown."""
        self.pause()
        self.seek(max(0, self.current_frame) + delta)

    @property
    def playing(self) -> bool:
        return self.timer.isActive()

    def toggle_play(self) -> None:
        self.pause() if self.playing else self.play()

    def play(self) -> None:
        if self.video_path is None:
            return
        if self.n_frames and self.current_frame >= self.n_frames - 1:
            self.seek(0)
        self.timer.start(max(5, int(round(1000 / self.fps))))
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPause))

    def pause(self) -> None:
        self.timer.stop()
        self.play_button.setIcon(self.style().standardIcon(QStyle.StandardPixmap.SP_MediaPlay))

    def _tick(self) -> None:
        if not self.reader.busy:  # decoding slower than the frame rate: skip ticks, never queue
            self.reader.request(self.current_frame + 1)

    def _slider_moved(self, value: int) -> None:
        if value != self.current_frame:
            self.seek(value)

    # -- frames -----------------------------------------------------------------------------------

    @Slot(object)
    def _reader_opened(self, info) -> None:
        self.fps = float(info.fps) if info.fps else 25.0
        self.n_frames = max(self.n_frames, info.n_frames_hint or 0)
        self._set_range()

    @Slot(int)
    def _reader_ended(self, last_index: int) -> None:
        self.pause()
        if last_index >= 0:
            self.n_frames = last_index + 1
            self._set_range()
            if self.current_frame > last_index or self.current_frame < 0:
                self.reader.request(last_index)

    @Slot(int, QImage)
    def _frame_ready(self, index: int, image: QImage) -> None:
        self.view.show_frame(index, image)
        self._after_frame(index)
        self.frameShown.emit(index)

    def _after_frame(self, index: int) -> None:
        self._last_frame_seen = max(self._last_frame_seen, index)
        self._update_position(index)
        self._update_target()

    def _set_range(self) -> None:
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, self.n_frames - 1))
        self.slider.blockSignals(False)
        self.view.set_frame_count(self.n_frames)

    def _update_position(self, index: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        seconds = index / self.fps if self.fps else 0.0
        self.position.setText(f"{index} / {max(self.n_frames - 1, 0)}  ({seconds:.2f} s)")

    def _update_target(self) -> None:
        """Point the label panel at the analysed face shown (if any)."""
        t, sel = self.table, self.view.selected_face
        face = None
        if t is not None and sel is not None and self.current_frame >= 0:
            face = next((f for f in t.faces_at(self.current_frame) if f.face_id == sel and f.success), None)
        self.labels_panel.set_target(face.frame if face else None, face.face_id if face else None)

    def shutdown(self) -> None:
        self.pause()
        self.reader.stop()
