"""The one alignment: template geometry, degenerate input, the fast region-of-interest path, and its pixel
operations (libreface.imaging) against OpenCV's, which made the students' first training crops."""

from __future__ import annotations

import numpy as np
import pytest

from libreface.align import TEMPLATE_IDS, AlignFailed, align_face, align_matrix, template_px, to_model_input
from libreface.imaging import _pyr_down_numpy, _warp_affine_numpy, invert_affine, resize


def _template_landmarks(size: int, scale: float = 1.0, shift=(0.0, 0.0)) -> np.ndarray:
    lm = np.full((478, 3), np.nan, np.float32)
    lm[:, :2] = 0
    lm[list(TEMPLATE_IDS), :2] = template_px(size) * scale + np.asarray(shift)
    return lm


def test_aligning_the_template_onto_itself_is_the_identity():
    m = align_matrix(_template_landmarks(64), 64)
    np.testing.assert_allclose(m, np.eye(3)[:2], atol=1e-5)  # float32 landmarks


def test_a_scaled_and_shifted_face_maps_back_onto_the_template():
    lm = _template_landmarks(64, scale=5.0, shift=(300, 120))
    m = align_matrix(lm, 64)
    pts = lm[list(TEMPLATE_IDS), :2] @ m[:, :2].T + m[:, 2]
    np.testing.assert_allclose(pts, template_px(64), atol=1e-6)


def test_degenerate_landmarks_give_a_falsy_reason_not_an_exception():
    lm = np.zeros((478, 3), np.float32)
    res = align_face(np.zeros((100, 100, 3), np.uint8), lm, 64)
    assert isinstance(res, AlignFailed) and not res and "degenerate" in res.reason


def test_wrong_landmark_shapes_are_refused():
    with pytest.raises(ValueError, match=r"shape \(478, 2\)"):
        align_matrix(np.zeros((68, 2)), 64)


@pytest.mark.parametrize("side", [2048, 1501])
def test_big_faces_are_reduced_from_their_region_exactly_as_from_the_whole_frame(side):
    import cv2
    from skimage import data

    img = cv2.resize(data.astronaut(), (side, side))
    lm = _template_landmarks(64, scale=side / 120, shift=(side * 0.3, side * 0.1))
    crop = align_face(img, lm, 64).crop
    m = align_matrix(lm, 64)
    ref, s = img, float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    while s < 0.5:
        ref, m, s = cv2.pyrDown(ref), np.hstack([m[:, :2] * 2, m[:, 2:]]), s * 2
    assert ref.shape[0] < side // 2  # the pyramid path was taken
    ref = cv2.warpAffine(ref, m, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(crop.astype(int) - ref).max() <= 1


def test_grey_models_see_the_luma_of_colour_crops():
    crops = np.zeros((1, 4, 4, 3), np.uint8)
    crops[..., 0] = 255
    x = to_model_input(crops, (0, 0, 0), (1, 1, 1), "gray")
    assert x.shape == (1, 3, 4, 4) and np.allclose(x, 0.299, atol=1e-6)


@pytest.mark.parametrize("shape", [(480, 640, 3), (101, 77, 3), (33, 20), (2, 7, 3), (1, 5), (5, 1, 3), (3, 3)])
def test_the_numpy_pyramid_reduction_is_opencvs_bit_for_bit(shape):
    cv2 = pytest.importorskip("cv2")
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(_pyr_down_numpy(img), cv2.pyrDown(img))


def test_the_numpy_warp_is_opencvs_within_one_grey_level_on_a_few_pixels():
    cv2 = pytest.importorskip("cv2")
    from skimage import data

    rng = np.random.default_rng(0)
    img = data.astronaut()
    diffs = []
    for _ in range(100):  # rotations, scales and shifts, borders included (replicated)
        a, s = rng.uniform(-0.6, 0.6), rng.uniform(0.3, 3.0)
        m = np.array([[s * np.cos(a), -s * np.sin(a), rng.uniform(-400, 60)],
                      [s * np.sin(a), s * np.cos(a), rng.uniform(-400, 60)]])
        for im in (img, img[..., 1].copy()):
            ref = cv2.warpAffine(im, m, (64, 48), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            out = _warp_affine_numpy(im, m, (64, 48))
            assert out.shape == ref.shape and out.dtype == np.uint8
            diffs.append(np.abs(out.astype(int) - ref).ravel())
    diffs = np.concatenate(diffs)
    assert diffs.max() <= 1 and (diffs > 0).mean() < 1e-4


def test_invert_affine_undoes_the_map():
    m = np.array([[0.8, -0.3, 12.0], [0.3, 0.8, -7.0]])
    pts = np.array([[3.0, 4.0], [100.0, -20.0]])
    there = pts @ m[:, :2].T + m[:, 2]
    inv = invert_affine(m)
    np.testing.assert_allclose(there @ inv[:, :2].T + inv[:, 2], pts, atol=1e-9)


def test_resize_shrinks_by_area_and_keeps_grey_and_colour_layouts():
    img = np.zeros((4, 4, 3), np.uint8)
    img[:2, :2] = 200  # one bright quadrant -> one bright pixel at half size
    assert resize(img, (2, 2))[..., 0].tolist() == [[200, 0], [0, 0]]
    assert resize(img[..., 0], (8, 6)).shape == (6, 8)
    assert resize(img, (4, 4)) is not img and resize(img, (4, 4)).shape == (4, 4, 3)
