"""The one alignment: MediaPipe landmarks -> square canonical face crop.

Training (`distill.data`) and inference (`libreface.pipeline`) both call `align_face`, so a
student always sees crops made the same way. The template is the frontal projection of
MediaPipe's canonical face mesh (shipped inside `face_landmarker.task`, Apache-2.0) restricted
to rigid points (eye corners and the nose ridge): the mouth, brows and jaw are free to move
inside the crop, which is what AU intensities measure.

The crop spans 17 cm of the canonical face (from just above the brows to below the chin),
centred 1.6 cm below the nose tip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .imaging import invert_affine, pyr_down, warp_affine

ALIGN_VERSION = "mp-rigid11.v1"
"""Written into every model's metadata; bump when the template or the warp changes."""

TEMPLATE_IDS: tuple[int, ...] = (33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1)
"""MediaPipe landmark indices used for alignment: eye corners and the nose ridge."""

TEMPLATE_UNIT = np.array(
    [
        (0.2385, 0.2492),
        (0.3908, 0.2538),
        (0.6092, 0.2538),
        (0.7615, 0.2492),
        (0.5000, 0.2135),
        (0.5000, 0.2604),
        (0.5000, 0.3042),
        (0.5000, 0.3436),
        (0.5000, 0.3844),
        (0.5000, 0.4331),
        (0.5000, 0.4722),
    ],
    dtype=np.float64,
)
"""(11, 2) template positions of `TEMPLATE_IDS`, (x, y) in units of the crop side, y down."""


@dataclass(frozen=True)
class AlignedFace:
    """A face warped onto the canonical crop.

    Attributes:
        crop: (size, size, 3) uint8 RGB.
        matrix: (2, 3) float64 affine map from image pixels to crop pixels.
    """

    crop: np.ndarray
    matrix: np.ndarray

    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True)
class AlignFailed:
    """A falsy result carrying why a face could not be aligned."""

    reason: str

    def __bool__(self) -> bool:
        return False


def similarity_matrix(src_xy: np.ndarray, dst_xy: np.ndarray) -> np.ndarray | None:
    """Least-squares similarity transform (Umeyama 1991) mapping `src_xy` onto `dst_xy`.

    Args:
        src_xy: (K, 2) source points.
        dst_xy: (K, 2) destination points.

    Returns:
        (2, 3) float64 matrix [sR | t], or None when the source points are degenerate.
    """
    src = np.asarray(src_xy, np.float64)
    dst = np.asarray(dst_xy, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    var_s = (s**2).sum() / len(s)
    if not np.isfinite(var_s) or var_s < 1e-9:
        return None
    cov = d.T @ s / len(s)
    u, sig, vt = np.linalg.svd(cov)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1
    rot = u @ sign @ vt
    scale = np.trace(np.diag(sig) @ sign) / var_s
    m = np.empty((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - m[:, :2] @ mu_s
    return m


def template_px(size: int) -> np.ndarray:
    """(11, 2) float64 template points in pixels of a `size` x `size` crop."""
    return TEMPLATE_UNIT * size


def align_matrix(landmarks_px: np.ndarray, size: int) -> np.ndarray | None:
    """(2, 3) matrix mapping image pixels to crop pixels, or None for degenerate landmarks.

    Args:
        landmarks_px: (478, 2+) MediaPipe landmarks, (x, y[, z]) in image pixels.
        size: side of the square crop in pixels.
    """
    lm = np.asarray(landmarks_px)
    if lm.ndim != 2 or lm.shape[0] < 468 or lm.shape[1] < 2:
        raise ValueError(f"landmarks_px must have shape (478, 2) or (478, 3), got {lm.shape}")
    src = lm[list(TEMPLATE_IDS), :2]
    if not np.isfinite(src).all():
        return None
    return similarity_matrix(src, template_px(size))


def align_face(image: np.ndarray, landmarks_px: np.ndarray, size: int = 64) -> AlignedFace | AlignFailed:
    """Warp one face onto the canonical crop used by every student.

    Args:
        image: (H, W, 3) uint8 RGB frame (a (H, W) grey image is accepted too).
        landmarks_px: (478, 2 or 3) float MediaPipe landmarks, (x, y) in pixels of `image`.
        size: side of the square output crop, in pixels (the model's input size).

    Returns:
        AlignedFace with `crop` (size, size, 3) uint8 RGB and `matrix` (2, 3); or a falsy
        AlignFailed with the reason (degenerate landmarks, or a face smaller than 2 px).
    """
    m = align_matrix(landmarks_px, size)
    if m is None:
        return AlignFailed("alignment: degenerate or non-finite landmarks")
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale > size / 2:  # the face would be under 2 px wide in the image
        return AlignFailed(f"alignment: face too small (scale {scale:.1f})")
    img = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    m_full = m
    if scale < 0.5:
        # Shrinking by more than 2x: resample from a pyramid-reduced copy to avoid aliasing. Only the
        # region the crop reads from (plus a margin for the pyramid's blur) is reduced, not the frame.
        inv = invert_affine(m)
        corners = np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64) @ inv.T
        margin = 4.0 / scale
        step = 2 ** int(np.ceil(np.log2(0.5 / scale)))  # ROI origin on the pyramid's grid: same pixels as the full frame
        h, w = img.shape[:2]
        x0 = int(max(0, np.floor(corners[:, 0].min() - margin))) // step * step
        y0 = int(max(0, np.floor(corners[:, 1].min() - margin))) // step * step
        x1 = int(min(w, np.ceil(corners[:, 0].max() + margin)))
        y1 = int(min(h, np.ceil(corners[:, 1].max() + margin)))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            img = img[y0:y1, x0:x1]
            m = m.copy()
            m[:, 2] += m[:, :2] @ np.array([x0, y0], np.float64)
        while scale < 0.5 and min(img.shape[:2]) > 8:
            img = pyr_down(img)
            m = m.copy()
            m[:, :2] *= 2.0
            scale *= 2.0
    crop = warp_affine(img, m, (size, size))
    return AlignedFace(crop=crop, matrix=m_full)


def to_model_input(crops: np.ndarray, mean: tuple[float, ...], std: tuple[float, ...], color: str = "rgb") -> np.ndarray:
    """Aligned uint8 crops -> the float32 model input tensor.

    Args:
        crops: (N, S, S, 3) uint8 RGB crops from `align_face`.
        mean, std: per-channel normalisation on the 0..1 scale, from the model's metadata.
        color: "rgb", or "gray" for models trained on grey faces (the luma is replicated to 3 channels).

    Returns:
        (N, 3, S, S) float32, normalised.
    """
    x = crops.astype(np.float32) / 255.0
    if color == "gray":
        luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
        x = np.repeat(luma[..., None], 3, axis=-1)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
