"""libreface.sources: frames come out upright, RGB uint8, with PTS timestamps; bad inputs fail in one line."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from libreface import imaging
from libreface.errors import InputError
from libreface.sources import (
    Frame,
    ImageSource,
    VideoSource,
    WebcamSource,
    iter_inputs,
    open_source,
)

SHARED_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "videos"


def decode_all(path_or_source):
    source = open_source(path_or_source) if not hasattr(path_or_source, "info") else path_or_source
    with source:
        return source, list(source)


def assert_rgb_frame(frame: Frame, width: int, height: int) -> None:
    assert isinstance(frame, Frame)
    assert frame.rgb.shape == (height, width, 3)
    assert frame.rgb.dtype == np.uint8
    assert frame.rgb.flags.c_contiguous


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


# --- videos ----------------------------------------------------------------------------------------------------------


def test_a_constant_rate_video_gives_every_frame_in_order_with_pts_timestamps(media):
    source, frames = decode_all(media.cfr)
    assert isinstance(source, VideoSource)
    info = source.info
    assert (info.kind, info.width, info.height, info.fps, info.rotation_deg) == ("video", 64, 48, 10.0, 0)
    assert info.codec == "mpeg4" and info.n_frames_hint == 20
    assert [f.index for f in frames] == list(range(20))
    np.testing.assert_allclose([f.timestamp_s for f in frames], np.arange(20) / 10, atol=1e-9)
    for frame in frames:
        assert_rgb_frame(frame, 64, 48)
    assert source.error is None
    assert mean_abs_diff(frames[5].rgb, media.marker_frame(5)) < 6  # RGB, not BGR: the red square is red
    assert frames[0].rgb[4:12, 4:12, 0].mean() > 200 and frames[0].rgb[4:12, 4:12, 2].mean() < 60


def test_a_variable_frame_rate_video_keeps_the_timestamps_it_was_written_with(media):
    source, frames = decode_all(media.vfr)
    assert len(frames) == len(media.vfr_pts_s)
    np.testing.assert_allclose([f.timestamp_s for f in frames], media.vfr_pts_s, atol=1e-6)
    assert source.error is None


def test_frames_without_pts_are_spaced_by_the_frame_rate(media):
    source, frames = decode_all(media.raw_h264)
    assert len(frames) == 6 and source.error is None
    steps = np.diff([f.timestamp_s for f in frames])
    assert frames[0].timestamp_s == 0.0
    assert np.all(steps > 0) and np.allclose(steps, steps[0])


@pytest.mark.parametrize("ccw, hflip, vflip, cw_deg, transform", [
    (-90, False, False, 90, lambda a: np.rot90(a, k=-1)),  # portrait phone video: "rotate 90 clockwise to display"
    (90, False, False, 270, lambda a: np.rot90(a, k=1)),
    (180, False, False, 180, lambda a: np.rot90(a, k=2)),
    (0, True, False, 0, lambda a: a[:, ::-1]),
    (0, False, True, 180, lambda a: a[::-1]),
    (90, True, False, 270, lambda a: np.rot90(a, k=1)[:, ::-1]),
], ids=["phone_portrait", "ccw90", "180", "hflip", "vflip", "ccw90_hflip"])
def test_the_display_matrix_is_applied_to_every_frame(media, ccw, hflip, vflip, cw_deg, transform):
    source, frames = decode_all(media.rotated[ccw, hflip, vflip])
    expected = transform(media.marker_frame(0))
    assert (source.info.width, source.info.height) == (expected.shape[1], expected.shape[0])
    assert source.info.rotation_deg == cw_deg
    for frame in frames:
        assert_rgb_frame(frame, source.info.width, source.info.height)
    assert mean_abs_diff(frames[0].rgb, expected) < 6


def test_a_portrait_phone_video_puts_the_top_left_corner_top_right(media):
    source, frames = decode_all(media.rotated[-90, False, False])
    assert (source.info.width, source.info.height) == (48, 64)  # width and height swap
    red = frames[0].rgb[..., 0].astype(int) - frames[0].rgb[..., 2]
    ys, xs = np.nonzero(red > 150)
    assert ys.max() < 16 and xs.min() >= 48 - 16  # top-right corner


def test_a_truncated_video_yields_the_frames_before_the_cut_and_sets_error(media, caplog):
    with caplog.at_level(logging.WARNING, logger="libreface.sources"):
        source, frames = decode_all(media.truncated)  # no exception
    assert 3 <= len(frames) < media.n_full_frames
    assert [f.index for f in frames] == list(range(len(frames)))
    assert source.error is not None and "\n" not in source.error
    assert f"{media.truncated}: decoding stopped at frame {len(frames)}" in source.error
    assert any(f"decoding stopped at frame {len(frames)}" in r.getMessage() for r in caplog.records)


def test_a_video_cut_between_two_packets_is_caught_by_its_index(media):
    source, frames = decode_all(media.cut_at_packet)
    assert len(frames) <= media.n_cut_at_packet
    assert source.error is not None and "cut short" in source.error


def test_a_corrupt_packet_in_the_middle_is_skipped_and_decoding_goes_on(media):
    source, frames = decode_all(media.corrupt_middle)
    assert len(frames) == media.n_full_frames - 1  # only the damaged frame is missing
    assert [f.index for f in frames] == list(range(len(frames)))
    assert source.error is not None and "\n" not in source.error
    assert "skipped a corrupt packet near frame 8" in source.error


def test_a_source_is_single_pass_and_closes_with_its_context(media):
    with open_source(media.cfr) as source:
        first = next(iter(source))
        assert first.index == 0
        with pytest.raises(RuntimeError, match="only once"):
            iter(source)
    assert source._closed


def test_closing_from_another_thread_ends_the_iteration(media):
    source = open_source(media.cfr)
    seen = []
    for frame in source:
        seen.append(frame.index)
        if frame.index == 2:
            closer = threading.Thread(target=source.close)
            closer.start()
            closer.join()
    assert seen == [0, 1, 2]


def test_stopping_early_closes_the_file(media):
    source = open_source(media.cfr)
    for frame in source:
        if frame.index == 2:
            break
    source.close()
    source.close()  # idempotent


# --- images ----------------------------------------------------------------------------------------------------------


def test_a_jpeg_with_exif_orientation_comes_out_upright(media):
    source, frames = decode_all(media.jpeg_exif6)
    assert isinstance(source, ImageSource)
    assert len(frames) == 1 and frames[0].index == 0 and frames[0].timestamp_s == 0.0
    assert_rgb_frame(frames[0], 384, 512)
    assert (source.info.kind, source.info.width, source.info.height) == ("image", 384, 512)
    assert source.info.rotation_deg == 90 and source.info.fps is None and source.info.codec == "jpeg"
    assert mean_abs_diff(frames[0].rgb, media.astronaut) < 4


def test_a_grey_png_becomes_three_equal_channels(media):
    _, (frame,) = decode_all(media.png_grey)
    assert_rgb_frame(frame, 384, 512)
    for c in range(3):
        np.testing.assert_array_equal(frame.rgb[..., c], media.grey)


def test_an_rgba_png_is_composited_on_black(media):
    _, (frame,) = decode_all(media.png_rgba)
    assert_rgb_frame(frame, 384, 512)
    expected = (media.astronaut.astype(np.float64) * media.alpha[..., None] / 255).round()
    assert np.abs(frame.rgb - expected).max() <= 1
    assert frame.rgb[:, 0].max() == 0  # fully transparent column


@pytest.mark.parametrize("name", ["png_palette", "jpeg_cmyk"])
def test_palette_and_cmyk_images_become_rgb(media, name):
    _, (frame,) = decode_all(getattr(media, name))
    assert_rgb_frame(frame, 384, 512)
    assert mean_abs_diff(frame.rgb, media.astronaut) < 12


@pytest.mark.parametrize("name", ["png_grey16", "tif_grey16", "tif_grey16_be", "tif_int32", "png_rgb16", "tif_rgb16"])
def test_16_bit_images_are_scaled_by_their_full_range(media, name):
    path = getattr(media, name)
    if path is None:
        pytest.skip("tifffile is not installed")
    _, (frame,) = decode_all(path)
    assert_rgb_frame(frame, 64, 48)
    values16 = media.rgb16 if "rgb" in name else np.dstack([media.grey16] * 3)
    np.testing.assert_array_equal(frame.rgb, (values16 >> 8).astype(np.uint8))


# --- errors ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, message", [
    ("missing", "not found"),
    ("folder_mp4", "is a directory"),
    ("empty", "empty file"),
    ("text_mp4", "not a video or image"),
    ("text_png", "cannot decode image"),
    ("audio_wav", "no video stream"),
    ("audio_m4a", "no video stream"),
    ("unknown_codec", "unsupported codec"),
    ("jpeg_truncated", "cannot decode image"),
    ("cut_before_first_frame", "no frame could be decoded"),
])
def test_bad_input_fails_at_open_in_one_line_naming_the_file(media, name, message):
    path = getattr(media, name)
    with pytest.raises(InputError, match=message) as err:
        open_source(path)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and "\n" not in text and "; " in text


@pytest.mark.parametrize("index", [99, "99"])
def test_a_webcam_that_cannot_be_opened_names_its_index(index):
    with pytest.raises(InputError, match="webcam 99: cannot be opened") as err:
        open_source(index)
    assert "\n" not in str(err.value)


def test_webcam_source_raises_input_error_for_a_missing_camera():
    with pytest.raises(InputError, match="webcam 99"):
        WebcamSource(99)


class FakeCapture:
    """Stands in for cv2.VideoCapture: three blue 8x6 BGR frames, then the camera is unplugged."""

    def __init__(self, index):
        self.frames, self.released = 3, False

    def isOpened(self):
        return True

    def set(self, prop, value):
        return True

    def get(self, prop):
        import cv2

        return {cv2.CAP_PROP_FRAME_WIDTH: 8, cv2.CAP_PROP_FRAME_HEIGHT: 6, cv2.CAP_PROP_FPS: 30.0}.get(prop, 0.0)

    def read(self):
        if self.frames == 0:
            return False, None
        self.frames -= 1
        bgr = np.zeros((6, 8, 3), np.uint8)
        bgr[..., 0] = 255
        return True, bgr

    def release(self):
        self.released = True


def test_a_webcam_gives_rgb_frames_with_wall_clock_timestamps_until_it_stops(monkeypatch, caplog):
    cv2 = pytest.importorskip("cv2")
    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    source, frames = decode_all(0)
    assert isinstance(source, WebcamSource)
    assert (source.info.kind, source.info.path, source.info.width, source.info.height, source.info.fps) == (
        "webcam", "0", 8, 6, 30.0)
    assert [f.index for f in frames] == [0, 1, 2] and frames[0].timestamp_s == 0.0
    assert np.all(np.diff([f.timestamp_s for f in frames]) >= 0)
    assert_rgb_frame(frames[0], 8, 6)
    assert frames[0].rgb[0, 0].tolist() == [0, 0, 255]  # BGR blue -> RGB blue
    assert source.error == "webcam 0: stopped delivering frames at frame 3"
    assert source._capture._capture.released


def test_without_opencv_a_webcam_is_read_with_ffmpegs_device_input(monkeypatch, media):
    """The desktop bundle has no OpenCV: cameras go through PyAV (V4L2 on Linux). A real video stands in for
    the device, so the decoding path is the real one."""
    import av

    opened = []
    real_open = av.open

    def device_open(device, format=None, options=None):
        opened.append((device, format, options))
        return real_open(str(media.cfr))

    monkeypatch.setitem(sys.modules, "cv2", None)  # `import cv2` raises ImportError
    monkeypatch.setattr(imaging, "_cv2", imaging._UNSET)  # ...and libreface asks again
    monkeypatch.setattr(av, "open", device_open)
    monkeypatch.setattr(sys, "platform", "linux")
    source, frames = decode_all(WebcamSource(2, width=640, height=480))
    assert opened == [("/dev/video2", "v4l2", {"video_size": "640x480"})]
    w, h = media.video_size
    assert (source.info.kind, source.info.path, source.info.width, source.info.height, source.info.fps) == (
        "webcam", "2", w, h, 10.0)
    assert [f.index for f in frames] == list(range(20)) and frames[0].timestamp_s == 0.0
    assert_rgb_frame(frames[5], w, h)
    assert mean_abs_diff(frames[5].rgb, media.marker_frame(5)) < 8
    assert source.error == "webcam 2: stopped delivering frames at frame 20"


def test_without_opencv_a_missing_camera_is_one_line_naming_the_device(monkeypatch):
    monkeypatch.setitem(sys.modules, "cv2", None)
    monkeypatch.setattr(imaging, "_cv2", imaging._UNSET)
    monkeypatch.setattr(sys, "platform", "linux")
    with pytest.raises(InputError, match=r"webcam 99: cannot be opened \(.*/dev/video99.*\)") as err:
        WebcamSource(99)
    assert "\n" not in str(err.value)


def test_video_and_image_sources_refuse_each_others_files(media):
    with pytest.raises(InputError, match="cannot decode image"):
        ImageSource(media.cfr)
    with pytest.raises(InputError, match="not a video or image"):
        VideoSource(media.text_mp4)


# --- expanding inputs ------------------------------------------------------------------------------------------------


@pytest.fixture
def folder(tmp_path):
    for name in ["b.mp4", "a.JPG", "c.mov", "notes.txt", "readme.md", ".hidden.mp4", "sub/d.mkv", "sub/e.png"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def test_a_folder_expands_to_its_sorted_media_files(folder):
    assert iter_inputs([folder]) == [folder / "a.JPG", folder / "b.mp4", folder / "c.mov"]


def test_a_folder_expands_recursively_on_request(folder):
    got = iter_inputs([folder], recursive=True)
    assert got == sorted([folder / "a.JPG", folder / "b.mp4", folder / "c.mov", folder / "sub/d.mkv",
                          folder / "sub/e.png"])


def test_a_list_file_names_inputs_relative_to_its_folder(folder, tmp_path_factory):
    other = tmp_path_factory.mktemp("elsewhere") / "x.avi"
    other.write_bytes(b"x")
    (folder / "list.txt").write_text(f"# inputs for the study\n\nb.mp4\n  sub  \n{other}\n")
    got = iter_inputs([folder / "list.txt", folder / "b.mp4"])  # duplicates are dropped, order is kept
    assert got == [folder / "b.mp4", folder / "sub/d.mkv", folder / "sub/e.png", other]


def test_files_and_webcam_indices_pass_through(folder):
    assert iter_inputs([folder / "readme.md", "0"]) == [folder / "readme.md", Path("0")]


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "nothing_here.mp4", "not found"),
    (lambda d: d, "no video or image files found"),
])
def test_bad_inputs_to_expand_fail_in_one_line(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(InputError, match=message) as err:
        iter_inputs([path])
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_a_missing_entry_in_a_list_names_the_list_and_line(tmp_path):
    (tmp_path / "list.txt").write_text("# header\ngone.mp4\n")
    with pytest.raises(InputError, match="not found") as err:
        iter_inputs([tmp_path / "list.txt"])
    assert str(tmp_path / "gone.mp4") in str(err.value) and "line 2" in str(err.value)


def test_importing_libreface_does_not_import_av_pil_or_cv2():
    code = "import sys, libreface.sources; print(sorted(m for m in ('av', 'PIL', 'cv2') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


# --- ../shared/data ---------------------------------------------------------------------------------------------------


def shared_video(name: str) -> Path:
    if not SHARED_VIDEOS.is_dir():
        pytest.skip(f"../shared/data absent: {SHARED_VIDEOS} not found")
    return SHARED_VIDEOS / name


@pytest.mark.data
def test_no_face_mp4_decodes_95_frames_though_its_header_says_98():
    source, frames = decode_all(shared_video("no_face.mp4"))
    assert source.info.n_frames_hint == 98 and len(frames) == 95
    assert (source.info.width, source.info.height, source.info.codec) == (960, 540, "h264")
    assert np.all(np.diff([f.timestamp_s for f in frames]) > 0)
    assert source.error is None


@pytest.mark.data
def test_face_noface_mov_decodes_169_hevc_frames():
    source, frames = decode_all(shared_video("face_noface.mov"))
    assert source.info.codec == "hevc" and len(frames) == 169
    assert_rgb_frame(frames[-1], source.info.width, source.info.height)
    assert np.all(np.diff([f.timestamp_s for f in frames]) > 0)
    assert source.error is None
