"""ResultView: a frame with its overlays, the selected face's AU and expression bars, and the timelines.

The three workspaces (Analyze preview, Live, Viewer) show results through this one widget. It
displays what a `ResultTable` holds and the picture it is given; it computes nothing.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QCheckBox, QComboBox, QHBoxLayout, QLabel, QSplitter, QVBoxLayout, QWidget

from libreface.results import OutputLabels

from .panels import BarPanel
from .table import FaceView, ResultTable
from .timeline import TimelinePanel
from .video_view import VideoView


class ResultView(QWidget):
    """Video with overlays + bars of the selected face + timelines.

    Signals:
        seekRequested(frame): a timeline was clicked.
        faceChanged(face_id): the selected face changed (-1: none).
    """

    seekRequested = Signal(int)
    faceChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.video = VideoView()
        self.au_panel = BarPanel("AU intensity (0–5)   ● present", 5.0, "#2979ff")
        self.expression_panel = BarPanel("Expression (probability)", 1.0, "#ff9100")
        self.timeline = TimelinePanel()
        self.face_combo = QComboBox()
        self.face_combo.setToolTip("Face shown in the bars and timelines (or click a face in the video)")
        self.frame_label = QLabel("")
        self.frame_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.boxes_box = QCheckBox("Boxes")
        self.ids_box = QCheckBox("IDs")
        self.landmarks_box = QCheckBox("Landmarks")
        for box in (self.boxes_box, self.ids_box, self.landmarks_box):
            box.setChecked(True)
            box.toggled.connect(self._overlays_changed)

        side = QWidget()
        side_layout = QVBoxLayout(side)
        side_layout.setContentsMargins(4, 0, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("Face:"))
        row.addWidget(self.face_combo, 1)
        side_layout.addLayout(row)
        side_layout.addWidget(self.au_panel)
        side_layout.addWidget(self.expression_panel)
        side_layout.addStretch(1)
        side.setMinimumWidth(230)

        top = QSplitter(Qt.Orientation.Horizontal)
        top.addWidget(self.video)
        top.addWidget(side)
        top.setStretchFactor(0, 3)
        top.setStretchFactor(1, 1)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(top)
        split.addWidget(self.timeline)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        self.splitter = split

        overlay_row = QHBoxLayout()
        overlay_row.addWidget(self.frame_label, 1)
        overlay_row.addWidget(QLabel("Overlays:"))
        overlay_row.addWidget(self.boxes_box)
        overlay_row.addWidget(self.ids_box)
        overlay_row.addWidget(self.landmarks_box)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split, 1)
        layout.addLayout(overlay_row)

        self._labels: OutputLabels | None = None
        self._table: ResultTable | None = None
        self._face: int | None = None  # chosen by the user; None follows the table's main face
        self._frame = -1
        self._presence_index: list[int] = []
        self._face_ids: list[int] = []
        self.video.faceClicked.connect(self.select_face)
        self.timeline.seekRequested.connect(self.seekRequested)
        self.face_combo.activated.connect(self._combo_activated)

    # -- configuration ----------------------------------------------------------------------------

    def set_labels(self, labels: OutputLabels) -> None:
        """Name the bars and timeline series after the model's outputs."""
        self._labels = labels
        self.video.set_labels(labels)
        self.au_panel.set_names(labels.au_intensity)
        self.expression_panel.set_names(labels.expressions)
        self.timeline.set_labels(labels)
        occ = {au: k for k, au in enumerate(labels.au_occurrence)}
        self._presence_index = [occ.get(au, -1) for au in labels.au_intensity]

    def set_table(self, table: ResultTable | None) -> None:
        """Display `table` (None clears); keeps the user's face choice when that face is in it."""
        if table is not None and (self._labels is None or table.labels != self._labels):
            self.set_labels(table.labels)
        self._table = table
        if table is None or (self._face is not None and self._face not in table.face_ids()):
            self._face = None
        self._face_ids = []
        self.refresh()
        if table is None:
            self.video.set_image(None)
            self.video.set_faces([], None)

    @property
    def table(self) -> ResultTable | None:
        return self._table

    def set_frame_count(self, n_frames: int) -> None:
        self.timeline.set_frame_count(n_frames)

    # -- face selection ---------------------------------------------------------------------------

    @property
    def selected_face(self) -> int | None:
        """The face shown in the bars and timelines: the user's choice, else the table's main face."""
        if self._face is not None:
            return self._face
        return self._table.primary_face() if self._table is not None else None

    def select_face(self, face_id: int) -> None:
        self._face = int(face_id)
        self._sync_combo()
        self.timeline.set_table(self._table, self.selected_face)
        self.show_frame(self._frame, None)
        self.faceChanged.emit(self._face)

    def _combo_activated(self, index: int) -> None:
        face = self.face_combo.itemData(index)
        if face is not None:
            self.select_face(int(face))

    def _sync_combo(self) -> None:
        ids = self._table.face_ids() if self._table is not None else []
        if ids != self._face_ids:
            self._face_ids = ids
            self.face_combo.blockSignals(True)
            self.face_combo.clear()
            for fid in ids:
                self.face_combo.addItem(f"face {fid}", fid)
            self.face_combo.blockSignals(False)
        sel = self.selected_face
        i = self.face_combo.findData(sel) if sel is not None else -1
        if i != self.face_combo.currentIndex():
            self.face_combo.setCurrentIndex(i)

    # -- display ----------------------------------------------------------------------------------

    @property
    def current_frame(self) -> int:
        return self._frame

    def refresh(self) -> None:
        """Update the face list and timelines after the table grew (call a few times a second)."""
        self._sync_combo()
        self.timeline.set_table(self._table, self.selected_face)
        if self._frame >= 0:
            self.show_frame(self._frame, None)

    def show_frame(self, index: int, image: QImage | None) -> None:
        """Show frame `index` (`image` None keeps the current picture) with its overlays and bars."""
        self._frame = index
        if image is not None:
            self.video.set_image(image)
        faces = self._table.faces_at(index) if self._table is not None and index >= 0 else []
        sel = self.selected_face
        self.video.set_faces(faces, sel)
        face = next((f for f in faces if f.face_id == sel), None)
        self._show_face(face)
        self.timeline.set_cursor(index)
        shown = faces[0].frame if faces else None
        text = f"frame {index}" if index >= 0 else ""
        if shown is not None and shown != index:
            text += f" (results of frame {shown})"
        if index >= 0:
            text += f" · {len(faces)} face{'s' if len(faces) != 1 else ''}"
        self.frame_label.setText(text)

    def _show_face(self, face: FaceView | None) -> None:
        if face is None or self._labels is None:
            self.au_panel.set_values(None)
            self.expression_panel.set_values(None)
            return
        thr = self._labels.occurrence_threshold
        probs = face.au_probability
        marks = np.array([k >= 0 and bool(np.isfinite(probs[k]) and probs[k] >= thr) for k in self._presence_index], bool)
        self.au_panel.set_values(face.au_intensity, marks)
        self.expression_panel.set_values(face.expression, highlight_max=True)

    def _overlays_changed(self) -> None:
        self.video.set_overlays(self.boxes_box.isChecked(), self.ids_box.isChecked(), self.landmarks_box.isChecked())
