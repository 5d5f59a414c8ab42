"""Frame sources, common ground: `Frame`, `SourceInfo`, the `Source` base class and the input-file checks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")

_EXPECTED = "expected a video such as .mp4, .mov, .mkv, .avi or an image such as .jpg, .png"


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

def _one_line(text: str) -> str:
    """Collapse whitespace runs (newlines included) so that messages stay on one line."""
    return " ".join(text.split())


def _is_webcam_index(path_or_index: str | Path | int) -> bool:
    if isinstance(path_or_index, int):
        return True
    text = str(path_or_index)
    return text.isdigit() and text.isascii() and not Path(text).exists()

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
