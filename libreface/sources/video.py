"""Frame sources, video: a file decoded with PyAV (FFmpeg) as a stream, upright, with PTS timestamps."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from ..errors import InputError
from .base import _EXPECTED, Frame, Source, SourceInfo, _one_line, _read_head

if TYPE_CHECKING:
    import av.container
    import av.stream
    import av.video.frame

logger = logging.getLogger(__name__)

_ATTACHED_PIC = 0x0400  # AV_DISPOSITION_ATTACHED_PIC: cover art stored as a one-frame "video" stream
_MAX_BAD_PACKETS = 25  # consecutive undecodable packets before a video is given up as corrupt


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
