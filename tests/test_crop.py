"""Face-aware crops: the focal-point geometry, the 1024-px detection cap, and `libreface crop`."""

from __future__ import annotations

import re
from types import SimpleNamespace

import numpy as np
import pytest

from libreface.crop import capped_size, crop_box, crop_main, detect_faces_capped, focal_crop


def _aspect(box) -> float:
    return (box[2] - box[0]) / (box[3] - box[1])


def _contains(outer, inner) -> bool:
    return outer[0] <= inner[0] and outer[1] <= inner[1] and outer[2] >= inner[2] and outer[3] >= inner[3]


# -- geometry --------------------------------------------------------------------------------------


def test_zoom_1_is_the_tightest_window_of_the_output_aspect_around_the_faces():
    face = (400, 300, 500, 420)  # 100 x 120
    box = crop_box((1920, 1080), [face], zoom=1.0, out_wh=(512, 512))
    assert box == (390, 300, 510, 420)  # square, as tall as the face, centred on it


def test_a_small_zoom_grows_the_window_around_the_same_focal_point():
    face = (900, 500, 1000, 600)
    box = crop_box((1920, 1080), [face], zoom=0.25, out_wh=(100, 100))
    assert box == (750, 350, 1150, 750)  # 4 x the face, same centre (950, 550)
    assert _contains(box, face)


def test_the_focal_point_is_the_centre_of_the_union_of_all_faces():
    faces = [(100, 100, 200, 200), (600, 300, 700, 400)]
    box = crop_box((1920, 1080), faces, zoom=1.0, out_wh=(600, 300))
    assert box == (100, 100, 700, 400)
    assert ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) == (400, 250)


def test_a_face_at_the_border_shifts_the_window_inside_without_shrinking_it():
    face = (0, 0, 80, 100)  # top-left corner
    box = crop_box((1000, 800), [face], zoom=0.5, out_wh=(1, 1))
    assert box == (0, 0, 200, 200)  # 200 x 200 as asked, moved inside
    face = (950, 720, 1000, 800)  # bottom-right corner
    box = crop_box((1000, 800), [face], zoom=0.5, out_wh=(1, 1))
    assert box == (840, 640, 1000, 800)


def test_a_window_larger_than_the_image_is_shrunk_keeping_its_aspect():
    face = (200, 100, 400, 300)
    box = crop_box((640, 360), [face], zoom=0.1, out_wh=(400, 200))
    assert box[0] >= 0 and box[1] >= 0 and box[2] <= 640 and box[3] <= 360
    assert box == (0, 40, 640, 360)  # centred on the face (y = 200), then shifted up inside
    assert _aspect(box) == pytest.approx(2.0)


def test_no_face_gives_the_largest_centred_window_whatever_the_zoom():
    assert crop_box((1920, 1080), [], zoom=1.0, out_wh=(100, 100)) == (420, 0, 1500, 1080)
    assert crop_box((1920, 1080), [], zoom=0.2, out_wh=(100, 100)) == (420, 0, 1500, 1080)
    assert crop_box((1080, 1920), [], zoom=0.5, out_wh=(16, 9)) == (0, 656, 1080, 1264)


@pytest.mark.parametrize("out_wh", [(1080, 1920), (1920, 1080), (512, 512), (300, 100)])
def test_the_window_has_the_output_aspect_and_holds_every_face(out_wh):
    faces = [(500, 400, 620, 560), (700, 380, 800, 500)]
    box = crop_box((1920, 1080), faces, zoom=0.8, out_wh=out_wh)
    assert _aspect(box) == pytest.approx(out_wh[0] / out_wh[1], rel=0.01)
    assert _contains(box, (500, 380, 800, 560))


@pytest.mark.parametrize("zoom, size, message", [
    (0.0, (100, 100), "zoom must be in \\(0, 1\\]"),
    (1.5, (100, 100), "zoom must be in \\(0, 1\\]"),
    (float("nan"), (100, 100), "zoom must be in \\(0, 1\\]"),
    (0.5, (0, 100), "size must be at least 1 x 1"),
    (0.5, ("a", 1), "size must be \\(width, height\\)"),
])
def test_bad_zoom_or_size_is_one_line_naming_the_value(zoom, size, message):
    with pytest.raises(ValueError, match=message) as err:
        crop_box((100, 100), [(10, 10, 20, 20)], zoom, size)
    assert "\n" not in str(err.value)


# -- the 1024-px detection cap ---------------------------------------------------------------------


def test_the_detection_copy_is_capped_at_1024_px_with_the_aspect_kept():
    assert capped_size((4000, 3000)) == ((1024, 768), 0.256)
    assert capped_size((1080, 1920)) == ((576, 1024), 1024 / 1920)
    assert capped_size((640, 480)) == ((640, 480), 1.0)


