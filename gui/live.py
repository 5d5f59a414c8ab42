"""Live analysis of a webcam that drops frames when it falls behind instead of lagging.

```
camera --LiveCapture thread--> FrameSlot (holds the newest frame only; older ones are dropped)
       --SlotSource (a libreface Source)--> Analyzer.process / analyze_to_files (queue_size=1)
       --LiveWorker--> frameReady(QImage, FrameResult) on the GUI thread
```

The camera is read at its own pace into a one-frame slot; the analyzer takes whatever is newest
when it is ready for another frame, so what is shown is never more than a frame or two old however
slow the CPU. Frames are renumbered from 0 and timed from the start of each run (preview or
recording), so a recording's CSV starts at frame 0; frames that were dropped leave gaps in `frame`,
as `--every` does.

Recording runs `Analyzer.analyze_to_files` (CSV + feature vectors, the CLI's writers); stopping it
ends the source normally, so the files get their final names. Frames stay in memory: nothing but
the CSV and the features is written.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
from PySide6.QtCore import QThread, Signal

from libreface.errors import LibrefaceError
from libreface.sources import Frame, Source, SourceInfo

from .frames import rgb_to_qimage

log = logging.getLogger(__name__)


class FrameSlot:
    """A one-frame mailbox between a producer (camera) and a consumer (analyzer), thread-safe.

    `put` overwrites a frame the consumer has not taken yet (counted in `dropped`); `take` waits
    for a frame. `end()` tells the consumer that no frame will come any more.

    Attributes:
        received: frames put since the last `reset_counts`.
        dropped: frames overwritten before anyone took them, since the last `reset_counts`.
        error: why the producer stopped (a camera that stopped delivering), else None.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._frame: Frame | None = None
        self._ended = False
        self.received = 0
        self.dropped = 0
        self.error: str | None = None

    def put(self, frame: Frame) -> None:
        with self._cond:
            if self._frame is not None:
                self.dropped += 1
            self._frame = frame
            self.received += 1
            self._cond.notify_all()

    def take(self, timeout_s: float = 0.1) -> Frame | None:
        """The newest frame (removing it), or None after `timeout_s` seconds or once ended and empty."""
        with self._cond:
            if self._frame is None and not self._ended:
                self._cond.wait(timeout_s)
            frame, self._frame = self._frame, None
            return frame

    def end(self, error: str | None = None) -> None:
        with self._cond:
            self._ended = True
            self.error = error
            self._cond.notify_all()

    @property
    def ended(self) -> bool:
        return self._ended

    def reset_counts(self) -> None:
        with self._cond:
            self.received = self.dropped = 0


class SlotSource(Source):
    """A `libreface.sources.Source` over a `FrameSlot`, for one run: frames renumbered from 0, timed from
    the run's first frame. Closing it ends the run's iteration (the camera stays open).

    Args:
        slot: the slot the capture thread fills.
        info: the camera's `SourceInfo` (kind "webcam" puts the landmarker in video mode).
        keep_frames: recent frames kept in memory so the GUI can show the frame of each result.
    """

    def __init__(self, slot: FrameSlot, info: SourceInfo, keep_frames: int = 8) -> None:
        self._slot = slot
        self.info = info
        self._keep = keep_frames
        self._recent: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def __iter__(self):
        if self._closed:  # stopped before its run began (Stop right after a Record toggle): an empty run
            self._iterated = True
            return iter(())
        return super().__iter__()

    def _frames(self):
        first_index = t0 = None
        while not self._closed:
            frame = self._slot.take(0.1)
            if frame is None:
                if self._slot.ended:
                    self.error = self._slot.error
                    return
                continue
            if first_index is None:
                first_index, t0 = frame.index, frame.timestamp_s
            index = frame.index - first_index
            with self._lock:
                self._recent[index] = frame.rgb
                while len(self._recent) > self._keep:
                    self._recent.popitem(last=False)
            yield Frame(index, frame.timestamp_s - t0, frame.rgb)

    def rgb_of(self, index: int) -> np.ndarray | None:
        """The (H, W, 3) uint8 RGB frame this run numbered `index`, if still in memory."""
        with self._lock:
            return self._recent.get(index)


class LiveCapture:
    """Reads a source (a webcam, or a video file standing in for one) into a `FrameSlot` on its own thread.

    Args:
        open_source: called on the capture thread; returns the opened `Source` (e.g.
            `lambda: WebcamSource(0)`), or raises `LibrefaceError`.
        pace: sleep until each frame's timestamp (for files, so they play in real time; a camera
            is paced by itself).
    """

    def __init__(self, open_source: Callable[[], Source], pace: bool = False) -> None:
        self.slot = FrameSlot()
        self.info: SourceInfo | None = None
        self.opened = threading.Event()
        self._open = open_source
        self._pace = pace
        self._src: Source | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="libreface-gui-capture", daemon=True)

    def start(self, timeout_s: float = 15.0) -> SourceInfo:
        """Open the source and start reading; raises `LibrefaceError` when it cannot be opened."""
        self._thread.start()
        if not self.opened.wait(timeout_s):
            self.stop()
            raise LibrefaceError(f"camera: not opened after {timeout_s:.0f} s")
        if self.info is None:
            raise LibrefaceError(self.slot.error or "camera: cannot be opened")
        return self.info

    def stop(self) -> None:
        """Stop reading and release the device (thread-safe, idempotent)."""
        self._stop.set()
        src = self._src
        if src is not None:
            src.close()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        try:
            self._src = self._open()
        except LibrefaceError as e:
            self.slot.end(str(e))
            self.opened.set()
            return
        self.info = self._src.info
        self.opened.set()
        start = time.monotonic()
        try:
            for frame in self._src:
                if self._stop.is_set():
                    break
                if self._pace:
                    delay = start + frame.timestamp_s - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        break
                self.slot.put(frame)
            self.slot.end(None if self._stop.is_set() else self._src.error)
        except Exception as e:  # noqa: BLE001 - a device error ends the session with a message
            self.slot.end(f"{self.info.path}: {type(e).__name__}: {e}")
        finally:
            self._src.close()


