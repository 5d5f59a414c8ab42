"""Frame sources: video files (PyAV), still images (Pillow), webcams (OpenCV) -> `Frame(index, timestamp_s, rgb)`.

Every source yields (H, W, 3) uint8 RGB frames, already turned upright (video display matrix, EXIF orientation),
with timestamps in seconds. Videos are decoded as a stream: memory stays flat whatever the length of the file.

    with open_source("interview.mp4") as source:
        print(source.info.width, source.info.height, source.info.fps)
        for frame in source:
            ...
        if source.error:                  # the file was damaged; the frames before the damage were still yielded
            print(source.error)

Heavy imports (av, PIL, and cv2 for cameras when installed) happen inside the functions that need them, so `import libreface` stays fast.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from .errors import InputError

if TYPE_CHECKING:
    import av.container
    import av.stream
    import av.video.frame
    import PIL.Image

__all__ = [
    "IMAGE_SUFFIXES",
    "VIDEO_SUFFIXES",
    "Frame",
    "ImageSource",
    "Source",
    "SourceInfo",
    "VideoSource",
    "WebcamSource",
    "iter_inputs",
    "open_source",
]

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
LIST_SUFFIX = ".txt"  # a text file listing inputs, one path per line

_EXPECTED = "expected a video such as .mp4, .mov, .mkv, .avi or an image such as .jpg, .png"
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*")  # JPEG, PNG, BMP, TIFF LE/BE
_ATTACHED_PIC = 0x0400  # AV_DISPOSITION_ATTACHED_PIC: cover art stored as a one-frame "video" stream
_MAX_BAD_PACKETS = 25  # consecutive undecodable packets before a video is given up as corrupt
# EXIF orientation tag (0x0112) -> clockwise rotation it asks for, in degrees (mirroring is applied but not reported)
_EXIF_ROTATION_DEG = {1: 0, 2: 0, 3: 180, 4: 180, 5: 270, 6: 90, 7: 90, 8: 270}


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded picture.

    Attributes:
        index: 0-based position in decode (= presentation) order.
        timestamp_s: Presentation time in seconds: the container PTS for videos (correct for variable frame rate),
            seconds since the first frame for webcams, 0.0 for still images.
        rgb: (H, W, 3) uint8 RGB, C-contiguous, rotation / EXIF orientation already applied.

    Frames compare by identity (eq=False): element-wise array equality has no single truth value.
    """

    index: int
    timestamp_s: float
    rgb: np.ndarray


@dataclass
class SourceInfo:
    """What a source knows about itself once opened.

    Attributes:
        path: The file as given, or the webcam index as a string ("0").
        kind: "video", "image" or "webcam".
        width: Frame width in pixels, after rotation.
        height: Frame height in pixels, after rotation.
        fps: Average frame rate from the container (frames per second); None for images.
        n_frames_hint: Frame count from the header. It may be wrong (edit lists, damage): never use it for row counts.
        rotation_deg: Clockwise rotation applied to the coded frames, in degrees: 0, 90, 180 or 270. A portrait
            phone video is usually 90. Mirroring (rare) is applied too but not reported here.
        codec: Decoder name ("h264", "hevc", "jpeg", ...), or None when unknown.
    """

    path: str
    kind: str
    width: int
    height: int
    fps: float | None
    n_frames_hint: int | None
    rotation_deg: int
    codec: str | None


class Source:
    """Base class of frame sources: a context manager and a single-pass iterable of `Frame`.

    Attributes:
        info: What the source knows about itself (size after rotation, frame rate, codec...).
        error: None, or a one-line message when the input was damaged: decoding stopped early (truncated or corrupt
            file) or corrupt packets were skipped. The frames decoded before the damage are still yielded, and the
            message is also logged as a warning naming the file and the frame index.
    """

    info: SourceInfo
    error: str | None = None
    _iterated: bool = False
    _closed: bool = False

    def __iter__(self) -> Iterator[Frame]:
        if self._iterated:
            raise RuntimeError(f"{self.info.path}: a source can be iterated only once; open it again to restart")
        if self._closed:
            raise RuntimeError(f"{self.info.path}: the source is closed; open it again to restart")
        self._iterated = True
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        """Release the file or device. Safe to call more than once; iteration stops after it."""
        self._closed = True

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        i = self.info
        return f"<{type(self).__name__} {i.path!r} {i.width}x{i.height} fps={i.fps} rotation={i.rotation_deg}>"


# --- video -----------------------------------------------------------------------------------------------------------


