"""TimelinePanel: the selected face's AU intensities and expression probabilities over the whole recording.

Two pyqtgraph plots share the x axis (frame index): AU intensity (0..5) above, expression
probability (0..1) below. Which series are drawn is chosen in the "AUs" and "Expressions" menus
(remembered in QSettings). A vertical line marks the current frame; clicking a plot or dragging the
line asks to seek there (`seekRequested`). Lines break where the face is absent (NaN). Each plot's legend
sits in a column of its own to the right of it, so that 17 AUs never cover the curves; both legend columns
have the same width, which keeps the two x axes aligned.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QToolButton, QVBoxLayout, QWidget

from libreface.results import OutputLabels

from .settings import app_settings, read_list
from .table import ResultTable

pg.setConfigOptions(background="w", foreground="#333", antialias=False)

LEGEND_WIDTH_PX = 230  # both plots' legend columns (3 columns of "AU12" / "happiness" at 7 pt)


class _SeriesPlot:
    """One plot with a curve per label name, a cursor line and a menu of which names are drawn."""

    def __init__(self, owner: "TimelinePanel", kind: str, title: str, y_max: float) -> None:
        """`title` names the y axis (values 0..`y_max`) and the series menu."""
        self.owner, self.kind, self.y_max = owner, kind, y_max
        self.widget = pg.GraphicsLayoutWidget()
        self.widget.setMinimumHeight(110)
        self.plot = item = self.widget.addPlot(row=0, col=0)
        item.setLabel("left", title)
        # no grid: grid lines belong to the axes, whose repaint would then follow every cursor move
        item.setMouseEnabled(x=True, y=False)
        item.setYRange(0, y_max, padding=0.02)
        item.setClipToView(True)
        item.setDownsampling(auto=True, mode="peak")
        self.legend = pg.LegendItem(colCount=3, labelTextSize="7pt", verSpacing=-6)
        self.widget.addItem(self.legend, row=0, col=1)
        self.widget.ci.layout.setColumnFixedWidth(1, LEGEND_WIDTH_PX)
        self.cursor = pg.InfiniteLine(pos=0, angle=90, movable=True, pen=pg.mkPen("#d50000", width=1.5))
        self.cursor.sigDragged.connect(lambda line: owner.seekRequested.emit(max(0, int(round(line.value())))))
        item.addItem(self.cursor, ignoreBounds=True)
        self.widget.scene().sigMouseClicked.connect(self._clicked)
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.menu = QMenu(owner)
        self.button = QToolButton(owner)
        self.button.setText(f"{title} ▾")
        self.button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.button.setMenu(self.menu)

    def set_names(self, names: tuple[str, ...]) -> None:
        item = self.plot
        for curve in self.curves.values():
            item.removeItem(curve)
        self.curves.clear()
        self.menu.clear()
        hidden = set(read_list(app_settings(), f"timeline/hidden_{self.kind}"))
        for j, name in enumerate(names):
            pen = pg.mkPen(pg.intColor(j, hues=max(len(names), 1), values=1, maxValue=220), width=1.5)
            curve = pg.PlotDataItem([], [], pen=pen, name=name, connect="finite")
            curve.setVisible(name not in hidden)
            item.addItem(curve)
            self.curves[name] = curve
            action = self.menu.addAction(name)
            action.setCheckable(True)
            action.setChecked(name not in hidden)
            action.toggled.connect(lambda on, n=name: self.set_visible(n, on))
        self._rebuild_legend()

    def set_visible(self, name: str, on: bool) -> None:
        self.curves[name].setVisible(on)
        self._rebuild_legend()
        hidden = [n for n, c in self.curves.items() if not c.isVisible()]
        app_settings().setValue(f"timeline/hidden_{self.kind}", hidden)
        self.owner.refresh()

    def visible(self) -> list[str]:
        return [n for n, c in self.curves.items() if c.isVisible()]

    def _rebuild_legend(self) -> None:
        self.legend.clear()
        for name, curve in self.curves.items():
            if curve.isVisible():
                self.legend.addItem(curve, name)

    def set_data(self, x: np.ndarray, y: np.ndarray) -> None:
        for j, curve in enumerate(self.curves.values()):
            if not curve.isVisible():
                continue
            col = y[:, j] if y.shape[0] else y[:, 0:0]
            if len(col) and np.isfinite(col).any():
                curve.setData(x, col, connect="finite")
            else:
                curve.setData([], [])

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        vb = self.plot.vb
        pos = event.scenePos()
        if vb.sceneBoundingRect().contains(pos):
            self.owner.seekRequested.emit(max(0, int(round(vb.mapSceneToView(pos).x()))))


class TimelinePanel(QWidget):
    """AU and expression timelines of one face.

    Signals:
        seekRequested(frame): the user clicked a plot or dragged the cursor to `frame`.
    """

    seekRequested = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.au = _SeriesPlot(self, "au", "AU intensity", 5.0)
        self.expression = _SeriesPlot(self, "expression", "Expression", 1.0)
        self.expression.plot.setXLink(self.au.plot)
        self.expression.plot.setLabel("bottom", "frame")
        self._table: ResultTable | None = None
        self._face: int | None = None
        self._drawn = (None, None, -1)
        self._n_frames = 0
        self.info = QLabel("")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Timelines:"))
        bar.addWidget(self.au.button)
        bar.addWidget(self.expression.button)
        bar.addWidget(self.info, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(bar)
        layout.addWidget(self.au.widget, 1)
        layout.addWidget(self.expression.widget, 1)

    def set_labels(self, labels: OutputLabels) -> None:
        self.au.set_names(labels.au_intensity)
        self.expression.set_names(labels.expressions)
        self._drawn = (None, None, -1)

    def set_table(self, table: ResultTable | None, face_id: int | None) -> None:
        """Plot `face_id`'s series from `table` (redrawn by `refresh` when the table grows)."""
        self._table, self._face = table, face_id
        self.refresh()

    def set_frame_count(self, n_frames: int) -> None:
        """Show frames 0..n_frames-1 on the x axis (the video's length, once known; until then the
        axis follows the data)."""
        if n_frames > 0 and n_frames != self._n_frames:
            self._n_frames = n_frames
            self.au.plot.setXRange(0, n_frames - 1, padding=0.01)

    def refresh(self) -> None:
        """Redraw if the table changed since the last draw (cheap to call often)."""
        t = self._table
        key = (id(t), self._face, t.version if t is not None else -1)
        if key == self._drawn:
            return
        self._drawn = key
        if t is None or self._face is None:
            empty = np.zeros(0)
            self.au.set_data(empty, np.zeros((0, len(self.au.curves))))
            self.expression.set_data(empty, np.zeros((0, len(self.expression.curves))))
            self.info.setText("")
            return
        x, y = t.series(self._face, "au")
        self.au.set_data(x, y)
        x, y = t.series(self._face, "expression")
        self.expression.set_data(x, y)
        self.info.setText(f"face {self._face} · {len(t.frames)} analysed frames")

    def set_cursor(self, frame: int) -> None:
        for plot in (self.au, self.expression):
            plot.cursor.setValue(frame)
