"""VideoView: one frame, scaled to fit, with face boxes, face ids and (optionally) landmarks drawn over it.

Coordinates of boxes and landmarks are frame pixels, as in `FaceView`; the view maps them to its own
pixels with the same scale and offset as the picture. Clicking inside a box selects that face.
"""

from __future__ import annotations

import math

import numpy as np
from pyqtgraph.functions import arrayToQPolygonF
from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from libreface.results import OutputLabels

from .table import FaceView

FACE_COLORS: tuple[str, ...] = ("#00c853", "#2979ff", "#ff9100", "#d500f9", "#00b8d4", "#ffd600", "#ff1744", "#76ff03")
"""Overlay colour of face id i: FACE_COLORS[i % len]; the timelines use the same for nothing else."""


def face_color(face_id: int) -> QColor:
    return QColor(FACE_COLORS[face_id % len(FACE_COLORS)])


class VideoView(QWidget):
    """Shows a frame and the faces found in it.

    Signals:
        faceClicked(face_id): the user clicked inside a face box.
    """

    faceClicked = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(240, 135)
        self._image: QImage | None = None
        self._faces: list[FaceView] = []
        self._selected: int | None = None
        self._labels: OutputLabels | None = None
        self.show_boxes = True
        self.show_ids = True
        self.show_landmarks = True
        self.placeholder = "Open a video (Ctrl+O), add files to the Analyze queue, or start a camera"

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt name
        return QSize(640, 360)

    # -- state ------------------------------------------------------------------------------------

    def set_labels(self, labels: OutputLabels | None) -> None:
        self._labels = labels
        self.update()

    def set_image(self, image: QImage | None) -> None:
        self._image = image
        self.update()

    def set_faces(self, faces: list[FaceView], selected: int | None) -> None:
        self._faces = faces
        self._selected = selected
        self.update()

    @property
    def faces(self) -> list[FaceView]:
        return self._faces

    def set_overlays(self, boxes: bool | None = None, ids: bool | None = None, landmarks: bool | None = None) -> None:
        """Turn overlay layers on or off (None leaves a layer as it is)."""
        if boxes is not None:
            self.show_boxes = boxes
        if ids is not None:
            self.show_ids = ids
        if landmarks is not None:
            self.show_landmarks = landmarks
        self.update()

    # -- geometry ---------------------------------------------------------------------------------

    def _mapping(self) -> tuple[float, float, float] | None:
        """(scale, x offset, y offset) from frame pixels to widget pixels, or None without a frame."""
        if self._image is None or self._image.isNull():
            return None
        w, h = self._image.width(), self._image.height()
        s = min(self.width() / w, self.height() / h)
        return s, (self.width() - w * s) / 2, (self.height() - h * s) / 2

    # -- painting ---------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt name
        p = QPainter(self)
        try:
            self._paint(p)
        finally:
            p.end()

    def _paint(self, p: QPainter) -> None:
        p.fillRect(self.rect(), QColor("#111"))
        m = self._mapping()
        if m is None:
            p.setPen(QColor("#aaa"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.placeholder)
            return
        s, ox, oy = m
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        p.drawImage(QRectF(ox, oy, self._image.width() * s, self._image.height() * s), self._image)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        font = QFont(self.font())
        font.setPointSizeF(max(8.0, font.pointSizeF()))
        font.setBold(True)
        p.setFont(font)
        for face in self._faces:
            self._paint_face(p, face, s, ox, oy)

    def _paint_face(self, p: QPainter, face: FaceView, s: float, ox: float, oy: float) -> None:
        color = face_color(face.face_id)
        selected = face.face_id == self._selected
        if self.show_landmarks and face.landmarks_px is not None:
            pts = face.landmarks_px
            pts = pts[np.isfinite(pts).all(axis=1)]
            pen = QPen(color)
            pen.setWidthF(2.0 if len(pts) < 100 else 1.5)
            p.setPen(pen)
            p.drawPoints(arrayToQPolygonF(ox + pts[:, 0] * s, oy + pts[:, 1] * s))
        x0, y0, x1, y1 = face.box_px
        if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
            return
        rect = QRectF(ox + x0 * s, oy + y0 * s, (x1 - x0) * s, (y1 - y0) * s)
        if self.show_boxes:
            pen = QPen(color)
            pen.setWidthF(3.0 if selected else 1.5)
            if not face.success:
                pen.setStyle(Qt.PenStyle.DashLine)
            p.setPen(pen)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.drawRect(rect)
        if self.show_ids:
            text = f"face {face.face_id}"
            if self._labels is not None and face.success and np.isfinite(face.expression).all() and face.expression.size:
                k = int(np.argmax(face.expression))
                text += f"  {self._labels.expressions[k]} {face.expression[k]:.2f}"
            elif not face.success:
                text += "  (not analysed)"
            fm = p.fontMetrics()
            tw, th = fm.horizontalAdvance(text) + 8, fm.height() + 2
            top = rect.top() - th if rect.top() - th >= 0 else rect.bottom()
            tag = QRectF(rect.left(), top, tw, th)
            p.fillRect(tag, color)
            p.setPen(QColor("black"))
            p.drawText(tag, Qt.AlignmentFlag.AlignCenter, text)

    # -- input ------------------------------------------------------------------------------------

    def face_at(self, x: float, y: float) -> int | None:
        """The face whose box contains widget point (x, y); the smallest box wins."""
        m = self._mapping()
        if m is None:
            return None
        s, ox, oy = m
        fx, fy = (x - ox) / s, (y - oy) / s
        hits = [(f.box_px[2] - f.box_px[0], f.face_id) for f in self._faces
                if f.box_px[0] <= fx <= f.box_px[2] and f.box_px[1] <= fy <= f.box_px[3]]
        return min(hits)[1] if hits else None

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt name
        face = self.face_at(event.position().x(), event.position().y())
        if face is not None:
            self.faceClicked.emit(face)
        super().mousePressEvent(event)
