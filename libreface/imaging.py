"""The pixel operations of the runtime: affine warp, pyramid reduction and resizing.

The analyzer needs only these few operations, and they are defined here once. `warp_affine` and `pyr_down` are
OpenCV's `warpAffine(INTER_LINEAR, BORDER_REPLICATE)` and `pyrDown`, run by OpenCV when it is installed (pip
installs have it: MediaPipe depends on it; 5-8x faster) and otherwise by the NumPy versions below, which reproduce
them: `pyr_down` bit-exactly, `warp_affine` within one grey level on about 0.002 % of pixels (tests/test_align.py
checks both against OpenCV). That is what lets the desktop bundle leave ~150 MiB of OpenCV out
(packaging/README.md). Resizing is Pillow's.
"""

from __future__ import annotations

import os

import numpy as np

_UNSET = object()
_cv2 = _UNSET


def opencv():
    """OpenCV's module, or None when it is not installed or `LIBREFACE_NO_OPENCV=1` asks for what the desktop
    bundle runs (the NumPy pixel operations here, cameras through PyAV). The one place that decides whether the
    runtime uses OpenCV; imported on first use, so `import libreface` stays fast."""
    global _cv2
    if _cv2 is _UNSET:
        try:
            if os.environ.get("LIBREFACE_NO_OPENCV"):
                raise ImportError
            import cv2

            _cv2 = cv2
        except ImportError:
            _cv2 = None
    return _cv2


def pyr_down(image: np.ndarray) -> np.ndarray:
    """Blur with the 5x5 binomial kernel and keep every other pixel (OpenCV's `pyrDown`, bit-exact).

    Args:
        image: (H, W) or (H, W, C) uint8.

    Returns:
        ((H + 1) // 2, (W + 1) // 2[, C]) uint8.
    """
    cv2 = opencv()
    if cv2 is not None:
        return cv2.pyrDown(np.ascontiguousarray(image))
    return _pyr_down_numpy(image)


def _pyr_down_numpy(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    h, w = a.shape[:2]
    oh, ow = (h + 1) // 2, (w + 1) // 2
    # numpy's "reflect" is OpenCV's BORDER_REFLECT_101; a 1-px side is replicated
    p = np.pad(a, [(2, 2) if n > 1 else (0, 0) for n in (h, w)] + [(0, 0)] * (a.ndim - 2), mode="reflect")
    if h == 1:
        p = np.repeat(p, 5, axis=0)
    if w == 1:
        p = np.repeat(p, 5, axis=1)
    p = p.astype(np.uint16)  # 256 * 255 + 128 fits: the sums never overflow

    def taps(x: np.ndarray, axis: int, n: int) -> np.ndarray:
        """1 4 6 4 1 sum around every other position along `axis` (in place where it can, for speed)."""
        s = [slice(None)] * x.ndim

        def at(k: int) -> np.ndarray:
            s[axis] = slice(k, k + 2 * n, 2)
            return x[tuple(s)]

        out = at(1) + at(3)
        out <<= 2
        out += at(0)
        out += at(4)
        mid = at(2)
        out += mid << 2
        out += mid << 1
        return out

    out = taps(taps(p, 0, oh), 1, ow)
    out += 128
    out >>= 8
    return out.astype(np.uint8)


def invert_affine(matrix: np.ndarray) -> np.ndarray:
    """(2, 3) inverse of a (2, 3) affine matrix."""
    m = np.asarray(matrix, np.float64)
    a_inv = np.linalg.inv(m[:, :2])
    return np.hstack([a_inv, -(a_inv @ m[:, 2:])])


def warp_affine(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear affine warp with replicated borders (OpenCV's `warpAffine(INTER_LINEAR, BORDER_REPLICATE)`).

    Args:
        image: (H, W) or (H, W, C) uint8 source.
        matrix: (2, 3) float map from source pixels to output pixels (pixel centres at integer coordinates).
        size: (width, height) of the output in pixels.

    Returns:
        (height, width[, C]) uint8.
    """
    cv2 = opencv()
    if cv2 is not None:
        return cv2.warpAffine(np.ascontiguousarray(image), np.asarray(matrix, np.float64), tuple(size),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return _warp_affine_numpy(image, matrix, size)


def _warp_affine_numpy(image: np.ndarray, matrix: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    src = np.asarray(image)
    h, w = src.shape[:2]
    flat = src.reshape(h * w, -1)
    inv = invert_affine(matrix)
    xs = np.arange(size[0], dtype=np.float64)
    ys = np.arange(size[1], dtype=np.float64)[:, None]
    sx = (inv[0, 0] * xs + (inv[0, 1] * ys + inv[0, 2])).ravel()
    sy = (inv[1, 0] * xs + (inv[1, 1] * ys + inv[1, 2])).ravel()
    x0f, y0f = np.floor(sx), np.floor(sy)
    fx, fy = (sx - x0f).astype(np.float32)[:, None], (sy - y0f).astype(np.float32)[:, None]
    x0, y0 = x0f.astype(np.intp), y0f.astype(np.intp)
    xa, xb = np.clip(x0, 0, w - 1), np.clip(x0 + 1, 0, w - 1)
    ya, yb = np.clip(y0, 0, h - 1) * w, np.clip(y0 + 1, 0, h - 1) * w
    top = flat[ya + xa] * (1 - fx) + flat[ya + xb] * fx
    bottom = flat[yb + xa] * (1 - fx) + flat[yb + xb] * fx
    out = np.rint(top * (1 - fy) + bottom * fy).clip(0, 255).astype(np.uint8)
    return out.reshape((size[1], size[0]) + src.shape[2:])


def resize(image: np.ndarray, size: tuple[int, int], smooth: bool = False) -> np.ndarray:
    """Resize with Pillow: box filter (area average) when shrinking, bicubic when enlarging.

    Args:
        image: (H, W) or (H, W, 3) uint8.
        size: (width, height) of the output in pixels.
        smooth: enlarge bilinearly instead of bicubically (cheaper; for detector inputs).

    Returns:
        (height, width[, 3]) uint8.
    """
    from PIL import Image

    src = np.ascontiguousarray(image)
    h, w = src.shape[:2]
    if (w, h) == tuple(size):
        return src.copy()
    shrink = size[0] * size[1] < w * h
    method = Image.Resampling.BOX if shrink else (Image.Resampling.BILINEAR if smooth else Image.Resampling.BICUBIC)
    return np.asarray(Image.fromarray(src).resize(tuple(size), method))

