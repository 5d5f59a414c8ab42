"""Non-modal error messages: the work behind them (a queue, playback) goes on while they are open."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget


def show_error(parent: QWidget, title: str, message: str, open_boxes: list[QMessageBox]) -> QMessageBox:
    """Show a non-modal warning; it stays in `open_boxes` until the user closes it."""
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setModal(False)
    box.setWindowModality(Qt.WindowModality.NonModal)

    def forget(_: int = 0) -> None:
        if box in open_boxes:
            open_boxes.remove(box)
        box.deleteLater()

    box.finished.connect(forget)
    open_boxes.append(box)
    box.show()
    return box
