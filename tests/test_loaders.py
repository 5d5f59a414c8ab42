"""Dataset loaders read each real on-disk layout; fixtures are tiny generated files written in that layout.

No dataset image is used: pictures are constant grey levels (so a test can tell which file or frame was loaded) or
crops of skimage's astronaut (NASA, public domain), saved with Pillow; videos are encoded with PyAV.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from distill.data import EXPRESSIONS, LOADERS, Record

ANGER, DISGUST, FEAR, HAPPINESS, SADNESS, SURPRISE, NEUTRAL, CONTEMPT = (
    EXPRESSIONS.index(name) for name in ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral",
                                         "contempt"))


def _save(path: Path, rgb: np.ndarray) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, quality=95)
    return path


def _level(value: int, h: int = 8, w: int = 8) -> np.ndarray:
    """(h, w, 3) uint8, every pixel `value`: the grey level says which file or frame was loaded."""
    return np.full((h, w, 3), value, np.uint8)


def _write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _by_key(records: list[Record]) -> dict[str, Record]:
    return {r.key: r for r in records}


# --- fer2013 ---

def _fer2013_csv(root: Path) -> list[np.ndarray]:
    """fer2013.csv with one row per emotion code 0..6 (pixels: a ramp shifted by the row), usages cycling."""
    pixels = [((np.arange(48 * 48) + 30 * code) % 256).astype(np.uint8) for code in range(7)]
    usages = ["Training", "PublicTest", "PrivateTest", "Training", "Training", "PublicTest", "PrivateTest"]
    _write_csv(root / "fer2013.csv", ["emotion", "pixels", "Usage"],
               [[code, " ".join(map(str, px)), usage] for code, (px, usage) in enumerate(zip(pixels, usages))])
    return pixels


def test_fer2013_csv_rows_become_one_hot_records_of_our_classes_in_their_usage_split(tmp_path):
    pixels = _fer2013_csv(tmp_path)
    records = list(LOADERS["fer2013"](tmp_path))
    assert [r.key for r in records] == [f"fer{i:07d}.png" for i in range(7)]
    assert [r.expression for r in records] == [ANGER, DISGUST, FEAR, HAPPINESS, SADNESS, SURPRISE, NEUTRAL]
    assert [r.split for r in records] == ["train", "valid", "test", "train", "train", "valid", "test"]
    assert all(r.expression_votes.sum() == 1 and r.expression_votes.shape == (8,) for r in records)
    image = records[3].load()
    assert image.shape == (48, 48, 3) and image.dtype == np.uint8
    np.testing.assert_array_equal(image[..., 0], pixels[3].reshape(48, 48))
    np.testing.assert_array_equal(image[..., 2], image[..., 0])


def test_a_fer2013_row_with_the_wrong_pixel_count_is_an_error_naming_the_file_and_row(tmp_path):
    _write_csv(tmp_path / "fer2013.csv", ["emotion", "pixels", "Usage"], [[0, "1 2 3", "Training"]])
    with pytest.raises(ValueError, match=r"fer2013\.csv: data row 1 has 3 pixels; expected 2304"):
        list(LOADERS["fer2013"](tmp_path))


def test_fer2013_image_folders_map_emotion_folder_names_and_split_folders(tmp_path):
    names = ["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]
    for i, name in enumerate(names):
        _save(tmp_path / "train" / name / f"Training_{i}.jpg", _level(20 * i, 48, 48)[..., 0])
    _save(tmp_path / "test" / "happy" / "PublicTest_1.png", _level(200, 48, 48)[..., 0])
    _save(tmp_path / "test" / "surprised" / "PrivateTest_2.png", _level(220, 48, 48)[..., 0])
    (tmp_path / "train" / "angry" / "Thumbs.db").write_bytes(b"not an image")

    records = _by_key(LOADERS["fer2013"](tmp_path))
    assert len(records) == 9
    assert {k: r.expression for k, r in records.items() if r.split == "train"} == {
        "train/angry/Training_0.jpg": ANGER, "train/disgust/Training_1.jpg": DISGUST, "train/fear/Training_2.jpg": FEAR,
        "train/happy/Training_3.jpg": HAPPINESS, "train/neutral/Training_4.jpg": NEUTRAL,
        "train/sad/Training_5.jpg": SADNESS, "train/surprise/Training_6.jpg": SURPRISE}
    assert {k: r.expression for k, r in records.items() if r.split == "test"} == {
        "test/happy/PublicTest_1.png": HAPPINESS, "test/surprised/PrivateTest_2.png": SURPRISE}
    image = records["test/happy/PublicTest_1.png"].load()
    assert image.shape == (48, 48, 3) and (image == 200).all()


# --- ferplus (fer2013new.csv + fer2013.csv) ---

def test_ferplus_takes_votes_from_fer2013new_csv_and_pixels_from_the_matching_fer2013_row(tmp_path):
    pixels = _fer2013_csv(tmp_path)
    header = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
              "contempt", "unknown", "NF"]
    _write_csv(tmp_path / "fer2013new.csv", header, [
        ["Training", "fer0000000.png", 0, 0, 0, 0, 8, 1, 1, 0, 0, 0],
        ["PublicTest", "fer0000001.png", 1, 0, 0, 0, 0, 0, 0, 9, 0, 0],
        ["PrivateTest", "", 0, 0, 0, 0, 0, 0, 0, 0, 0, 10],           # FER+ found no face: no name
        ["Training", "fer0000003.png", 0, 2, 0, 0, 0, 0, 0, 0, 8, 0],  # majority "unknown": dropped
        ["Training", "fer0000004.png", 1, 0, 0, 6, 0, 0, 0, 0, 0, 3],
    ])
    records = list(LOADERS["ferplus"](tmp_path))
    assert [(r.key, r.split, r.expression) for r in records] == [
        ("fer0000000.png", "train", ANGER), ("fer0000001.png", "valid", CONTEMPT), ("fer0000004.png", "train", SADNESS)]
    np.testing.assert_array_equal(records[0].expression_votes, [0, 0, 0, 0, 8, 1, 1, 0])
    np.testing.assert_array_equal(records[2].load()[..., 1], pixels[4].reshape(48, 48))


# --- affectnet ---

AFFECTNET_HEADER = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
                    "expression", "valence", "arousal"]


def _affectnet_row(name: str, code: int, box: tuple[int, int, int, int] = (30, 20, 40, 50)) -> list[object]:
    landmarks = ";".join(f"{v:.2f}" for v in np.linspace(30, 70, 136))
    return [name, *box, landmarks, code, 0.25, -0.5]


def test_affectnet_csv_codes_map_to_our_classes_and_none_uncertain_no_face_are_dropped(tmp_path):
    from skimage import data

    face = np.ascontiguousarray(data.astronaut()[20:120, 150:270])  # (100, 120, 3)
    for code in range(11):
        _save(tmp_path / "Manually_Annotated_Images" / "101" / f"t{code}.jpg", face)
    _save(tmp_path / "Manually_Annotated_Images" / "202" / "v.png", face)
    lists = tmp_path / "Manually_Annotated_file_lists"
    _write_csv(lists / "training.csv", AFFECTNET_HEADER, [_affectnet_row(f"101/t{c}.jpg", c) for c in range(11)]
               + [_affectnet_row("101/not_in_this_copy.jpg", 1)])
    _write_csv(lists / "validation.csv", AFFECTNET_HEADER, [_affectnet_row("202/v.png", 7)])

    records = list(LOADERS["affectnet"](tmp_path))
    train = [r for r in records if r.split == "train"]
    assert [r.expression for r in train] == [NEUTRAL, HAPPINESS, SADNESS, SURPRISE, FEAR, DISGUST, ANGER, CONTEMPT]
    assert [r.key for r in train] == [f"101/t{c}.jpg" for c in range(8)]
    assert [(r.key, r.split, r.expression) for r in records if r.split != "train"] == [("202/v.png", "test", CONTEMPT)]


@pytest.mark.parametrize("box, crop_shape", [
    ((30, 20, 40, 50), (70, 56, 3)),   # x 22..78, y 10..80: 20 % of the box on each side
    ((0, 0, 40, 50), (60, 48, 3)),     # clamped at the top-left corner: x 0..48, y 0..60
    ((90, 60, 30, 40), (48, 36, 3)),   # clamped at the bottom-right corner: x 84..120, y 52..100
])
def test_affectnet_load_crops_the_face_box_with_a_20_percent_margin_clamped_to_the_image(tmp_path, box, crop_shape):
    from skimage import data

    image = np.ascontiguousarray(data.astronaut()[20:120, 150:270])  # (100, 120, 3)
    _save(tmp_path / "Manually_Annotated_Images" / "7" / "a.png", image)
    _write_csv(tmp_path / "training.csv", AFFECTNET_HEADER, [_affectnet_row("7/a.png", 1, box)])

    (record,) = LOADERS["affectnet"](tmp_path)
    crop = record.load()
    assert crop.shape == crop_shape and crop.dtype == np.uint8
    x0, y0 = max(0, round(box[0] - 0.2 * box[2])), max(0, round(box[1] - 0.2 * box[3]))
    np.testing.assert_array_equal(crop, image[y0:y0 + crop_shape[0], x0:x0 + crop_shape[1]])


def test_affectnet_8_folders_read_string_and_int_codes_and_validation_becomes_test(tmp_path):
    for folder, codes in {"train_set": ["0", 6, "3", "8"], "val_set": [1]}.items():  # 8 (none) is dropped
        (tmp_path / folder / "annotations").mkdir(parents=True)
        for n, code in enumerate(codes):
            _save(tmp_path / folder / "images" / f"{n}.jpg", _level(10 * n, 16, 16))
            np.save(tmp_path / folder / "annotations" / f"{n}_exp.npy", np.array(code))  # '<U1' or int64, 0-d
            np.save(tmp_path / folder / "annotations" / f"{n}_val.npy", np.array("0.1"))

    records = list(LOADERS["affectnet"](tmp_path))
    assert [(r.key, r.split, r.expression) for r in records] == [
        ("train_set/0.jpg", "train", NEUTRAL), ("train_set/1.jpg", "train", ANGER),
        ("train_set/2.jpg", "train", SURPRISE), ("val_set/0.jpg", "test", HAPPINESS)]
    assert records[1].load().shape == (16, 16, 3)


# --- disfa ---

def _disfa_labels(root: Path, subject: str, intensities: dict[int, list[int]]) -> None:
    """ActionUnit_Labels/<subject>/<subject>_au<n>.txt with lines 'frame,intensity', frames from 1."""
    folder = root / "ActionUnit_Labels" / subject
    folder.mkdir(parents=True)
    for au, values in intensities.items():
        (folder / f"{subject}_au{au}.txt").write_text("".join(f"{i},{v}\n" for i, v in enumerate(values, 1)))


def test_disfa_frame_folders_give_au_intensity_and_occurrence_at_intensity_2_or_more(tmp_path):
    _disfa_labels(tmp_path, "SN001", {1: [0, 1, 2, 5], 12: [3, 0, 0, 1]})
    _disfa_labels(tmp_path, "SN002", {1: [0, 0, 4], 12: [2, 2, 2]})
    _disfa_labels(tmp_path, "SN003", {25: [1, 2]})
    for n in (1, 2, 4):  # plain 1-based names; frame 3 was never extracted
        _save(tmp_path / "Frames" / "SN001" / f"{n}.jpg", _level(40 * n))
    for n in (1, 2, 3):  # zero-padded 1-based names
        _save(tmp_path / "Frames" / "SN002" / f"{n:05d}.jpg", _level(40 * n))
    for n in (0, 1):  # 0-based names: file 0 is labelled frame 1
        _save(tmp_path / "Frames" / "SN003" / f"frame_{n:04d}.png", _level(40 * (n + 1)))

    records = _by_key(LOADERS["disfa"](tmp_path))
    assert list(records) == ["SN001_00001", "SN001_00002", "SN001_00004", "SN002_00001", "SN002_00002", "SN002_00003",
                             "SN003_00001", "SN003_00002"]
    assert {r.split for r in records.values()} == {"train"}
    assert [r.subject for r in records.values()] == ["SN001"] * 3 + ["SN002"] * 3 + ["SN003"] * 2
    assert records["SN001_00002"].au_intensity == {1: 1, 12: 0}
    assert records["SN001_00002"].au_occurrence == {1: 0, 12: 0}   # intensity 1 is a trace, not an occurrence
    assert records["SN001_00004"].au_intensity == {1: 5, 12: 1}
    assert records["SN001_00004"].au_occurrence == {1: 1, 12: 0}
    assert records["SN002_00001"].au_occurrence == {1: 0, 12: 1}   # intensity 2 is the threshold
    assert records["SN003_00002"].au_intensity == {25: 2}
    for key, level in [("SN001_00004", 160), ("SN002_00003", 120), ("SN003_00001", 40), ("SN003_00002", 80)]:
        assert abs(int(records[key].load().mean()) - level) <= 2, key


def _write_left_video(path: Path, n_frames: int) -> None:
    """mpeg4 AVI whose frame i (0-based) is the constant grey 10 + 40 * i."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=20)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.max_b_frames = 0
        for i in range(n_frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(_level(10 + 40 * i, 48, 64), format="rgb24")))
        container.mux(stream.encode())


