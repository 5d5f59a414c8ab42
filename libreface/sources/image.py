"""Frame sources, still image: one upright RGB `Frame` read with Pillow (EXIF orientation applied)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputError
from .base import Frame, Source, SourceInfo, _one_line, _read_head

if TYPE_CHECKING:
    import PIL.Image

# EXIF orientation tag (0x0112) -> clockwise rotation it asks for, in degrees (mirroring is applied but not reported)
_EXIF_ROTATION_DEG = {1: 0, 2: 0, 3: 180, 4: 180, 5: 270, 6: 90, 7: 90, 8: 270}


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
