"""Checks of the Qt binding the app runs on, and the thread rules it needs.

PySide6-Essentials 6.12.0 with Python 3.11 drops a reference to `None` on every call of a method
that returns nothing (QPainter.setPen, QFont.setBold, ...). On Python < 3.12, where `None` is not
immortal, the interpreter aborts ("none_dealloc: deallocating None") after a few thousand such
calls, i.e. within seconds of painting. 6.11.x is fine. The app refuses to start on a binding with
this fault instead of crashing later.

Qt objects must be destroyed on the GUI thread; `collect_garbage_on_gui_thread` makes sure that
Python's cyclic garbage collector does not do it from an analysis thread.
"""

from __future__ import annotations

import gc
import sys


def binding_fault() -> str | None:
    """None when the Qt binding is usable, else a one-line reason naming the fix.

    Measures the fault directly (the reference count of None across 200 void calls), so it holds
    for any version, fixed or not.
    """
    if sys.version_info >= (3, 12):  # None is immortal: the fault cannot bring the interpreter down
        return None
    import PySide6
    from PySide6.QtGui import QFont

    font = QFont()
    before = sys.getrefcount(None)
    for _ in range(200):
        font.setBold(True)
    lost = before - sys.getrefcount(None)
    if lost < 100:
        return None
    return (f"PySide6 {PySide6.__version__} on Python {sys.version_info.major}.{sys.version_info.minor} loses a "
            "reference to None on every call and would crash; install another version: "
            "pip install 'PySide6-Essentials<6.12' (or use Python 3.12+)")


_collector = None


def collect_garbage_on_gui_thread(interval_s: float = 1.0) -> None:
    """Run Python's cyclic garbage collector on the GUI thread only (on a timer), never in a worker.

    With automatic collection, whichever thread happens to allocate runs the collector, and the
    analysis threads allocate a lot. When it frees an unreachable cycle that holds a Qt object (a
    closed window, a removed plot item), the object is destroyed off the GUI thread, which
    deadlocks or crashes Qt. pyqtgraph's GarbageCollector turns automatic collection off and
    collects on a GUI-thread timer instead. Idempotent; call it on the GUI thread once a
    QApplication exists.
    """
    global _collector
    if _collector is None:
        from pyqtgraph.util.garbage_collector import GarbageCollector

        _collector = GarbageCollector(interval=interval_s)


def restore_automatic_garbage_collection() -> None:
    """Undo `collect_garbage_on_gui_thread` (for test sessions that go on without a GUI)."""
    global _collector
    if _collector is not None:
        _collector.timer.stop()
        _collector = None
        gc.collect()
        gc.enable()
