"""Event-loop latency of the desktop app while it analyses a video (offscreen, re-runnable).

    QT_QPA_PLATFORM=offscreen python bench/gui_latency.py [--video PATH] [--every 1] [--repeat 1] [--no-preview]

A 10 ms QTimer (Qt.PreciseTimer) runs on the GUI thread while the Analyze workspace analyses the
video with its live preview (frames decoded a second time, overlays, bars, timelines redrawn). Each
tick records its lateness: the time since the previous tick minus 10 ms. The same is measured for
2 s with the app idle first, as the floor of the timer itself. Prints p50 / p99 / max lateness in
milliseconds, the analysed frames and their rate. Target: p99 < 50 ms on 2 cores.

The outputs go to a temporary folder that is deleted at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

TICK_MS = 10


class LatencyProbe:
    """Records how late a `TICK_MS` timer fires on the event loop, in milliseconds."""

    def __init__(self) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.samples_ms: list[float] = []
        self._last: float | None = None
        self.timer = QTimer()
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(self._tick)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.samples_ms.append(max(0.0, (now - self._last) * 1000 - TICK_MS))
        self._last = now

    def start(self) -> None:
        self.samples_ms.clear()
        self._last = None
        self.timer.start()

    def stop(self) -> list[float]:
        self.timer.stop()
        return list(self.samples_ms)


def summary(samples_ms: list[float]) -> str:
    import numpy as np

    if not samples_ms:
        return "no samples"
    a = np.asarray(samples_ms)
    return (f"p50 {np.percentile(a, 50):5.1f} ms   p99 {np.percentile(a, 99):5.1f} ms   max {a.max():6.1f} ms   "
            f"({len(a)} ticks)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=REPO / "examples" / "astronaut.mp4", help="video to analyse")
    p.add_argument("--every", type=int, default=1, help="analyse every N-th frame")
    p.add_argument("--repeat", type=int, default=1, help="analyse the video this many times in a row")
    p.add_argument("--no-preview", action="store_true", help="switch off the preview of the frames being analysed")
    args = p.parse_args(argv)

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from libreface.landmarks import quiet_native_logs

    quiet_native_logs()
    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory(prefix="libreface-gui-latency-") as tmp:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(Path(tmp) / "settings"))
        from gui.app import MainWindow
        from gui.workers import AnalyzeSettings, model_labels

        model_labels()  # load the model once before measuring
        window = MainWindow(persist=False)
        window.resize(1400, 860)
        window.show()
        window.analyze.preview_box.setChecked(not args.no_preview)
        window.analyze.set_settings(AnalyzeSettings(every=args.every, output_dir=str(Path(tmp) / "out")))
        probe = LatencyProbe()

        probe.start()  # idle floor
        QTimer.singleShot(2000, app.quit)
        app.exec()
        idle = probe.stop()

        paths = []
        for i in range(args.repeat):  # distinct names, so that every run is queued
            link = Path(tmp) / f"run{i}{args.video.suffix}"
            link.symlink_to(args.video.resolve())
            paths.append(link)
        window.analyze.queue.finished.connect(app.quit)
        probe.start()
        t0 = time.perf_counter()
        window.analyze.add_paths(paths)
        window.analyze.start()
        app.exec()
        seconds = time.perf_counter() - t0
        busy = probe.stop()
        frames = sum(it.done for it in window.analyze.queue.items.values())
        states = {it.state.value for it in window.analyze.queue.items.values()}
        window.close()

    print(f"gui event-loop lateness of a {TICK_MS} ms timer (cores: {os.cpu_count()}, "
          f"preview {'off' if args.no_preview else 'on'}, every {args.every})")
    print(f"  idle:      {summary(idle)}")
    print(f"  analysing: {summary(busy)}")
    print(f"  analysed {frames} frames of {args.video.name} x{args.repeat} in {seconds:.1f} s "
          f"({frames / seconds:.1f} frames/s); queue states: {', '.join(sorted(states))}")
    return 0 if states == {"done"} else 1


if __name__ == "__main__":
    sys.exit(main())
