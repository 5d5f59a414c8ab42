"""The Analyze workspace: a queue of files analysed one after another into CSVs, with a live preview.

Settings are the CLI's flags (max faces, every N-th frame, CSV layout, landmarks, feature vectors,
output folder), and each file goes through `Analyzer.analyze_to_files`, so its CSV is the one
`libreface FILE -o OUT` writes with the same settings. A file that cannot be analysed gets a
non-modal message and the FAILED state; the queue goes on.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import QColor, QDragEnterEvent, QDropEvent, QImage
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from libreface.errors import LibrefaceError
from libreface.outputs import FORMATS
from libreface.sources import IMAGE_SUFFIXES, VIDEO_SUFFIXES, iter_inputs

from .analysis_queue import AnalysisQueue, ItemState
from .dialogs import show_error
from .frames import FrameReader
from .result_view import ResultView
from .settings import app_settings
from .table import ResultTable
from .workers import AnalyzeSettings

MEDIA_FILTER = "Videos and images ({})".format(" ".join(f"*{s}" for s in VIDEO_SUFFIXES + IMAGE_SUFFIXES))
_STATE_COLORS = {
    ItemState.DONE: "#1b5e20", ItemState.WARNING: "#e65100", ItemState.FAILED: "#b71c1c",
    ItemState.CANCELLED: "#616161", ItemState.RUNNING: "#0d47a1", ItemState.QUEUED: "#424242",
}
COL_FILE, COL_STATE, COL_PROGRESS, COL_OUTPUT = range(4)
UI_INTERVAL_MS = 100
"""Period of the preview and progress updates during an analysis (at most 10 preview frames / s)."""
TIMELINE_EVERY_TICKS = 3
"""Timelines are redrawn every this many UI ticks (about 3 times a second)."""


class AnalyzePage(QWidget):
    """Queue + settings + preview.

    Signals:
        openInViewer(video, csv): the user asked to browse a finished file in the Viewer.
        status(text): a short message for the status bar.
    """

    openInViewer = Signal(str, str)
    status = Signal(str)

    def __init__(self, queue: AnalysisQueue | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.queue = queue or AnalysisQueue(parent=self)
        self.error_boxes: list[QMessageBox] = []  # non-modal error messages still open
        self.errors: list[str] = []  # every error message of the session, in order
        self._rows: dict[int, int] = {}  # item id -> table row
        self._table: ResultTable | None = None
        self._preview_item: int | None = None

        # settings
        self.max_faces = QSpinBox()
        self.max_faces.setRange(1, 32)
        self.every = QSpinBox()
        self.every.setRange(1, 10000)
        self.every.setToolTip("Analyse every N-th frame (the CLI's --every); 1 = all frames")
        self.fmt = QComboBox()
        self.fmt.addItems(list(FORMATS))
        self.fmt.setToolTip("CSV layout: libreface's native columns, or OpenFace 2.0's names and order")
        self.landmarks = QCheckBox("Landmarks in the CSV")
        self.features = QCheckBox("Feature vectors (for label correction)")
        self.features.setToolTip("Also write each face's feature vector (.parquet) next to the CSV")
        self.output_dir = QLineEdit()
        self.output_dir.setPlaceholderText("next to each input file")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_output)
        out_row = QHBoxLayout()
        out_row.addWidget(self.output_dir, 1)
        out_row.addWidget(browse)
        form = QFormLayout()
        form.addRow("Max faces", self.max_faces)
        form.addRow("Every N-th frame", self.every)
        form.addRow("CSV format", self.fmt)
        form.addRow("", self.landmarks)
        form.addRow("", self.features)
        form.addRow("Output folder", out_row)
        settings_box = QGroupBox("Settings")
        settings_box.setLayout(form)

        # queue
        self.table = QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["File", "State", "Progress", "Output"])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_FILE, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(COL_STATE, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COL_PROGRESS, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(COL_OUTPUT, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setColumnWidth(COL_PROGRESS, 150)
        self.table.doubleClicked.connect(lambda _: self.open_selected())
        self.add_button = QPushButton("Add files…")
        self.add_folder_button = QPushButton("Add folder…")
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel")
        self.retry_button = QPushButton("Retry")
        self.remove_button = QPushButton("Remove")
        self.view_button = QPushButton("Open in Viewer")
        self.add_button.clicked.connect(self.add_files_dialog)
        self.add_folder_button.clicked.connect(self.add_folder_dialog)
        self.start_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.queue.cancel)
        self.retry_button.clicked.connect(self._retry_selected)
        self.remove_button.clicked.connect(self._remove_selected)
        self.view_button.clicked.connect(self.open_selected)
        buttons = QGridLayout()
        for col, b in enumerate((self.add_button, self.add_folder_button, self.view_button)):
            buttons.addWidget(b, 0, col)
        for col, b in enumerate((self.start_button, self.cancel_button, self.retry_button, self.remove_button)):
            buttons.addWidget(b, 1, col)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(settings_box)
        left_layout.addWidget(self.table, 1)
        left_layout.addLayout(buttons)

        # preview
        self.preview = ResultView()
        self.preview.video.placeholder = "Add videos to the queue and press Start; the frames being analysed show here"
        self.preview_box = QCheckBox("Preview the frames being analysed")
        self.preview_box.setChecked(True)
        self.preview_box.setToolTip("Decodes the video a second time for display (in memory only)")
        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addWidget(self.preview_box)
        right_layout.addWidget(self.preview, 1)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        layout = QVBoxLayout(self)
        layout.addWidget(split)

        self.reader = FrameReader(parent=self)
        self.reader.frameReady.connect(self._preview_frame)
        self.reader.opened.connect(self._reader_opened)
        # Per-frame signals only store the latest state; this timer shows it, so the GUI thread's work
        # is bounded by the timer rate however fast frames are analysed (e.g. frames without faces).
        self._dirty_rows: set[int] = set()
        self._latest_frame: int | None = None
        self._ticks = 0
        self._ui_timer = QTimer(self)
        self._ui_timer.setInterval(UI_INTERVAL_MS)
        self._ui_timer.timeout.connect(self._ui_tick)

        q = self.queue
        q.itemAdded.connect(self._item_added)
        q.itemRemoved.connect(self._item_removed)
        q.itemChanged.connect(self._item_changed)
        q.runStarted.connect(self._run_started)
        q.frameAnalysed.connect(self._frame_analysed)
        q.itemFailed.connect(self._item_failed)
        q.finished.connect(self._queue_finished)
        for w in (self.max_faces, self.every):
            w.valueChanged.connect(self._settings_changed)
        self.fmt.currentIndexChanged.connect(self._settings_changed)
        for w in (self.landmarks, self.features):
            w.toggled.connect(self._settings_changed)
        self.output_dir.editingFinished.connect(self._settings_changed)
        self.load_settings()
        self._update_buttons()

    # -- settings ---------------------------------------------------------------------------------

    def current_settings(self) -> AnalyzeSettings:
        """The settings as the widgets show them."""
        return AnalyzeSettings(
            max_faces=self.max_faces.value(), every=self.every.value(), fmt=self.fmt.currentText(),
            features=self.features.isChecked(), landmarks=self.landmarks.isChecked(),
            output_dir=self.output_dir.text().strip(),
        )

    def set_settings(self, s: AnalyzeSettings) -> None:
        self.max_faces.setValue(s.max_faces)
        self.every.setValue(s.every)
        self.fmt.setCurrentText(s.fmt)
        self.landmarks.setChecked(s.landmarks)
        self.features.setChecked(s.features)
        self.output_dir.setText(s.output_dir)
        self._settings_changed()

    def _settings_changed(self) -> None:
        self.queue.settings = self.current_settings()

    def load_settings(self) -> None:
        st = app_settings()
        d = AnalyzeSettings()
        self.max_faces.setValue(int(st.value("analyze/max_faces", d.max_faces)))
        self.every.setValue(int(st.value("analyze/every", d.every)))
        fmt = str(st.value("analyze/format", d.fmt))
        self.fmt.setCurrentText(fmt if fmt in FORMATS else d.fmt)
        self.landmarks.setChecked(str(st.value("analyze/landmarks", d.landmarks)).lower() == "true")
        self.features.setChecked(str(st.value("analyze/features", d.features)).lower() == "true")
        self.output_dir.setText(str(st.value("analyze/output_dir", d.output_dir)))
        self._settings_changed()

    def save_settings(self) -> None:
        s, st = self.current_settings(), app_settings()
        st.setValue("analyze/max_faces", s.max_faces)
        st.setValue("analyze/every", s.every)
        st.setValue("analyze/format", s.fmt)
        st.setValue("analyze/landmarks", s.landmarks)
        st.setValue("analyze/features", s.features)
        st.setValue("analyze/output_dir", s.output_dir)

    def _browse_output(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.output_dir.text())
        if folder:
            self.output_dir.setText(folder)
            self._settings_changed()

    # -- adding files -----------------------------------------------------------------------------

    def add_paths(self, paths: list[str | Path]) -> list[int]:
        """Queue files and folders (a folder with its subfolders, like `libreface --recursive`; equal file names get
        the CLI's folder names, `gui.workers.output_paths`); a folder without media gets a message."""
        files: list[str] = []
        for p in paths:
            if Path(p).is_dir():
                try:
                    files += [str(f) for f in iter_inputs([p], recursive=True)]
                except LibrefaceError as e:
                    self.show_error(str(e))
            else:
                files.append(str(p))
        ids = self.queue.add(files)
        self._update_buttons()
        return ids

    def add_files_dialog(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Add videos or images to the queue", "", MEDIA_FILTER)
        if files:
            self.add_paths(files)

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Add every video and image of a folder and its subfolders")
        if folder:
            self.add_paths([folder])

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt name
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt name
        self.add_paths([u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()])

    # -- commands ---------------------------------------------------------------------------------

    def start(self) -> None:
        self._settings_changed()
        self.queue.start()
        self._update_buttons()

    def _selected_ids(self) -> list[int]:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return [item_id for item_id, row in self._rows.items() if row in rows]

    def _retry_selected(self) -> None:
        for item_id in self._selected_ids():
            self.queue.retry(item_id)
        self._update_buttons()

    def _remove_selected(self) -> None:
        for item_id in self._selected_ids():
            self.queue.remove(item_id)
        self._update_buttons()

    def open_selected(self) -> None:
        for item_id in self._selected_ids():
            item = self.queue.items[item_id]
            if item.state in (ItemState.DONE, ItemState.WARNING):
                self.openInViewer.emit(item.source, item.csv_path)
                return

    def show_error(self, message: str) -> QMessageBox:
        """A non-modal warning (the queue keeps running behind it)."""
        self.errors.append(message)
        box = show_error(self, "libreface: cannot analyse", message, self.error_boxes)
        self.status.emit(message)
        return box

    # -- queue events -----------------------------------------------------------------------------

    def _item_added(self, item_id: int) -> None:
        item = self.queue.items[item_id]
        row = self.table.rowCount()
        self.table.insertRow(row)
        self._rows[item_id] = row
        name = QTableWidgetItem(Path(item.source).name)
        name.setToolTip(item.source)
        self.table.setItem(row, COL_FILE, name)
        self.table.setItem(row, COL_STATE, QTableWidgetItem())
        self.table.setItem(row, COL_OUTPUT, QTableWidgetItem())
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setTextVisible(True)
        self.table.setCellWidget(row, COL_PROGRESS, bar)
        self._update_row(item_id)

    def _item_removed(self, item_id: int) -> None:
        row = self._rows.pop(item_id)
        self.table.removeRow(row)
        self._rows = {i: (r - 1 if r > row else r) for i, r in self._rows.items()}

    def _item_changed(self, item_id: int) -> None:
        item = self.queue.items.get(item_id)
        if item is not None and item.state == ItemState.RUNNING and item.done:
            self._dirty_rows.add(item_id)  # progress: shown by the next UI tick
            return
        self._dirty_rows.discard(item_id)
        self._update_row(item_id)

    def _update_row(self, item_id: int) -> None:
        item = self.queue.items.get(item_id)
        row = self._rows.get(item_id)
        if item is None or row is None:
            return
        state = self.table.item(row, COL_STATE)
        state.setText(item.state.value)
        state.setForeground(QColor(_STATE_COLORS[item.state]))
        state.setToolTip(item.message)
        bar: QProgressBar = self.table.cellWidget(row, COL_PROGRESS)
        bar.setValue(int(round(1000 * item.progress)))
        bar.setFormat(f"{item.done} / {item.expected or '?'} frames" if item.state == ItemState.RUNNING
                      else f"{item.done} frames" if item.done else "")
        out = self.table.item(row, COL_OUTPUT)
        out.setText(Path(item.csv_path).name if item.csv_path else "")
        out.setToolTip(item.csv_path + (f"\n{item.features_path}" if item.features_path else ""))
        if item.state != ItemState.RUNNING:
            self._update_buttons()

    def _run_started(self, item_id: int, labels) -> None:
        self._preview_item = item_id
        self._table = ResultTable(labels)
        self.preview.set_table(self._table)
        self.reader.open(self.queue.items[item_id].source if self.preview_box.isChecked() else None)
        self._latest_frame = None
        self._ui_timer.start()
        self._update_buttons()
        self.status.emit(f"Analysing {Path(self.queue.items[item_id].source).name}")

    def _frame_analysed(self, item_id: int, result) -> None:
        if item_id != self._preview_item or self._table is None:
            return
        self._table.append(result)
        self._latest_frame = result.frame

    def _ui_tick(self) -> None:
        for item_id in list(self._dirty_rows):
            self._update_row(item_id)
        self._dirty_rows.clear()
        frame, self._latest_frame = self._latest_frame, None
        if frame is not None:
            if self.preview_box.isChecked() and self._preview_item is not None:
                if not self.reader.busy:
                    self.reader.request(frame)
                else:
                    self._latest_frame = frame  # try again next tick
            else:
                self.preview.show_frame(frame, None)
        self._ticks += 1
        if self._ticks % TIMELINE_EVERY_TICKS == 0:
            self.preview.refresh()

    @Slot(object)
    def _reader_opened(self, info) -> None:
        self.preview.set_frame_count(info.n_frames_hint or 0)

    @Slot(int, QImage)
    def _preview_frame(self, index: int, image: QImage) -> None:
        self.preview.show_frame(index, image)

    def _item_failed(self, item_id: int, message: str) -> None:
        self.show_error(message)

    def _queue_finished(self) -> None:
        self._ui_timer.stop()
        self._ui_tick()
        self.preview.refresh()
        self._update_buttons()
        done = sum(it.state in (ItemState.DONE, ItemState.WARNING) for it in self.queue.items.values())
        failed = sum(it.state == ItemState.FAILED for it in self.queue.items.values())
        self.status.emit(f"Queue idle: {done} done, {failed} failed")

    def _update_buttons(self) -> None:
        running = self.queue.running_id is not None
        queued = any(it.state == ItemState.QUEUED for it in self.queue.items.values())
        self.start_button.setEnabled(queued and not running)
        self.cancel_button.setEnabled(running)

    def shutdown(self) -> None:
        """Stop the analysis and the preview reader (window closing)."""
        self._ui_timer.stop()
        self.queue.shutdown()
        self.reader.stop()
