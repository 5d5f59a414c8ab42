"""The main window (Analyze | Live | Viewer) and the `libreface-gui` / `python -m gui` entry point.

    libreface-gui [FILE ...]            open the app; videos / CSVs given are opened in the Viewer
    libreface-gui --smoke-screenshot P  analyse ~30 frames of examples/astronaut.mp4, show them in the
                                        Viewer, save a screenshot of the window to P (PNG) and quit

The app writes per-frame CSVs, feature vectors and label CSVs only; a status-bar label says so.
`--smoke-screenshot` is the one way it ever writes an image, and only to the path given.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QMessageBox, QTabWidget, QWidget

from . import __version__
from .analyze_page import AnalyzePage
from .compat import binding_fault, collect_garbage_on_gui_thread
from .live_page import LivePage
from .settings import RecentFiles, app_settings
from .viewer_page import ViewerPage
from .workers import AnalyzeSettings

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.mp4"
PRIVACY_TEXT = "Private: writes CSV + feature vectors only, never frames or images"
PRIVACY_TOOLTIP = ("libreface analyses frames in memory. It writes per-frame results (CSV), feature vectors "
                   "(.parquet / .npz) and your labels (.labels.csv); never video frames, face crops or thumbnails.")
TAB_ANALYZE, TAB_LIVE, TAB_VIEWER = range(3)


class MainWindow(QMainWindow):
    """Three workspaces in tabs, a File menu with recent files, shortcuts, and the privacy indicator.

    Args:
        persist: save window state and settings on close (False for `--smoke-screenshot`).
    """

    def __init__(self, persist: bool = True, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        collect_garbage_on_gui_thread()  # before any worker thread starts
        self.persist = persist
        self.setWindowTitle(f"libreface {__version__}")
        self.recent = RecentFiles()
        self.analyze = AnalyzePage()
        self.live = LivePage()
        self.viewer = ViewerPage(output_folders=lambda: [self.analyze.output_dir.text().strip()])
        self.tabs = QTabWidget()
        self.tabs.addTab(self.analyze, "Analyze")
        self.tabs.addTab(self.live, "Live")
        self.tabs.addTab(self.viewer, "Viewer")
        self.setCentralWidget(self.tabs)
        self.privacy = QLabel(PRIVACY_TEXT)
        self.privacy.setObjectName("privacyIndicator")
        self.privacy.setToolTip(PRIVACY_TOOLTIP)
        self.privacy.setStyleSheet("color: #1b5e20; font-weight: bold; padding: 0 6px;")
        self.statusBar().addPermanentWidget(self.privacy)
        for page in (self.analyze, self.live, self.viewer):
            page.status.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.analyze.openInViewer.connect(self.open_in_viewer)
        self.viewer.opened.connect(self._opened)
        self.viewer.labels_panel.headsReady.connect(self._heads_ready)
        self._build_menus()
        self._build_shortcuts()
        self.resize(1280, 800)
        self.restore_state()

    # -- menus and shortcuts ----------------------------------------------------------------------

    def _build_menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        self.open_action = QAction("&Open video…", self)
        self.open_action.setShortcut(QKeySequence.StandardKey.Open)
        self.open_action.triggered.connect(self._open_video)
        file.addAction(self.open_action)
        open_csv = QAction("Open results &CSV…", self)
        open_csv.setShortcut(QKeySequence("Ctrl+Shift+O"))
        open_csv.triggered.connect(lambda: (self.tabs.setCurrentIndex(TAB_VIEWER), self.viewer.open_csv_dialog()))
        file.addAction(open_csv)
        self.recent_menu = file.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        file.addSeparator()
        add = QAction("&Add files to the queue…", self)
        add.setShortcut(QKeySequence("Ctrl+Shift+A"))
        add.triggered.connect(lambda: (self.tabs.setCurrentIndex(TAB_ANALYZE), self.analyze.add_files_dialog()))
        file.addAction(add)
        add_folder = QAction("Add a &folder to the queue…", self)
        add_folder.triggered.connect(lambda: (self.tabs.setCurrentIndex(TAB_ANALYZE), self.analyze.add_folder_dialog()))
        file.addAction(add_folder)
        file.addSeparator()
        quit_action = QAction("&Quit", self)
        quit_action.setShortcut(QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file.addAction(quit_action)
        view = self.menuBar().addMenu("&View")
        for i, name in enumerate(("&Analyze", "&Live", "&Viewer")):
            a = QAction(name, self)
            a.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
            a.triggered.connect(lambda _=False, k=i: self.tabs.setCurrentIndex(k))
            view.addAction(a)
        help_menu = self.menuBar().addMenu("&Help")
        about = QAction("&About libreface", self)
        about.triggered.connect(self._about)
        help_menu.addAction(about)

    def _build_shortcuts(self) -> None:
        """Space, Left / Right and the digit keys drive the Viewer while it is the current tab."""

        def viewer_only(fn):
            return lambda: fn() if self.tabs.currentIndex() == TAB_VIEWER else None

        self.shortcuts: dict[str, QShortcut] = {}
        for key, fn in (
            ("Space", self.viewer.toggle_play),
            ("Left", lambda: self.viewer.step(-1)),
            ("Right", lambda: self.viewer.step(1)),
            ("0", lambda: self.viewer.labels_panel.mark_expression(None)),
        ):
            sc = QShortcut(QKeySequence(key), self, context=Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(viewer_only(fn))
            self.shortcuts[key] = sc
        for k in range(1, 10):
            sc = QShortcut(QKeySequence(str(k)), self, context=Qt.ShortcutContext.WindowShortcut)
            sc.activated.connect(viewer_only(lambda i=k - 1: self.viewer.labels_panel.mark_expression_number(i)))
            self.shortcuts[str(k)] = sc

    # -- actions ----------------------------------------------------------------------------------

    def _open_video(self) -> None:
        self.tabs.setCurrentIndex(TAB_VIEWER)
        self.viewer.open_video_dialog()

    def open_in_viewer(self, video: str, csv: str) -> None:
        self.tabs.setCurrentIndex(TAB_VIEWER)
        self.viewer.open(video, csv)

    def open_path(self, path: str) -> None:
        self.tabs.setCurrentIndex(TAB_VIEWER)
        self.viewer.open_path(path)

    def _opened(self, path: str) -> None:
        self.recent.add(path)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = self.recent.paths()
        for p in paths:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _=False, q=p: self.open_path(q))
        if not paths:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear", self.recent.clear)

    def _heads_ready(self, path: str) -> None:
        self.statusBar().showMessage(f"New heads: {path} (load them with the library to use them)", 15000)

    def _about(self) -> None:
        from libreface.models.registry import model_versions, weights_dir

        models = "\n".join(model_versions())
        QMessageBox.about(self, "libreface", f"libreface {__version__}: facial action units, expression and head "
                          f"pose on the CPU, offline.\n\nModels ({weights_dir()}):\n{models}\n\n{PRIVACY_TOOLTIP}")

    # -- state ------------------------------------------------------------------------------------

    def restore_state(self) -> None:
        st = app_settings()
        geometry, state = st.value("window/geometry"), st.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)
        self.tabs.setCurrentIndex(int(st.value("window/tab", TAB_ANALYZE)))

    def save_state(self) -> None:
        st = app_settings()
        st.setValue("window/geometry", self.saveGeometry())
        st.setValue("window/state", self.saveState())
        st.setValue("window/tab", self.tabs.currentIndex())
        self.analyze.save_settings()
        st.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt name
        if self.persist:
            self.save_state()
        self.live.shutdown()
        self.analyze.shutdown()
        self.viewer.shutdown()
        super().closeEvent(event)


# -- smoke screenshot -----------------------------------------------------------------------------


def run_smoke(window: MainWindow, out: Path, every: int = 5, timeout_s: float = 240.0) -> None:
    """Analyse every `every`-th frame of the example into a temporary folder, open it in the Viewer,
    show a frame with a face, save `window.grab()` to `out`, and quit the app (exit status 1 on failure)."""
    app = QApplication.instance()
    tmp = tempfile.TemporaryDirectory(prefix="libreface-smoke-")
    state = {"target": None, "tmp": tmp}

    def fail(message: str) -> None:
        print(f"libreface-gui: smoke: {message}", file=sys.stderr)
        app.exit(1)

    def finished() -> None:
        items = list(window.analyze.queue.items.values())
        if not items or not Path(items[0].csv_path).is_file():
            fail(f"analysis failed: {items[0].message if items else 'nothing queued'}")
            return
        window.open_in_viewer(str(EXAMPLE), items[0].csv_path)
        t = window.viewer.table
        ok = [] if t is None else [f for f in t.frames if t.faces_at(int(f))]
        state["target"] = int(ok[len(ok) * 2 // 5]) if ok else 0
        window.viewer.seek(state["target"])

    def frame_shown(index: int) -> None:
        if state["target"] is not None and index == state["target"]:
            state["target"] = None
            QTimer.singleShot(400, shoot)

    def shoot() -> None:
        pixmap = window.grab()
        if not pixmap.save(str(out), "PNG"):
            fail(f"cannot write {out}")
            return
        print(f"libreface-gui: screenshot saved to {out} ({pixmap.width()}x{pixmap.height()})", file=sys.stderr)
        window.close()
        app.exit(0)

    if not EXAMPLE.is_file():
        QTimer.singleShot(0, lambda: fail(f"{EXAMPLE}: not found (the smoke test needs a source checkout)"))
        return
    window.analyze.set_settings(AnalyzeSettings(every=every, landmarks=True, features=True, output_dir=tmp.name))
    window.analyze.queue.finished.connect(finished)
    window.viewer.frameShown.connect(frame_shown)
    window.tabs.setCurrentIndex(TAB_ANALYZE)
    window.analyze.add_paths([EXAMPLE])
    window.analyze.start()
    QTimer.singleShot(int(timeout_s * 1000), lambda: fail(f"timed out after {timeout_s:.0f} s"))
    window._smoke_state = state  # keeps the temporary folder alive until the window goes


# -- entry point ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="libreface-gui", description="libreface desktop app: analyse recordings and a "
                                "webcam; browse results; correct labels.")
    p.add_argument("files", nargs="*", help="videos or results CSVs to open in the Viewer")
    p.add_argument("--smoke-screenshot", type=Path, metavar="PATH",
                   help="debug: analyse ~30 frames of examples/astronaut.mp4, save a PNG screenshot of the window "
                        "to PATH and quit (the only way the app writes an image)")
    p.add_argument("--debug", action="store_true", help="show MediaPipe's native logs and tracebacks")
    p.add_argument("--version", action="version", version=f"libreface-gui {__version__}")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the app; returns the exit status."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    fault = binding_fault()
    if fault is not None:
        print(f"libreface-gui: {fault}", file=sys.stderr)
        return 1
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="libreface-gui: %(message)s")
    if not args.debug:
        from libreface.landmarks import quiet_native_logs

        quiet_native_logs()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("libreface-gui")
    app.setOrganizationName("libreface")
    window = MainWindow(persist=args.smoke_screenshot is None)
    if args.smoke_screenshot is not None:
        window.resize(1400, 860)
        run_smoke(window, args.smoke_screenshot)
    for f in args.files:
        window.open_path(f)
    window.show()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
