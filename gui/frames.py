"""FrameReader: decodes video frames for display on its own QThread, with `libreface.sources`.

Decoding goes through `open_source`, so the frames shown are exactly the ones the analyzer saw
(same rotation, same indices). Sources only go forward: the next frame is cheap, a step back
re-opens the file and decodes up to the frame (recent frames are cached so frame-stepping back
stays instant). Requests are coalesced: while one frame is being decoded only the newest request
is kept, so scrubbing the slider never builds a backlog. Nothing is written to disk.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QThread, Signal
from PySide6.QtGui import QImage

from libreface.errors import LibrefaceError

log = logging.getLogger(__name__)


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB -> a QImage that owns its pixels (safe to pass between threads)."""
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class FrameReader(QThread):
    """Decodes requested frames of one video (or image) at a time.

    Signals:
        opened(SourceInfo): the file opened; `n_frames_hint` gives the slider its first range.
        frameReady(index, QImage): the frame with that 0-based decode index.
        ended(last_index): a request went past the end; the video has `last_index + 1` frames.
        failed(message): the file cannot be opened (one line naming it).
    """

    opened = Signal(object)
    frameReady = Signal(int, QImage)
    ended = Signal(int)
    failed = Signal(str)

    def __init__(self, cache_frames: int = 48, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("libreface-gui-frames")
        self._cond = threading.Condition()
        self._path: str | None = None
        self._opened = 0  # bumped by every open(), so that reopening the same file re-reads it
        self._want: int | None = None
        self._quit = False
        self._cache_size = cache_frames
        self.busy = False  # True from a request until its frame (or end) is emitted

    def open(self, path: str | Path | None) -> None:
        """Switch to another file (None closes it); starts the thread on first use."""
        with self._cond:
            self._path = str(path) if path is not None else None
            self._opened += 1
            self._want = None
            self.busy = False
            self._cond.notify_all()
        if not self.isRunning():
            self.start()

    def request(self, index: int) -> None:
        """Ask for frame `index` (replaces a request not yet served)."""
        with self._cond:
            self._want = max(0, int(index))
            self.busy = True
            self._cond.notify_all()

    def stop(self) -> None:
        """End the thread and close the file."""
        with self._cond:
            self._quit = True
            self._cond.notify_all()
        self.wait(5000)

    def run(self) -> None:  # noqa: C901 - one loop, kept together on purpose
        from libreface.sources import open_source

        path: str | None = None
        opened = 0
        broken: str | None = None  # a path that failed to open: not retried until opened again
        src = it = None
        pos = -1
        cache: OrderedDict[int, QImage] = OrderedDict()
        try:
            while True:
                with self._cond:
                    while not self._quit and self._want is None and self._opened == opened:
                        self._cond.wait()
                    if self._quit:
                        return
                    new_path = self._opened != opened
                    path, opened = self._path, self._opened
                    want, self._want = self._want, None
                if new_path:
                    if src is not None:
                        src.close()
                    src = it = None
                    pos = -1
                    cache.clear()
                    if path is None:
                        continue
                    broken = None
                    try:
                        src = open_source(path)
                    except LibrefaceError as e:
                        broken = path
                        self._served()
                        self.failed.emit(str(e))
                        continue
                    self.opened.emit(src.info)
                    it = iter(src)
                if want is None or path is None or path == broken:
                    self._served()
                    continue
                if want in cache:
                    cache.move_to_end(want)
                    self._emit(want, cache[want])
                    continue
                if it is None or want <= pos:
                    if src is not None:
                        src.close()
                    try:
                        src = open_source(path)
                    except LibrefaceError as e:
                        src = it = None
                        broken = path
                        self._served()
                        self.failed.emit(str(e))
                        continue
                    it, pos = iter(src), -1
                frame = last = None
                for f in it:
                    pos, last = f.index, f
                    if f.index >= want:
                        frame = f
                        break
                if frame is None:  # past the end: show the last frame decoded on the way, if any
                    it = None
                    if last is not None:
                        self._emit(last.index, rgb_to_qimage(last.rgb))
                    self._served()
                    self.ended.emit(pos)
                    continue
                image = rgb_to_qimage(frame.rgb)
                cache[frame.index] = image
                while len(cache) > self._cache_size:
                    cache.popitem(last=False)
                self._emit(frame.index, image)
        finally:
            if src is not None:
                src.close()

    def _served(self) -> None:
        """A request was answered: busy only if another one is waiting."""
        with self._cond:
            self.busy = self._want is not None

    def _emit(self, index: int, image: QImage) -> None:
        self._served()
        self.frameReady.emit(index, image)