class _Orientation(NamedTuple):
    """How to turn coded pixels into displayed pixels: transpose first, then flip rows and/or columns."""

    transpose: bool = False
    flip_rows: bool = False
    flip_cols: bool = False
    rotation_deg: int = 0  # clockwise, for SourceInfo

    @classmethod
    def from_display_matrix(cls, m: Sequence[int]) -> _Orientation:
        """From FFmpeg's 3x3 display matrix (9 int32, row-major), which maps coded (x, y) to displayed
        (a*x + c*y, b*x + d*y). Only multiples of 90 degrees are supported; other angles snap to the nearest."""
        a, b, c, d = m[0], m[1], m[3], m[4]
        unmirrored_a = -a if a * d - b * c < 0 else a  # report the rotation of mirrored matrices without the mirror
        rotation_deg = round(math.degrees(math.atan2(b, unmirrored_a)) / 90) * 90 % 360
        if abs(b) + abs(c) > abs(a) + abs(d):  # 90 or 270 degrees: displayed rows come from coded columns
            return cls(True, b < 0, c < 0, rotation_deg)
        return cls(False, d < 0, a < 0, rotation_deg)

    @classmethod
    def from_clockwise_deg(cls, degrees: float) -> _Orientation:
        """From the legacy `rotate` metadata tag (clockwise degrees)."""
        deg = round(degrees / 90) * 90 % 360
        return {0: cls(), 90: cls(True, False, True, 90), 180: cls(False, True, True, 180),
                270: cls(True, True, False, 270)}[deg]

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) coded image -> displayed image, C-contiguous (a no-op copy-free pass when upright)."""
        if self.transpose:
            rgb = rgb.transpose(1, 0, 2)
        if self.flip_rows:
            rgb = rgb[::-1]
        if self.flip_cols:
            rgb = rgb[:, ::-1]
        return np.ascontiguousarray(rgb)


def _orientation_of(frame: av.video.frame.VideoFrame, stream: av.stream.Stream) -> _Orientation:
    """Read the display matrix FFmpeg attaches to decoded frames (PyAV >= 13), else the legacy `rotate` tag."""
    side_data = getattr(frame, "side_data", None)
    if side_data is not None:
        from av.sidedata.sidedata import Type

        matrix = side_data.get(Type.DISPLAYMATRIX)
        if matrix is not None:
            return _Orientation.from_display_matrix(np.frombuffer(bytes(matrix), dtype=np.int32).tolist())
    rotation = getattr(frame, "rotation", 0)  # counter-clockwise degrees
    if rotation:
        return _Orientation.from_clockwise_deg(-rotation)
    try:
        return _Orientation.from_clockwise_deg(float(stream.metadata.get("rotate", 0)))
    except ValueError:
        return _Orientation()


def _av_reason(e: Exception) -> str:
    """The FFmpeg message of a PyAV error, without the errno and file name PyAV adds."""
    return _one_line(getattr(e, "strerror", None) or str(e) or type(e).__name__)


def _one_line(text: str) -> str:
    """Collapse whitespace runs (newlines included) so that messages stay on one line."""
    return " ".join(text.split())


class VideoSource(Source):
    """A video file decoded with PyAV (FFmpeg), one frame at a time.

    Timestamps come from the PTS (variable frame rate is kept), the display matrix of phone videos is applied,
    and nothing is written to disk. Damage in the middle of a file is skipped; damage that ends it (a truncated
    file) stops the iteration cleanly and sets `error`.

    Raises:
        InputError: At open time, when the file is missing, empty, not media, has no video stream, uses a codec
            this FFmpeg cannot decode, or no frame at all can be decoded.
    """

    def __init__(self, path: str | Path) -> None:
        import av

        self.path = Path(path)
        self._lock = threading.Lock()
        _read_head(self.path)
        try:
            container = av.open(str(self.path), metadata_errors="ignore")
        except av.error.FFmpegError as e:
            raise InputError(
                f"{path}: not a video or image, or too damaged to open (FFmpeg: {_av_reason(e)}); {_EXPECTED}"
            ) from e
        try:
            stream = _video_stream(container, path)
            if stream.codec_context is None:
                raise InputError(
                    f"{path}: unsupported codec (this FFmpeg build has no decoder for its video stream); "
                    "re-encode it, e.g. ffmpeg -i IN -c:v libx264 OUT.mp4"
                )
            stream.thread_type = "AUTO"  # frame + slice threads
            self._container, self._stream = container, stream
            self._n_decoded, self._stopped, self._reason = 0, False, "the video stream is empty"
            self._raw = self._decode()
            first = next(self._raw, None)
            if first is None:
                raise InputError(_one_line(f"{path}: no frame could be decoded ({self._reason}); "
                                           "the file is corrupt or truncated"))
        except BaseException:
            container.close()
            raise
        self._first: av.video.frame.VideoFrame | None = first
        self._orientation = _orientation_of(first, stream)
        height, width = (first.width, first.height) if self._orientation.transpose else (first.height, first.width)
        rate = stream.average_rate or stream.guessed_rate
        self.info = SourceInfo(
            path=str(path),
            kind="video",
            width=width,
            height=height,
            fps=float(rate) if rate else None,
            n_frames_hint=stream.frames or None,
            rotation_deg=self._orientation.rotation_deg,
            codec=stream.codec_context.name,
        )

    def _frames(self) -> Iterator[Frame]:
        if self.error:  # damage already met while opening (skipped packets before the first frame)
            logger.warning(self.error)
        time_base = self._stream.time_base
        rate = self._stream.guessed_rate or self._stream.average_rate
        step_s = 1.0 / float(rate) if rate else 0.0
        timestamp_s = 0.0
        av_frame, self._first = self._first, None
        index = 0
        try:
            while av_frame is not None:
                if av_frame.pts is not None and time_base is not None:
                    timestamp_s = float(av_frame.pts * time_base)
                else:  # raw streams (.h264) carry no PTS: space frames by the frame rate
                    timestamp_s = timestamp_s + step_s if index else 0.0
                rgb = self._orientation.apply(av_frame.to_ndarray(format="rgb24"))
                yield Frame(index=index, timestamp_s=timestamp_s, rgb=rgb)
                index += 1
                with self._lock:  # close() from another thread waits for the packet being decoded
                    if self._closed:
                        return
                    av_frame = next(self._raw, None)
        finally:
            self.close()

    def _decode(self) -> Iterator[av.video.frame.VideoFrame]:
        """Demux and decode the chosen stream. Never raises FFmpeg errors: they end up in `self.error`."""
        import av

        packets = self._container.demux(self._stream)
        last_packet_corrupt, n_bad, n_bad_in_a_row, first_bad_frame, first_bad_reason = False, 0, 0, 0, ""
        while not self._closed:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except av.error.FFmpegError as e:  # the demuxer cannot go on: the container is damaged
                yield from self._flush()
                self._stop(_av_reason(e))
                return
            if packet.size:
                last_packet_corrupt = packet.is_corrupt
            try:
                frames = packet.decode()  # the final empty packet flushes the decoder
            except av.error.FFmpegError as e:  # one bad packet: skip it, the decoder usually recovers
                n_bad += 1
                n_bad_in_a_row += 1
                if n_bad_in_a_row > _MAX_BAD_PACKETS:
                    yield from self._flush()
                    self._stop(f"{n_bad_in_a_row} undecodable packets in a row: {_av_reason(e)}")
                    return
                if n_bad == 1:
                    first_bad_frame, first_bad_reason = self._n_decoded, _av_reason(e)
                    self._reason = f"corrupt data: {first_bad_reason}"
                    self._set_error(f"skipped a corrupt packet near frame {first_bad_frame} and went on "
                                    f"(corrupt data): {first_bad_reason}", log=True)
                continue
            n_bad_in_a_row = 0
            for frame in frames:
                self._n_decoded += 1
                yield frame
        if self._closed:
            return
        truncated = self._missing_bytes()
        if last_packet_corrupt or truncated:
            self._stop(truncated or "the last packet is incomplete")
        elif n_bad > 1:  # update the count quietly: the first skip was logged already
            self._set_error(f"skipped {n_bad} corrupt packets, the first near frame {first_bad_frame}, and went on "
                            f"(corrupt data): {first_bad_reason}", log=False)

    def _flush(self) -> Iterator[av.video.frame.VideoFrame]:
        """The good frames still inside the decoder (frame threads hold a few) when decoding stops early."""
        import av

        try:
            frames = self._stream.codec_context.decode(None)
        except av.error.FFmpegError:
            return
        for frame in frames:
            self._n_decoded += 1
            yield frame

    def _missing_bytes(self) -> str | None:
        """Compare the container's index (MP4 sample table, AVI index) with the file size: a file cut short at a
        packet boundary ends without any FFmpeg error, and this is the only trace of it."""
        try:
            expected = max((e.pos + e.size for e in self._stream.index_entries), default=0)
            size = self.path.stat().st_size
        except (AttributeError, OSError):
            return None
        if expected > size:
            return f"the file is cut short (its index needs {expected} bytes, the file has {size})"
        return None

    def _stop(self, reason: str) -> None:
        self._reason = reason
        self._set_error(f"decoding stopped at frame {self._n_decoded} (corrupt or truncated data): {reason}", log=True)
        self._stopped = True

    def _set_error(self, what: str, log: bool) -> None:
        """Record damage in `error` (a stop outranks skipped packets); log it once iteration has begun."""
        if self._stopped:
            return
        self.error = _one_line(f"{self.path}: {what}")
        if log and self._iterated:
            logger.warning(self.error)

    def close(self) -> None:
        """Close the container. Safe to call more than once, also from another thread to stop the iteration."""
        self._closed = True
        with self._lock:
            raw = getattr(self, "_raw", None)
            if raw is not None:
                raw.close()
            container = getattr(self, "_container", None)
            if container is not None:
                container.close()
            was_open = container is not None
            self._raw = self._container = self._stream = self._first = None
        if was_open:
            # Reading a frame's side data (the display matrix, in `_orientation_of`) makes a reference cycle
            # inside PyAV that keeps the decoder's frame pool (~1 MB) alive until the cyclic garbage collector
            # runs, which a long analysis seldom triggers: collect once per file, so memory stays flat.
            import gc

            gc.collect()


def _video_stream(container: av.container.InputContainer, path: str | Path) -> av.stream.Stream:
    """The first real video stream (cover art in audio files is stored as a video stream too and is skipped)."""
    videos = [s for s in container.streams.video if not int(s.disposition) & _ATTACHED_PIC]
    if videos:
        return videos[0]
    has = "only audio" if container.streams.audio else "no audio or video stream"
    raise InputError(f"{path}: no video stream (the file has {has}); {_EXPECTED}")


# --- still images ----------------------------------------------------------------------------------------------------


class ImageSource(Source):
    """A still image (JPEG, PNG, BMP, TIFF, WebP) read with Pillow: one `Frame` with index 0 and timestamp 0.0.

    EXIF orientation is applied. Grey, palette, CMYK and alpha images become RGB (alpha is composited on black).
    16-bit images are scaled by their full range (value >> 8), never clipped. Multi-page files give their first page.

    Raises:
        InputError: When the file is missing, empty, or cannot be decoded as an image.
    """

    def __init__(self, path: str | Path) -> None:
        from PIL import Image, ImageOps, UnidentifiedImageError

        self.path = Path(path)
        _read_head(self.path)
        try:
            with Image.open(self.path) as image:
                orientation = image.getexif().get(0x0112, 1)
                codec = image.format.lower() if image.format else None
                image.load()
                upright = ImageOps.exif_transpose(image)
                self._rgb = _to_rgb8(upright, path)
        except InputError:
            raise
        except Exception as e:  # Pillow raises many types on damaged files (OSError, SyntaxError, struct.error...)
            reason = "not a known image format" if isinstance(e, UnidentifiedImageError) else _one_line(str(e))
            raise InputError(f"{path}: cannot decode image ({reason}); expected a JPEG, PNG, BMP, TIFF or WebP file"
                             ) from e
        self.info = SourceInfo(
            path=str(path),
            kind="image",
            width=self._rgb.shape[1],
            height=self._rgb.shape[0],
            fps=None,
            n_frames_hint=1,
            rotation_deg=_EXIF_ROTATION_DEG.get(orientation, 0),
            codec=codec,
        )

    def _frames(self) -> Iterator[Frame]:
        yield Frame(index=0, timestamp_s=0.0, rgb=self._rgb)


def _to_rgb8(image: PIL.Image.Image, path: str | Path) -> np.ndarray:
    """Any Pillow mode we support -> (H, W, 3) uint8 RGB, C-contiguous."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):  # 16-bit grey ("I" clipped to 0..65535 first)
        values = np.asarray(image)
        if mode == "I":
            values = np.clip(values, 0, 65535)
        grey = (values.astype(np.uint32) >> 8).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    elif mode in ("1", "L", "CMYK", "YCbCr", "LAB", "HSV", "RGBX"):
        image = image.convert("RGB")
    elif mode not in ("RGB", "RGBA"):
        raise InputError(f"{path}: unsupported image mode {mode}; expected 8- or 16-bit grey, RGB, RGBA, "
                         "palette or CMYK")
    array = np.asarray(image)
    if image.mode == "RGBA":  # composite on black: rgb * alpha / 255, rounded
        alpha = array[:, :, 3:4].astype(np.uint16)
        array = ((array[:, :, :3].astype(np.uint16) * alpha + 127) // 255).astype(np.uint8)
    return np.ascontiguousarray(array)


# --- webcams ---------------------------------------------------------------------------------------------------------


class _OpenCVCamera:
    """A camera through OpenCV's VideoCapture (pip installs: MediaPipe brings OpenCV; any platform, by index)."""

    def __init__(self, index: int, width: int | None, height: int | None) -> None:
        from .imaging import opencv

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
    from .imaging import opencv

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


# --- dispatch --------------------------------------------------------------------------------------------------------


def open_source(path_or_index: str | Path | int) -> Source:
    """Open a video, an image or a webcam.

    Args:
        path_or_index: A file path, or a webcam index as an int or a digit string ("0") that is not an existing file.

    Returns:
        A `WebcamSource` for indices; an `ImageSource` when the suffix is an image one (.jpg .jpeg .png .bmp .tif
        .tiff .webp) or the content starts like a JPEG/PNG/BMP/TIFF/WebP file; else a `VideoSource`.

    Raises:
        InputError: When the input cannot be opened; the one-line message names the file and the problem.
    """
    if _is_webcam_index(path_or_index):
        return WebcamSource(int(str(path_or_index)))
    path = Path(path_or_index)
    head = _read_head(path)
    if path.suffix.lower() in IMAGE_SUFFIXES or _looks_like_image(head):
        return ImageSource(path)
    return VideoSource(path)


def _is_webcam_index(path_or_index: str | Path | int) -> bool:
    if isinstance(path_or_index, int):
        return True
    text = str(path_or_index)
    return text.isdigit() and text.isascii() and not Path(text).exists()


def _looks_like_image(head: bytes) -> bool:
    return head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def _read_head(path: Path, n: int = 16) -> bytes:
    """Check that `path` is a readable, non-empty regular file and return its first `n` bytes."""
    if not path.exists():
        raise InputError(f"{path}: not found; check the path" + ("" if path.is_absolute() else f" (from {Path.cwd()})"))
    if path.is_dir():
        raise InputError(f"{path}: is a directory; expected a video or image file (iter_inputs() expands folders)")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file; {_EXPECTED} (for a webcam, pass its index such as 0)")
    try:
        with path.open("rb") as f:
            head = f.read(n)
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror or e}); check its permissions") from e
    if not head:
        raise InputError(f"{path}: empty file (0 bytes); {_EXPECTED}")
    return head


