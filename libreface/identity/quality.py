"""Identity step, face ranking: how useful one face is for recognition (size, frontalness, sharpness)."""

from __future__ import annotations

import numpy as np

_EYE_OUTER = (33, 263)  # MediaPipe: image-left and image-right outer eye corners
_NOSE_TIP = 1


def face_quality(rgb: np.ndarray, landmarks_px: np.ndarray, confidence: float = 1.0) -> float:
    """How useful one face is for recognition, 0..1: confidence x size x frontalness x sharpness.

    size: outer-eye distance / 40 px, capped at 1; frontalness: 1 when the nose tip is halfway between the outer eye
    corners, 0 at about 45 degrees of yaw; sharpness: v / (v + 100), v = variance of the Laplacian of the grey face box
    resized to 64 x 64. Only used to rank a track's faces, so the scale is arbitrary but monotonic.
    """
    import cv2

    lm = np.asarray(landmarks_px, np.float64)[:, :2]
    a, b = lm[_EYE_OUTER[0]], lm[_EYE_OUTER[1]]
    axis = b - a
    iod = float(np.hypot(*axis))
    if not np.isfinite(iod) or iod < 1e-6:
        return 0.0
    r = float(np.dot(lm[_NOSE_TIP] - a, axis) / iod**2)
    frontal = min(1.0, max(0.0, 1.0 - 2.5 * abs(r - 0.5)))
    size = min(1.0, iod / 40.0)
    h, w = rgb.shape[:2]
    x0, y0 = np.clip(np.floor(lm.min(0)).astype(int), 0, (w - 1, h - 1))
    x1, y1 = np.clip(np.ceil(lm.max(0)).astype(int) + 1, 1, (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    patch = rgb[y0:y1, x0:x1]
    grey = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2GRAY) if patch.ndim == 3 else patch
    grey = cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA)
    v = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return float(confidence) * size * frontal * (v / (v + 100.0))