def test_disfa_video_frames_are_decoded_lazily_in_label_order_and_match_their_frame_numbers(tmp_path):
    _disfa_labels(tmp_path, "SN001", {4: [0, 2, 3, 1, 5]})  # 5 labelled frames, the video has 4
    _write_left_video(tmp_path / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi", n_frames=4)

    records = list(LOADERS["disfa"](tmp_path))
    assert [r.key for r in records] == ["SN001_00001", "SN001_00002", "SN001_00003", "SN001_00004"]  # frame 5 dropped
    assert [r.au_occurrence[4] for r in records] == [0, 1, 1, 0]
    levels = [records[i].load().mean() for i in (0, 1, 1, 3, 2)]  # forward, same again, forward, then back
    np.testing.assert_allclose(levels, [10, 50, 50, 130, 90], atol=3)
    assert records[0].load().shape == (48, 64, 3)


# --- bp4d ---

@pytest.mark.parametrize("images_dir", ["2D+3D", "Sequences", ""])
def test_bp4d_occurrence_keeps_0_and_1_and_skips_not_coded_9_and_frames_without_images(tmp_path, images_dir):
    occ = tmp_path / "AUCoding" / "AU_OCC"
    _write_csv(occ / "F001_T1.csv", ["Frame", "1", "2", "4", "12"], [
        [10, 0, 1, 9, 1],
        [11, 9, 9, 9, 9],   # nothing coded: skipped
        [12, 1, 0, 0, 0],
        [13, 1, 1, 1, 1],   # no image: skipped
    ])
    _write_csv(occ / "M002_T8.csv", ["0", "AU1", "AU12"], [[5, 1, 9]])
    for frame in (10, 11, 12):
        _save(tmp_path / images_dir / "F001" / "T1" / f"{frame:04d}.jpg", _level(10 * frame))
    _save(tmp_path / images_dir / "M002" / "T8" / "5.jpg", _level(50))

    records = _by_key(LOADERS["bp4d"](tmp_path))
    assert list(records) == ["F001_T1_10", "F001_T1_12", "M002_T8_5"]
    assert records["F001_T1_10"].au_occurrence == {1: 0, 2: 1, 12: 1}
    assert records["F001_T1_12"].au_occurrence == {1: 1, 2: 0, 4: 0, 12: 0}
    assert records["M002_T8_5"].au_occurrence == {1: 1}
    assert [r.subject for r in records.values()] == ["F001", "F001", "M002"]
    assert {r.split for r in records.values()} == {"train"}
    assert abs(int(records["F001_T1_12"].load().mean()) - 120) <= 2


# --- errors ---

def _stray_file(root: Path) -> None:
    (root / "notes.txt").write_text("not a dataset\n")


def _affectnet_lists_only(root: Path) -> None:
    _write_csv(root / "training.csv", AFFECTNET_HEADER, [_affectnet_row("1/a.jpg", 1)])


def _disfa_labels_only(root: Path) -> None:
    _disfa_labels(root, "SN001", {1: [0]})


def _bp4d_codes_only(root: Path) -> None:
    _write_csv(root / "AUCoding" / "AU_OCC" / "F001_T1.csv", ["Frame", "1"], [[1, 1]])


@pytest.mark.parametrize("name, make, message", [
    ("fer2013", _stray_file, "neither fer2013.csv nor train/<emotion>/"),
    ("ferplus", _stray_file, "neither FER2013Train/label.csv nor fer2013new.csv"),
    ("affectnet", _stray_file, "no AffectNet layout found; expected Manually_Annotated_file_lists/training.csv"),
    ("affectnet", _affectnet_lists_only, "Manually_Annotated_Images: not found; expected the images"),
    ("disfa", _stray_file, "ActionUnit_Labels: not found; expected DISFA's"),
    ("disfa", _disfa_labels_only, "neither Frames/ nor Videos_LeftCamera/ found"),
    ("bp4d", _stray_file, "AUCoding/AU_OCC/ not found; expected"),
    ("bp4d", _bp4d_codes_only, "no image folder for F001 found; expected 2D\\+3D/F001/T1"),
])
def test_a_folder_without_the_layout_is_a_one_line_file_not_found_error_naming_it(tmp_path, name, make, message):
    make(tmp_path)
    with pytest.raises(FileNotFoundError, match=message) as err:
        list(LOADERS[name](tmp_path))
    assert str(tmp_path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("name", ["fer2013", "affectnet", "disfa", "bp4d"])
def test_new_loaders_fail_when_called_not_when_first_iterated(tmp_path, name):
    loader: Callable = LOADERS[name]
    with pytest.raises(FileNotFoundError):
        loader(tmp_path / "missing")
