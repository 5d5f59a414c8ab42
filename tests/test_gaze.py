"""Head geometry and gaze on synthetic faces with known answers: translation, 3-D landmarks, gaze vectors, angles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from libreface import gaze as G
from libreface.geometry import (
    CANONICAL_IBUG68_CENTROID_CM,
    CANONICAL_MESH_CENTROID_CM,
    focal_px,
    landmarks_3d_mm,
    reframe_transform,
    rotation,
    translation_mm,
)
from libreface.landmarks import BLENDSHAPE_NAMES

W, H = 640, 480
FLIP = np.diag([1.0, -1.0, -1.0])


def transform(yaw_deg=0.0, pitch_deg=0.0, t_cm=(0.0, 0.0, -50.0)) -> np.ndarray:
    """A MediaPipe-style matrix (OpenGL axes, cm): rotation about y (yaw) then x (pitch), then translation."""
    a, b = math.radians(yaw_deg), math.radians(pitch_deg)
    ry = np.array([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), -math.sin(b)], [0, math.sin(b), math.cos(b)]])
    m = np.eye(4)
    m[:3, :3] = ry @ rx
    m[:3, 3] = t_cm
    return m


def project(points_mm: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Camera points (mm, OpenFace axes) -> MediaPipe-style landmarks: x, y pixels, z relative depth in pixels."""
    f = focal_px(H)
    z0 = 10.0 * (FLIP @ (m[:3, :3] @ CANONICAL_MESH_CENTROID_CM + m[:3, 3]))[2]
    p = np.asarray(points_mm, np.float64)
    return np.stack([p[:, 0] * f / p[:, 2] + W / 2, p[:, 1] * f / p[:, 2] + H / 2, (p[:, 2] - z0) * f / z0], axis=1)


def canonical_to_camera_mm(canonical_cm: np.ndarray, m: np.ndarray) -> np.ndarray:
    return 10.0 * (FLIP @ (m[:3, :3] @ np.asarray(canonical_cm, np.float64).T + m[:3, 3:4])).T


# -- geometry -----------------------------------------------------------------------------------


def test_translation_is_the_canonical_68_point_centroid_in_mm_in_openface_axes():
    t = translation_mm(transform(t_cm=(2.0, -1.0, -50.0)))
    c = CANONICAL_IBUG68_CENTROID_CM
    assert t == pytest.approx([10 * (c[0] + 2.0), -10 * (c[1] - 1.0), -10 * (c[2] - 50.0)])
    assert t[2] == pytest.approx(464.802, abs=1e-3)  # positive Z: the distance in front of the camera


def test_a_head_right_of_and_above_the_camera_has_positive_tx_and_negative_ty():
    tx, ty, _ = translation_mm(transform(t_cm=(10.0, 10.0, -60.0)))
    assert tx > 0 and ty < 0


def test_3d_landmarks_back_project_known_points():
    m = transform(yaw_deg=15, t_cm=(3.0, -2.0, -55.0))
    rng = np.random.default_rng(0)
    pts = canonical_to_camera_mm(rng.uniform(-8, 8, (478, 3)), m)
    got = landmarks_3d_mm(project(pts, m), m, W, H)
    np.testing.assert_allclose(got, pts, atol=1e-6)
    np.testing.assert_allclose(landmarks_3d_mm(project(pts, m), m, W, H, indices=[5, 7]), pts[[5, 7]], atol=1e-6)


def test_the_focal_length_follows_the_63_degree_vertical_field_of_view():
    assert focal_px(480) == pytest.approx(240 / math.tan(math.radians(31.5)))


def test_reframing_a_full_frame_matrix_changes_nothing():
    m = transform(yaw_deg=10, t_cm=(4.0, 1.0, -40.0))
    np.testing.assert_allclose(reframe_transform(m, (W, H), (0.0, 0.0), 1.0, (W, H)), m, atol=1e-9)


def test_a_crop_matrix_lands_where_the_crop_is_in_the_frame():
    crop = transform(yaw_deg=-5, t_cm=(1.0, -2.0, -30.0))  # as the region pass sees the face in a 256 px crop
    offset, scale = (300.0, 120.0), 256 / 80  # an 80 px frame region upscaled to 256 px
    out = reframe_transform(crop, (256, 256), offset, scale, (W, H))

    def pixel(m, w, h):
        f, t = focal_px(h), m[:3, 3]
        return np.array([w / 2 + f * t[0] / -t[2], h / 2 - f * t[1] / -t[2]])

    np.testing.assert_allclose(pixel(out, W, H), pixel(crop, 256, 256) / scale + offset, atol=1e-9)
    # the apparent size (f / depth) is the same in frame pixels
    assert focal_px(H) / -out[2, 3] == pytest.approx(focal_px(256) / -crop[2, 3] / scale)
    np.testing.assert_allclose(out[:3, :3], crop[:3, :3])