class _FakeFrontEnd:
    """Finds one 'face' at a fixed fraction of whatever image it is given, and remembers the image's size."""

    def __init__(self):
        self.seen = []

    def detect(self, rgb):
        h, w = rgb.shape[:2]
        self.seen.append((w, h))
        return [SimpleNamespace(box_px=(0.25 * w, 0.5 * h, 0.5 * w, 0.75 * h), confidence=0.9)]


def test_boxes_found_on_the_capped_copy_map_back_exactly_to_full_resolution():
    fe = _FakeFrontEnd()
    image = np.zeros((3000, 4000, 3), np.uint8)
    boxes = detect_faces_capped(image, max_side_px=1024, front_end=fe)
    assert fe.seen == [(1024, 768)]
    np.testing.assert_allclose(boxes, [(1000, 1500, 2000, 2250)], rtol=1e-12)


def test_the_candidate_cap_keeps_the_most_confident_faces():
    class Many:
        def detect(self, rgb):
            return [SimpleNamespace(box_px=(10 * i, 0, 10 * i + 5, 5), confidence=i / 20) for i in range(20)]

    boxes = detect_faces_capped(np.zeros((100, 300, 3), np.uint8), max_faces=3, front_end=Many())
    assert [b[0] for b in boxes] == [170, 180, 190]


def test_mediapipe_finds_the_same_face_on_a_large_image_as_on_the_small_one(pd_faces, image_front_end):
    import cv2

    small = pd_faces.astronaut
    big = cv2.resize(small, (2048, 2048), interpolation=cv2.INTER_CUBIC)
    (b_small,) = detect_faces_capped(small, front_end=image_front_end)
    (b_big,) = detect_faces_capped(big, front_end=image_front_end)
    np.testing.assert_allclose(np.array(b_big) / 4, b_small, atol=3.0)  # detected at 1024, mapped back x2


# -- focal_crop -------------------------------------------------------------------------------------


def test_focal_crop_returns_an_array_of_the_requested_size_centred_on_the_face(pd_faces, image_front_end, tmp_path,
                                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = focal_crop(pd_faces.astronaut, zoom=0.5, size=(120, 160), front_end=image_front_end)
    assert result.image.shape == (160, 120, 3) and result.image.dtype == np.uint8
    assert not result.centred and len(result.faces_px) == 1
    x0, y0, x1, y1 = result.box_px
    assert _contains(result.box_px, result.faces_px[0])
    assert abs((x0 + x1) / 2 - result.focal_px[0]) <= 1 and abs((y0 + y1) / 2 - result.focal_px[1]) <= 1
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_an_image_without_a_face_gets_a_centre_crop(image_front_end):
    from skimage import data

    coffee = data.coffee()  # (400, 600, 3), a cup of coffee
    result = focal_crop(coffee, zoom=0.5, size=(100, 100), front_end=image_front_end)
    assert result.centred and result.box_px == (100, 0, 500, 400)


# -- libreface crop ---------------------------------------------------------------------------------


def test_crop_command_writes_one_crop_per_image_of_the_requested_size(face_image, tmp_path, capsys):
    from PIL import Image

    out = tmp_path / "crops"
    assert crop_main([str(face_image), "--zoom", "0.5", "--size", "90x160", "-o", str(out)]) == 0
    written = sorted(out.iterdir())
    assert [p.name for p in written] == [face_image.name]
    assert Image.open(written[0]).size == (90, 160)
    assert "1 face(s)" in capsys.readouterr().err


def test_crop_command_reports_each_bad_input_in_one_line_and_goes_on(face_image, tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("not an image\n")
    missing = tmp_path / "missing.jpg"
    out = tmp_path / "crops"
    assert crop_main([str(bad), str(missing), str(face_image), "-o", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert err[0].startswith(f"libreface: {bad}") and err[1].startswith(f"libreface: {missing}")
    assert [p.name for p in out.iterdir()] == [face_image.name]


def test_crop_command_never_overwrites_its_input(face_image, capsys):
    assert crop_main([str(face_image), "-o", str(face_image.parent), "--quiet"]) == 1
    assert "would overwrite the input" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--size", "512"], "size must be WIDTHxHEIGHT"),
    (["--zoom", "2"], "zoom must be a number in \\(0, 1\\]"),
])
def test_crop_command_rejects_bad_arguments(args, message, face_image, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        crop_main([str(face_image), "-o", str(tmp_path), *args])
    assert exit_.value.code == 2
    assert re.search(message, capsys.readouterr().err)