@dataclass(frozen=True)
class RecordTarget:
    """Where a recording goes: the CSV (`fmt` layout) and the feature vectors (or None)."""

    csv_path: str
    features_path: str | None
    fmt: str = "native"


class LiveWorker(QThread):
    """Runs the live analysis: preview runs with `Analyzer.process`, recordings with `analyze_to_files`.

    Args:
        open_source: see `LiveCapture`.
        options: `AnalyzerOptions`; the queues are forced to one frame so that results are never stale.
        pace: see `LiveCapture`.

    Signals:
        sessionStarted(OutputLabels, SourceInfo): the camera is open and the model loaded.
        frameReady(QImage, FrameResult, stats): an analysed frame with its picture; `stats` is a dict
            with `fps` (analysed frames per second), `received` and `dropped` camera frames.
        recordingSaved(RunSummary): a recording ended and its files have their final names.
        failed(message): one line (camera not found, output not writable, ...).
        stopped(): the session ended (Stop, or the source ran out).
    """

    sessionStarted = Signal(object, object)
    frameReady = Signal(object, object, object)
    recordingSaved = Signal(object)
    failed = Signal(str)
    stopped = Signal()

    def __init__(self, open_source: Callable[[], Source], options, pace: bool = False, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("libreface-gui-live")
        self.options = replace(options, queue_size=1, batch_size=1)
        self._capture = LiveCapture(open_source, pace=pace)
        self._lock = threading.Lock()
        self._target: RecordTarget | None = None
        self._source: SlotSource | None = None
        self._quit = threading.Event()

    @property
    def recording(self) -> RecordTarget | None:
        """The current recording target, or None while previewing."""
        return self._target

    def set_recording(self, target: RecordTarget | None) -> None:
        """Start (target) or stop (None) recording; the current run ends and the next one begins."""
        with self._lock:
            self._target = target
            src = self._source
        if src is not None:
            src.close()

    def stop(self) -> None:
        """End the session: finish a recording, release the camera (returns at once)."""
        self._quit.set()
        with self._lock:
            src = self._source
        if src is not None:
            src.close()
        self._capture.stop()

    def run(self) -> None:
        from libreface.pipeline import Analyzer

        try:
            analyzer = Analyzer(self.options)  # the model first: the camera opens when analysis can begin
            info = self._capture.start()
        except (LibrefaceError, ValueError) as e:
            self.failed.emit(str(e))
            self._capture.stop()
            self.stopped.emit()
            return
        self.sessionStarted.emit(analyzer.labels, info)
        try:
            first = True
            while not self._quit.is_set() and not self._capture.slot.ended:
                with self._lock:
                    target = self._target
                    source = self._source = SlotSource(self._capture.slot, info)
                if not first:
                    self._capture.slot.reset_counts()  # counts are per run (preview or recording)
                first = False
                try:
                    self._run_once(analyzer, source, target)
                except LibrefaceError as e:
                    self.failed.emit(str(e))
                    with self._lock:
                        self._target = None
            if self._capture.slot.error:
                self.failed.emit(self._capture.slot.error)
        except Exception as e:  # noqa: BLE001 - one line for the user, traceback in the log
            log.exception("live analysis failed")
            self.failed.emit(f"live analysis: internal error: {type(e).__name__}: {e}")
        finally:
            self._capture.stop()
            analyzer.close()
            self.stopped.emit()

    def _run_once(self, analyzer, source: SlotSource, target: RecordTarget | None) -> None:
        slot = self._capture.slot
        times: list[float] = []

        def on_result(result) -> None:
            now = time.monotonic()
            times.append(now)
            while times and now - times[0] > 2.0:
                times.pop(0)
            fps = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0
            rgb = source.rgb_of(result.frame)
            image = rgb_to_qimage(rgb) if rgb is not None else None
            self.frameReady.emit(image, result, {"fps": fps, "received": slot.received, "dropped": slot.dropped})

        if target is None:
            for result in analyzer.process(source):
                on_result(result)
        else:
            summary = analyzer.analyze_to_files(source, target.csv_path, fmt=target.fmt,
                                                features_path=target.features_path, on_result=on_result)
            self.recordingSaved.emit(summary)
