"""BarPanel: labelled horizontal bars, used for the AU intensities (0..5) and the expression probabilities (0..1).

Names come from the model's `OutputLabels`; a NaN value (no face, or not analysed) draws an empty
bar with "–". Painted directly (no child widgets), so updating it at video rate costs little.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

ROW_PX = 17


class BarPanel(QWidget):
    """Bars for one vector of values.

    Args:
        title: shown above the bars (e.g. "AU intensity (0–5)").
        max_value: value of a full bar (5 for AU intensity, 1 for probabilities).
        color: bar colour.
    """

    def __init__(self, title: str, max_value: float, color: str = "#2979ff", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.max_value = float(max_value)
        self.color = QColor(color)
        self.names: tuple[str, ...] = ()
        self.values = np.zeros(0, np.float32)
        self.marks = np.zeros(0, bool)
        self.highlight: int | None = None
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)

    def set_names(self, names: tuple[str, ...]) -> None:
        """Set the bar labels (clears the values)."""
        self.names = tuple(names)
        self.values = np.full(len(self.names), np.nan, np.float32)
        self.marks = np.zeros(len(self.names), bool)
        self.highlight = None
        self.setFixedHeight(self.sizeHint().height())
        self.updateGeometry()
        self.update()

    def set_values(self, values: np.ndarray | None, marks: np.ndarray | None = None, highlight_max: bool = False) -> None:
        """Show `values` ((N,) in `names` order; None or NaN = unknown). `marks` (N,) bool draws a dot
        after a bar (AU present); `highlight_max` emphasises the largest value (the predicted class)."""
        n = len(self.names)
        self.values = np.full(n, np.nan, np.float32) if values is None else np.asarray(values, np.float32)[:n]
        self.marks = np.zeros(n, bool) if marks is None else np.asarray(marks, bool)[:n]
        finite = np.isfinite(self.values)
        self.highlight = int(np.nanargmax(self.values)) if highlight_max and finite.any() else None
        self.update()

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt name
        return QSize(240, ROW_PX * (len(self.names) + 1) + 6)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt name
        p = QPainter(self)
        try:
            self._paint(p)
        finally:
            p.end()

    def _paint(self, p: QPainter) -> None:
        fm = p.fontMetrics()
        p.setPen(self.palette().windowText().color())
        p.drawText(QRectF(0, 0, self.width(), ROW_PX), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                   self.title)
        name_w = max([fm.horizontalAdvance(n) for n in self.names] + [0]) + 8
        value_w = fm.horizontalAdvance("0.00") + 18
        bar_w = max(10.0, self.width() - name_w - value_w)
        for i, name in enumerate(self.names):
            y = ROW_PX * (i + 1) + 2
            v = float(self.values[i]) if i < len(self.values) else math.nan
            bold = i == self.highlight
            f = p.font()
            f.setBold(bold)
            p.setFont(f)
            p.setPen(self.palette().windowText().color())
            p.drawText(QRectF(0, y, name_w, ROW_PX - 2), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, name)
            track = QRectF(name_w, y + 2, bar_w, ROW_PX - 6)
            p.fillRect(track, QColor(127, 127, 127, 50))
            if math.isfinite(v):
                frac = min(max(v / self.max_value, 0.0), 1.0)
                color = QColor(self.color)
                if self.highlight is not None and not bold:
                    color.setAlpha(150)
                p.fillRect(QRectF(track.left(), track.top(), track.width() * frac, track.height()), color)
                text = f"{v:.2f}"
            else:
                text = "–"
            p.drawText(QRectF(name_w + bar_w + 4, y, value_w - 14, ROW_PX - 2),
                       Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, text)
            if i < len(self.marks) and self.marks[i]:
                p.setBrush(QColor("#ff1744"))
                p.setPen(Qt.PenStyle.NoPen)
                p.drawEllipse(QRectF(self.width() - 9, y + 4, 7, 7))
