"""`libreface-gui`'s entry point: check the gui extra, then start the app (`gui.app.main`)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    """One line naming the gui extra when it is missing (exit 1), else run the app."""
    from libreface.extras import MissingExtra, exit_missing, require

    try:
        for module in ("PySide6.QtWidgets", "pyqtgraph"):
            require(module, "gui", "the desktop app")
    except MissingExtra as e:
        return exit_missing("libreface-gui", e)
    from .app import main as app_main

    return app_main(argv)
