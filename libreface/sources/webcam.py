"""Frame sources, webcam: a camera read with OpenCV, or with FFmpeg's device input when OpenCV is absent."""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Iterator

import numpy as np

from ..errors import InputError
from .base import Frame, Source, SourceInfo

logger = logging.getLogger(__name__)


class _OpenCVCamera:
    """A camera through OpenCV's VideoCapture (pip installs: MediaPipe brings OpenCV; any platform, by index)."""

    def __init__(self, index: int, width: int | None, height: int | None) -> None:
        from ..imaging import opencv

        cv2 = self._cv2 = opencv()
        capture = cv2.VideoCapture(index)
        if not capture.isOpened():
            capture.release()
            raise OSError("no such device")
        if width:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        if height:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        self._capture = capture
        fourcc = int(capture.get(cv2.CAP_PROP_FOURCC))
        codec = fourcc.to_bytes(4, "little").decode("ascii", "replace").strip("\x00 ").lower() if fourcc else None
        self.size = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.fps = capture.get(cv2.CAP_PROP_FPS) or None
        self.codec = codec or None

    def read(self) -> np.ndarray | None:
        ok, bgr = self._capture.read()
        return self._cv2.cvtColor(bgr, self._cv2.COLOR_BGR2RGB) if ok else None

    def release(self) -> None:
        self._capture.release()


CAMERA_INPUT_FORMATS = {"linux": ("v4l2", "/dev/video{index}"), "darwin": ("avfoundation", "{index}")}
"""FFmpeg device input (format, device name) by platform, for `_FFmpegCamera`."""


class _FFmpegCamera:
    """A camera through FFmpeg's device input (PyAV): the reader when OpenCV is absent, as in the desktop bundle.

    Linux (V4L2, /dev/video<index>) and macOS (AVFoundation, by index); Windows' DirectShow names devices
    rather than numbering them, so there the OpenCV reader is used (packaging/README.md)."""

    def __init__(self, index: int, width: int | None, height: int | None) -> None:
        import sys

        import av

        if sys.platform not in CAMERA_INPUT_FORMATS:
            raise OSError(f"no camera input without OpenCV on {sys.platform}: pip install opencv-contrib-python")
        fmt, device = CAMERA_INPUT_FORMATS[sys.platform]
        options = {"video_size": f"{width}x{height}"} if width and height else {}
        try:
            self._container = av.open(device.format(index=index), format=fmt, options=options)
        except av.FFmpegError as e:
            raise OSError(str(e)) from None
        stream = self._container.streams.video[0]
        self._frames = self._container.decode(stream)
        self.size = (stream.codec_context.width, stream.codec_context.height)
        rate = stream.average_rate or stream.guessed_rate
        self.fps = float(rate) if rate else None
        self.codec = stream.codec_context.name

    def read(self) -> np.ndarray | None:
        import av

        try:
            return next(self._frames).to_ndarray(format="rgb24")
        except (StopIteration, av.FFmpegError, OSError):
            return None

    def release(self) -> None:
        self._container.close()


def _open_camera(index: int, width: int | None, height: int | None) -> _OpenCVCamera | _FFmpegCamera:
    from ..imaging import opencv

    return _OpenCVCamera(index, width, height) if opencv() is not None else _FFmpegCamera(index, width, height)


class WebcamSource(Source):
    """A camera, read until `close()` is called or the device stops delivering frames.

    Read with OpenCV when it is installed (it is in pip installs: MediaPipe depends on it), else with FFmpeg's
    device input through PyAV (Linux V4L2, macOS AVFoundation), as in the desktop bundle.

    Args:
        index: camera index (0 is the default camera; /dev/video<index> on Linux).
        width: Requested frame width in pixels; the camera may pick another. None keeps its default.
        height: Requested frame height in pixels; None keeps its default.

    Timestamps are wall-clock seconds (time.monotonic) since the first frame.

    Raises:
        InputError: When the camera cannot be opened.
    """

    def __init__(self, index: int, width: int | None = None, height: int | None = None) -> None:
        self.index = index
        self._lock = threading.Lock()
        try:
            camera = _open_camera(index, width, height)
        except OSError as e:
            raise InputError(f"webcam {index}: cannot be opened ({e}); check that a camera is connected, allowed, "
                             "and not used by another program") from None
        self._capture = camera
        self.info = SourceInfo(
            path=str(index),
            kind="webcam",
            width=camera.size[0],
            height=camera.size[1],
            fps=camera.fps,
            n_frames_hint=None,
            rotation_deg=0,
            codec=camera.codec,
        )

    def _frames(self) -> Iterator[Frame]:
        start_s = None
        try:
            for index in itertools.count():
                with self._lock:  # close() from another thread waits for the frame being read
                    if self._closed:
                        return
                    rgb = self._capture.read()
                if rgb is None:
                    if not self._closed:
                        self.error = f"webcam {self.index}: stopped delivering frames at frame {index}"
                        logger.warning(self.error)
                    return
                now_s = time.monotonic()
                start_s = now_s if start_s is None else start_s
                yield Frame(index=index, timestamp_s=now_s - start_s, rgb=rgb)
        finally:
            self.close()

    def close(self) -> None:
        """Release the camera. Safe to call more than once, also from another thread to stop the iteration."""
        self._closed = True
        with self._lock:
            capture = getattr(self, "_capture", None)
            if capture is not None:
                capture.release()
