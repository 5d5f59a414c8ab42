"""Gaze step: per-eye gaze vectors and gaze angles from MediaPipe's iris landmarks, eye corners and head pose.

Method (OpenFace 2's geometric model, on MediaPipe points; see `libreface.geometry` for the camera model):

1. The eye corners (mesh 33/133 for eye 0, 362/263 for eye 1) are back-projected to 3-D camera space (mm).
2. The eyeball centre is their midpoint moved `EYEBALL_OFFSET_MM` in the head's own axes: 7 mm back into the
   head, as in OpenFace, and 2 mm up (OpenFace uses 3.5 mm up for its own landmarks; 2 mm puts the median
   vertical eye-in-head angle over the six shared test videos at about 0°, measured with `bench/gaze.py`: a
   population-level choice, not a per-person calibration).
3. The camera ray through the iris centre (mesh 468 / 473, in pixels) meets the eyeball, a sphere of
   `EYEBALL_RADIUS_MM` (12 mm), at the pupil; the gaze is the unit vector from the eyeball centre to it.

Conventions (OpenFace's): camera axes x right, y down, z forward; a gaze toward the camera has z < 0. Eye 0 is
the leftmost eye in the image (the subject's right eye), eye 1 the rightmost. `gaze_angles` gives OpenFace's
`gaze_angle_x/y`: atan2(x, -z) and atan2(y, -z) of the mean of the two vectors, in radians; x grows when the
subject looks toward the image's right (their left), y grows when they look down.

The model is uncalibrated: no per-person or per-camera fit; eyeball size and offset are population guesses, and
the camera is MediaPipe's assumed 63° one. Expect errors of several degrees and an offset per person; use the
angles for relative changes (looking away, left/right/up/down) rather than as absolute screen positions.

`blendshape_gaze` is the alternative estimate from MediaPipe's eyeLook* blendshapes (eye-in-head rotation,
scaled by `BLENDSHAPE_GAIN_DEG`) combined with head pose; `bench/gaze.py` compares the two.
"""

from __future__ import annotations

import math

import numpy as np

from .geometry import focal_px, landmarks_3d_mm, rotation

EYE_CORNERS: tuple[tuple[int, int], tuple[int, int]] = ((33, 133), (362, 263))
"""Mesh vertices of the corners of eye 0 (image left, the subject's right eye) and eye 1."""
IRIS_CENTRES: tuple[int, int] = (468, 473)
"""Mesh vertices of the iris centres of eye 0 and eye 1."""
EYEBALL_RADIUS_MM = 12.0
EYEBALL_OFFSET_MM = np.array([0.0, -2.0, 7.0])
"""Eyeball centre minus eye-corner midpoint, in the head's axes (x subject's left, y down, z into the head)."""
BLENDSHAPE_GAIN_DEG = 30.0
"""Eye rotation (degrees) for an eyeLook* blendshape difference of 1 (an uncalibrated guess)."""
_BS = {name: i for i, name in enumerate((
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight"))}  # the first 19 of `landmarks.BLENDSHAPE_NAMES` (checked by the tests)


def _sphere_hit(ray: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Nearest point where the ray from the origin along unit `ray` meets the sphere; the ray's closest point to
    the centre, pushed onto the sphere, when it misses."""
    along = float(ray @ centre)
    closest = along * ray
    d2 = float((centre - closest) @ (centre - closest))
    if d2 <= radius * radius:
        return (along - math.sqrt(radius * radius - d2)) * ray
    off = closest - centre
    return centre + off * (radius / math.sqrt(d2))


def iris_gaze(landmarks_px: np.ndarray, transform: np.ndarray, width: int, height: int) -> np.ndarray:
    """(2, 3) unit gaze vectors of eye 0 and eye 1 in camera axes (see the module docstring).

    Args:
        landmarks_px: (478, 3) MediaPipe landmarks (x, y frame pixels; z relative depth in pixels).
        transform: (4, 4) facial transformation matrix in this frame's camera.
        width, height: frame size in pixels.
    """
    lm = np.asarray(landmarks_px, np.float64)
    corners = landmarks_3d_mm(lm, transform, width, height, [i for pair in EYE_CORNERS for i in pair])
    r = rotation(transform)
    f = focal_px(height)
    out = np.empty((2, 3))
    for eye in range(2):
        centre = corners[2 * eye: 2 * eye + 2].mean(axis=0) + r @ EYEBALL_OFFSET_MM
        x, y = lm[IRIS_CENTRES[eye], :2]
        ray = np.array([(x - width / 2.0) / f, (y - height / 2.0) / f, 1.0])
        ray /= np.linalg.norm(ray)
        g = _sphere_hit(ray, centre, EYEBALL_RADIUS_MM) - centre
        out[eye] = g / np.linalg.norm(g)
    return out


def blendshape_gaze(blendshapes: np.ndarray, transform: np.ndarray, gain_deg: float = BLENDSHAPE_GAIN_DEG) -> np.ndarray:
    """(2, 3) unit gaze vectors from the eyeLook* blendshapes (eye-in-head) rotated by the head pose.

    The "Right" blendshapes drive eye 0 (the subject's right eye), the "Left" ones eye 1; "In" turns an eye toward
    the nose, "Out" away from it. Angles are `gain_deg` times the blendshape differences.
    """
    b = np.asarray(blendshapes, np.float64)
    horiz = (b[_BS["eyeLookInRight"]] - b[_BS["eyeLookOutRight"]], b[_BS["eyeLookOutLeft"]] - b[_BS["eyeLookInLeft"]])
    vert = (b[_BS["eyeLookDownRight"]] - b[_BS["eyeLookUpRight"]], b[_BS["eyeLookDownLeft"]] - b[_BS["eyeLookUpLeft"]])
    r = rotation(transform)
    out = np.empty((2, 3))
    for eye in range(2):
        a, e = math.radians(gain_deg * horiz[eye]), math.radians(gain_deg * vert[eye])
        out[eye] = r @ np.array([math.sin(a) * math.cos(e), math.sin(e), -math.cos(a) * math.cos(e)])
    return out


def gaze_angles(vectors: np.ndarray) -> np.ndarray:
    """(2,) OpenFace's (gaze_angle_x, gaze_angle_y) in radians from (2, 3) gaze vectors: atan2 of the mean
    vector's x and y over its -z. (0, 0) = looking straight at the camera."""
    g = np.asarray(vectors, np.float64).mean(axis=0)
    return np.array([math.atan2(g[0], -g[2]), math.atan2(g[1], -g[2])])
