"""Frame sources, dispatch: open a path or a webcam index as the right `Source` (video, image or webcam)."""

from __future__ import annotations

from pathlib import Path

from .base import IMAGE_SUFFIXES, Source, _is_webcam_index, _read_head
from .image import ImageSource
from .video import VideoSource
from .webcam import WebcamSource

_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"II*\x00", b"MM\x00*")  # JPEG, PNG, BMP, TIFF LE/BE


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


def _looks_like_image(head: bytes) -> bool:
    return head.startswith(_IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
