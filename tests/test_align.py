"""The one alignment: template geometry, degenerate input, and the fast region-of-interest path."""

from __future__ import annotations

import numpy as np
import pytest

from libreface.align import TEMPLATE_IDS, AlignFailed, align_face, align_matrix, template_px, to_model_input


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
    ref = cv2.warpAffine(ref, m, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(crop.astype(int) - ref).max() <= 1


def test_grey_models_see_the_luma_of_colour_crops():
    crops = np.zeros((1, 4, 4, 3), np.uint8)
    crops[..., 0] = 255
    x = to_model_input(crops, (0, 0, 0), (1, 1, 1), "gray")
    assert x.shape == (1, 3, 4, 4) and np.allclose(x, 0.299, atol=1e-6)