def test_rotation_is_expressed_in_openface_axes():
    r = rotation(transform(yaw_deg=30))
    # the head's own "into the head" axis (z) tilts toward +x when the head turns toward the image's left...
    assert r[2, 2] == pytest.approx(math.cos(math.radians(30)))
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)


# -- gaze ---------------------------------------------------------------------------------------


def synthetic_face(m: np.ndarray, gaze_dirs: np.ndarray) -> np.ndarray:
    """(478, 3) landmarks: eye corners from the canonical mesh, iris centres where the given gazes put the pupils."""
    canon = {33: (-4.446, 2.664, 3.173), 133: (-1.856, 2.585, 3.758), 362: (1.856, 2.585, 3.758),
             263: (4.446, 2.664, 3.173)}
    pts = np.zeros((478, 3))
    pts[:] = canonical_to_camera_mm(np.zeros((1, 3)), m)  # everything else at the face origin
    for i, c in canon.items():
        pts[i] = canonical_to_camera_mm(np.array([c]), m)[0]
    r = rotation(m)
    for eye, (a, b) in enumerate(G.EYE_CORNERS):
        centre = (pts[a] + pts[b]) / 2 + r @ G.EYEBALL_OFFSET_MM
        pts[G.IRIS_CENTRES[eye]] = centre + G.EYEBALL_RADIUS_MM * gaze_dirs[eye]
    return project(pts, m)


def unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


@pytest.mark.parametrize("yaw, pitch", [(0, 0), (25, 0), (-20, 10), (10, -15)])
@pytest.mark.parametrize("gaze", [(0.0, 0.0, -1.0), (0.3, 0.1, -1.0), (-0.25, -0.2, -1.0)])
def test_iris_gaze_recovers_the_gaze_that_placed_the_pupils(yaw, pitch, gaze):
    m = transform(yaw_deg=yaw, pitch_deg=pitch, t_cm=(3.0, 2.0, -55.0))
    g = np.stack([unit(gaze), unit(np.add(gaze, (0.02, 0.0, 0.0)))])
    got = G.iris_gaze(synthetic_face(m, g), m, W, H)
    np.testing.assert_allclose(got, g, atol=1e-6)


def test_gaze_angles_follow_openface():
    a = math.radians(12)
    g = np.array([[math.sin(a), 0, -math.cos(a)]] * 2)
    assert G.gaze_angles(g) == pytest.approx([a, 0.0])
    down = np.array([[0, math.sin(a), -math.cos(a)]] * 2)
    assert G.gaze_angles(down) == pytest.approx([0.0, a])  # y > 0: looking down


def test_looking_toward_the_image_right_gives_a_positive_angle_x():
    m = transform(t_cm=(0.0, 0.0, -50.0))
    g = np.stack([unit((0.3, 0.0, -1.0))] * 2)
    ax, ay = G.gaze_angles(G.iris_gaze(synthetic_face(m, g), m, W, H))
    assert ax == pytest.approx(math.atan2(0.3, 1.0), abs=1e-6) and ay == pytest.approx(0.0, abs=1e-6)


def test_blendshape_names_used_by_gaze_match_mediapipe_order():
    assert all(BLENDSHAPE_NAMES[i] == name for name, i in G._BS.items())


def test_blendshape_gaze_directions():
    bs = np.zeros(52)
    np.testing.assert_allclose(G.blendshape_gaze(bs, transform()), [[0, 0, -1], [0, 0, -1]], atol=1e-12)
    bs[BLENDSHAPE_NAMES.index("eyeLookOutLeft")] = 1.0  # the subject's left eye turns to their left: image right
    bs[BLENDSHAPE_NAMES.index("eyeLookInRight")] = 1.0  # the right eye follows, toward the nose
    bs[BLENDSHAPE_NAMES.index("eyeLookDownLeft")] = 0.5
    g = G.blendshape_gaze(bs, transform())
    assert g[0, 0] > 0 and g[1, 0] > 0 and g[1, 1] > 0 and g[0, 1] == pytest.approx(0)
    assert math.degrees(G.gaze_angles(np.repeat(g[1:], 2, axis=0))[0]) == pytest.approx(G.BLENDSHAPE_GAIN_DEG, abs=1e-9)