# --- expanding inputs ------------------------------------------------------------------------------------------------


def iter_inputs(inputs: Iterable[str | Path], recursive: bool = False) -> list[Path]:
    """Expand the inputs a user named into the media files to analyse, in order, without duplicates.

    Args:
        inputs: Files, folders, and list files. A folder gives its video and image files (VIDEO_SUFFIXES,
            IMAGE_SUFFIXES, any case; hidden files skipped), sorted by path. A `.txt` file lists inputs one per line,
            relative to the list's folder; blank lines and lines starting with # are ignored. Other files are kept
            as they are (their content decides how they are opened). A bare integer such as "0" that is not an
            existing file is kept too: `open_source` reads it as a webcam index.
        recursive: Also search the subfolders of folders.

    Returns:
        The files as Paths, in the order given (folders expanded in place).

    Raises:
        InputError: For a path that does not exist, a folder without media files, or an empty list file.
    """
    out: dict[Path, None] = {}  # ordered set
    for item in inputs:
        for path in _expand(Path(item), recursive, listed_in=None):
            out.setdefault(path, None)
    return list(out)


def _expand(path: Path, recursive: bool, listed_in: str | None) -> list[Path]:
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        suffixes = VIDEO_SUFFIXES + IMAGE_SUFFIXES
        found = sorted(p for p in path.glob(pattern) if p.suffix.lower() in suffixes and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))  # skip hidden
        if not found:
            where = "" if recursive else " (subfolders are not searched; use recursive=True)"
            raise InputError(f"{path}: no video or image files found{where}; expected files ending in "
                             f"{' '.join(suffixes)}")
        return found
    if path.is_file():
        return _read_list(path, recursive) if path.suffix.lower() == LIST_SUFFIX and listed_in is None else [path]
    if listed_in is None and _is_webcam_index(path):
        return [path]
    raise InputError(f"{path}: not found; check the path{listed_in or ''}")


def _read_list(list_path: Path, recursive: bool) -> list[Path]:
    """The inputs listed in a text file, one per line, relative to the list's folder."""
    try:
        lines = list_path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{list_path}: cannot read the list of inputs ({_one_line(str(e))}); "
                         "expected a UTF-8 text file") from e
    out: list[Path] = []
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else list_path.parent / path
        out += _expand(path, recursive, listed_in=f" (listed in {list_path}, line {number}, relative to its folder)")
    if not out:
        raise InputError(f"{list_path}: the list of inputs is empty; expected one video, image or folder per line")
    return out
