"""LabelPanel: mark the right expression (keys 1..8, 0 clears) and AU presence of the shown face.

Labels go to `<features stem>.labels.csv` next to the feature vectors (`LabelStore`), saved on every
change. Only faces that have a feature vector can be labelled: analysed faces (`success=1`) of a
run that wrote features. "Fine-tune heads" runs `python -m distill finetune-heads` on the features
and labels in a child process and reports the heads file (signal `headsReady`).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from libreface.results import OutputLabels

from .finetune import FinetuneRunner, distill_unavailable_reason
from .label_store import LabelStore, labels_path_for

_TRISTATE = {Qt.CheckState.PartiallyChecked: None, Qt.CheckState.Checked: True, Qt.CheckState.Unchecked: False}


class LabelPanel(QGroupBox):
    """Human-in-the-loop labels for the face shown in the Viewer.

    Signals:
        headsReady(path): fine-tuning succeeded and wrote new heads to `path`.
        status(text): a short message for the status bar.
    """

    headsReady = Signal(str)
    status = Signal(str)

    def __init__(self, runner: FinetuneRunner | None = None, parent: QWidget | None = None) -> None:
        super().__init__("Label correction", parent)
        self.store: LabelStore | None = None
        self.features_path: Path | None = None
        self._labels: OutputLabels | None = None
        self._target: tuple[int, int] | None = None
        self.info = QLabel("Open a CSV whose run wrote feature vectors to label its faces.")
        self.info.setWordWrap(True)
        self.target_label = QLabel("")
        self.expression_group = QButtonGroup(self)
        self.expression_group.setExclusive(False)
        self.expression_buttons: list[QPushButton] = []
        self.clear_button = QPushButton("Clear (0)")
        self.clear_button.clicked.connect(lambda: self.mark_expression(None))
        self.au_boxes: dict[str, QCheckBox] = {}
        self._expr_grid = QGridLayout()
        self._au_grid = QGridLayout()
        self.count_label = QLabel("")
        self.finetune_button = QPushButton("Fine-tune heads")
        self.distill_reason = distill_unavailable_reason()  # None when torch + distill are importable
        self.runner = runner or FinetuneRunner(parent=self)
        self.runner.headsReady.connect(self._heads_ready)
        self.runner.failed.connect(self._finetune_failed)
        self.runner.output.connect(lambda line: self.status.emit(f"finetune-heads: {line}"))
        self.finetune_button.clicked.connect(self.run_finetune)
        layout = QVBoxLayout(self)
        layout.addWidget(self.info)
        layout.addWidget(self.target_label)
        layout.addWidget(QLabel("Right expression:"))
        layout.addLayout(self._expr_grid)
        layout.addWidget(self.clear_button)
        au_title = QLabel("AU presence (■ not marked, ✓ present, empty = absent):")
        au_title.setWordWrap(True)
        layout.addWidget(au_title)
        layout.addLayout(self._au_grid)
        layout.addWidget(self.count_label)
        layout.addWidget(self.finetune_button)
        layout.addStretch(1)
        self.setMinimumWidth(210)
        self._update_enabled()

    # -- configuration ----------------------------------------------------------------------------

    def set_labels(self, labels: OutputLabels) -> None:
        """Build the expression buttons and AU boxes from the model's output names."""
        if labels == self._labels:
            return
        self._labels = labels
        for w in self.expression_buttons + list(self.au_boxes.values()):
            w.deleteLater()
        self.expression_buttons, self.au_boxes = [], {}
        for k, name in enumerate(labels.expressions):
            b = QPushButton(f"{k + 1} {name}" if k < 9 else name)
            b.setCheckable(True)
            b.clicked.connect(lambda _=False, n=name: self.mark_expression(n))
            self.expression_group.addButton(b)
            self.expression_buttons.append(b)
            self._expr_grid.addWidget(b, k // 2, k % 2)
        for k, au in enumerate(labels.au_occurrence):
            box = QCheckBox(au)
            box.setTristate(True)
            box.setCheckState(Qt.CheckState.PartiallyChecked)
            box.clicked.connect(lambda _=False, a=au: self._au_clicked(a))
            self.au_boxes[au] = box
            self._au_grid.addWidget(box, k // 3, k % 3)
        self._update_enabled()

    def set_features(self, features_path: str | Path | None, labels: OutputLabels) -> None:
        """Use the labels file of `features_path` (None: this CSV has no feature vectors)."""
        self.set_labels(labels)
        self.features_path = Path(features_path) if features_path else None
        self.store = None
        if self.features_path is not None:
            try:
                self.store = LabelStore.load(labels_path_for(self.features_path), labels)
            except ValueError as e:
                self.status.emit(str(e))
        if self.store is None:
            self.info.setText("No feature vectors next to this CSV: analyse with “Feature vectors” on to label faces.")
        else:
            self.info.setText(f"Labels: {self.store.path.name} (next to {self.features_path.name})")
        self._refresh()

    def set_target(self, frame: int | None, face_id: int | None) -> None:
        """The analysed face that marks apply to (None when the shown frame has no analysed face)."""
        self._target = None if frame is None or face_id is None else (int(frame), int(face_id))
        self._refresh()

    # -- marking ----------------------------------------------------------------------------------

    def mark_expression(self, name: str | None) -> bool:
        """Label the target face with expression `name` (None clears); returns False if nothing to label."""
        if self.store is None or self._target is None:
            return False
        self.store.set_expression(*self._target, name)
        self.store.save()
        self._refresh()
        return True

    def mark_expression_number(self, k: int) -> bool:
        """Label the target face with the k-th (0-based) expression class of the model (keys 1..9)."""
        if self._labels is None or not 0 <= k < len(self._labels.expressions):
            return False
        return self.mark_expression(self._labels.expressions[k])

    def mark_au(self, au: str, present: bool | None) -> bool:
        """Mark an AU of the target face present (True) or absent (False), or unmark it (None)."""
        if self.store is None or self._target is None:
            return False
        self.store.set_au(*self._target, au, present)
        self.store.save()
        self._refresh()
        return True

    def _au_clicked(self, au: str) -> None:
        self.mark_au(au, _TRISTATE[self.au_boxes[au].checkState()])

    def _refresh(self) -> None:
        label = self.store.get(*self._target) if self.store is not None and self._target is not None else None
        for b, name in zip(self.expression_buttons, self._labels.expressions if self._labels else ()):
            b.setChecked(label is not None and label.expression == name)
        for au, box in self.au_boxes.items():
            value = None if label is None else label.aus.get(au)
            box.setCheckState(Qt.CheckState.PartiallyChecked if value is None
                              else Qt.CheckState.Checked if value else Qt.CheckState.Unchecked)
        if self._target is None:
            self.target_label.setText("No analysed face in this frame.")
        else:
            self.target_label.setText(f"Labelling frame {self._target[0]}, face {self._target[1]}")
        self.count_label.setText(f"{len(self.store)} faces labelled" if self.store is not None else "")
        self._update_enabled()

    def _update_enabled(self) -> None:
        can_mark = self.store is not None and self._target is not None
        for w in self.expression_buttons + list(self.au_boxes.values()) + [self.clear_button]:
            w.setEnabled(can_mark)
        if self.distill_reason is not None:
            self.finetune_button.setEnabled(False)
            self.finetune_button.setToolTip(f"Fine-tuning {self.distill_reason}")
        elif self.store is None or not len(self.store):
            self.finetune_button.setEnabled(False)
            self.finetune_button.setToolTip("Label some faces first")
        else:
            self.finetune_button.setEnabled(not self.runner.running)
            self.finetune_button.setToolTip("python -m distill finetune-heads on these features and labels "
                                            "(runs in the background)")

    # -- fine-tuning ------------------------------------------------------------------------------

    def run_finetune(self) -> Path | None:
        """Start `finetune-heads` on the stored features and labels; returns the heads path it will write."""
        if self.store is None or self.features_path is None or self.distill_reason is not None:
            return None
        self.store.save()
        out = self.runner.start(self.features_path, self.store.path, model=self._labels.model or None)
        self.finetune_button.setEnabled(False)
        self.finetune_button.setText("Fine-tuning…")
        self.status.emit(f"Fine-tuning heads on {len(self.store)} labelled faces…")
        return out

    def _heads_ready(self, path: str) -> None:
        self.finetune_button.setText("Fine-tune heads")
        self._update_enabled()
        self.status.emit(f"New heads written to {path}")
        self.headsReady.emit(path)

    def _finetune_failed(self, message: str) -> None:
        self.finetune_button.setText("Fine-tune heads")
        self._update_enabled()
        self.status.emit(message)
