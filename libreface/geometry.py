"""Head geometry step: MediaPipe's facial transformation matrix -> head translation (mm) and 3-D landmarks (mm).

Camera model (an assumption: the real camera is not calibrated). MediaPipe fits its canonical face into a
perspective camera with a 63° vertical field of view and the principal point at the image centre; the fitted
matrix is in centimetres, in OpenGL camera axes (x right, y up, z toward the viewer, the face at negative z).
We keep that camera: focal length f = (H / 2) / tan(31.5°) pixels for an image H pixels high, square pixels,
principal point (W / 2, H / 2), no lens distortion. A real webcam's field of view differs (often 45-75°), which
scales every depth and translation by the ratio of the focal lengths: the numbers are consistent within a
recording but not metric to better than that.

Outputs follow OpenFace's camera convention: x right, y down, z forward from the camera (positive Z is the
distance in front of it), in millimetres.

* `translation_mm`: where the head is: the point of the canonical face at the centroid of its 68 iBUG points
  (about 4 cm behind the nose tip; OpenFace's origin is the centre of its own 3-D mean shape, the same idea).
* `landmarks_3d_mm`: points back-projected through the camera. A landmark's depth is the depth of the mesh
  centroid (MediaPipe's landmark z is relative to the centroid of the 468 mesh points, whose canonical position
  is `CANONICAL_MESH_CENTROID_CM`) plus its relative z converted from pixels to mm at that depth; then
  X = (x - cx) Z / f and Y = (y - cy) Z / f.
"""

from __future__ import annotations

import math

import numpy as np

VERTICAL_FOV_DEG = 63.0
"""Vertical field of view of MediaPipe's canonical perspective camera (face_geometry's environment)."""
CANONICAL_MESH_CENTROID_CM = np.array([0.0, -0.6764, 4.1590])
"""Centroid of the 468 vertices of the canonical face mesh shipped in `face_landmarker.task`, canonical cm."""
CANONICAL_IBUG68_CENTROID_CM = np.array([0.0, -1.1618, 3.5198])
"""Centroid of the canonical vertices of `outputs.schema.IBUG68_FROM_MEDIAPIPE`, canonical cm."""
_FLIP = np.diag([1.0, -1.0, -1.0])  # OpenGL camera axes <-> OpenFace camera axes (x right, y down, z forward)


def focal_px(height: int | float) -> float:
    """Focal length in pixels of the assumed camera for an image `height` pixels high."""
    return (float(height) / 2.0) / math.tan(math.radians(VERTICAL_FOV_DEG / 2.0))


def rotation(transform: np.ndarray) -> np.ndarray:
    """(3, 3) head rotation in OpenFace's camera axes (columns: the head's x right, y down, z back into the head).

    `transform` is MediaPipe's (4, 4) facial transformation matrix; any scale in it is divided out.
    """
    r = np.asarray(transform, np.float64)[:3, :3]
    r = r / np.linalg.norm(r, axis=0, keepdims=True)
    return _FLIP @ r @ _FLIP


def _point_mm(transform: np.ndarray, canonical_cm: np.ndarray) -> np.ndarray:
    """Camera position (mm, OpenFace axes) of a point of the canonical face given in canonical cm."""
    m = np.asarray(transform, np.float64)
    return 10.0 * (_FLIP @ (m[:3, :3] @ canonical_cm + m[:3, 3]))


def translation_mm(transform: np.ndarray) -> np.ndarray:
    """(3,) head translation (Tx, Ty, Tz) in mm, OpenFace axes: x right, y down, z = distance from the camera.

    The tracked point is the canonical face's iBUG-68 centroid (see the module docstring).
    """
    return _point_mm(transform, CANONICAL_IBUG68_CENTROID_CM)


def landmarks_3d_mm(landmarks_px: np.ndarray, transform: np.ndarray, width: int, height: int,
                    indices=None) -> np.ndarray:
    """Landmarks back-projected to camera space, (N, 3) float64 X, Y, Z in mm (OpenFace axes).

    Args:
        landmarks_px: (478, 3) x, y in frame pixels, z relative depth in pixels (smaller = closer; centroid 0).
        transform: MediaPipe's (4, 4) facial transformation matrix, in this frame's camera (see `reframe_transform`).
        width, height: frame size in pixels.
        indices: landmark indices to return (e.g. the 68 iBUG points); None = all.
    """
    lm = np.asarray(landmarks_px, np.float64)
    if indices is not None:
        lm = lm[list(indices)]
    f = focal_px(height)
    z0 = _point_mm(transform, CANONICAL_MESH_CENTROID_CM)[2]
    z = z0 + lm[:, 2] * (z0 / f)
    out = np.empty((len(lm), 3))
    out[:, 0] = (lm[:, 0] - width / 2.0) * z / f
    out[:, 1] = (lm[:, 1] - height / 2.0) * z / f
    out[:, 2] = z
    return out


def reframe_transform(transform: np.ndarray, crop_wh: tuple[int, int], offset: tuple[float, float], scale: float,
                      frame_wh: tuple[int, int]) -> np.ndarray:
    """A facial transformation matrix fitted on a crop, re-expressed in the whole frame's camera.

    MediaPipe fits each image with the same 63° camera, so a matrix from an upscaled crop places the face as
    the crop's camera sees it. Here the face keeps its rotation, its projected centre moves to where the crop
    sits in the frame, and its depth grows by the ratio of the two focal lengths (in frame pixels).

    Args:
        transform: (4, 4) matrix fitted on the crop.
        crop_wh: crop size (pixels of the image MediaPipe saw).
        offset: frame position (pixels) of the crop's top-left corner.
        scale: crop pixels per frame pixel.
        frame_wh: frame size in pixels.
    """
    m = np.array(transform, np.float64)
    t = m[:3, 3]
    fc = focal_px(crop_wh[1])
    u = (crop_wh[0] / 2.0 + fc * t[0] / -t[2]) / scale + offset[0]
    v = (crop_wh[1] / 2.0 - fc * t[1] / -t[2]) / scale + offset[1]
    f = focal_px(frame_wh[1])
    depth = -t[2] * f * scale / fc
    m[:3, 3] = ((u - frame_wh[0] / 2.0) * depth / f, -(v - frame_wh[1] / 2.0) * depth / f, -depth)
    return m
