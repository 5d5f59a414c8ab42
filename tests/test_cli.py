"""The real `libreface` command in a subprocess: outputs, formats, and every bad input in one line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from libreface.models.registry import DEFAULT_MODEL

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.mp4"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm", ".pgm"}


def run(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, "HOME": str(cwd), "TMPDIR": str(cwd), **(env or {})}
    return subprocess.run([sys.executable, "-m", "libreface", *map(str, args)], cwd=cwd, env=e,
                          capture_output=True, text=True, timeout=300)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("libreface:")]


def test_analyzing_the_example_writes_a_csv_and_nothing_else(tmp_path):
    before = set(REPO.rglob("*"))
    r = run(EXAMPLE, "-o", tmp_path / "out.csv", "--threads", "2", "--features", tmp_path / "f.parquet",
            "--landmarks", "--blendshapes", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path / "out.csv")
    assert len(df) == 150 and {"lm_x_477", "bs_jawOpen", "AU12_intensity"} <= set(df.columns)
    written = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["f.parquet", "out.csv"]
    assert not [p for p in set(REPO.rglob("*")) - before if p.suffix.lower() in IMAGE_SUFFIXES]


def test_the_openface_format_uses_openface_names_and_conventions(tmp_path):
    r = run(EXAMPLE, "-o", tmp_path / "of.csv", "--format", "openface", "--every", "10", "--threads", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    header = (tmp_path / "of.csv").read_text().splitlines()[0]
    assert header.startswith("frame, face_id, timestamp, confidence, success, gaze_0_x, gaze_0_y, gaze_0_z")
    assert ", pose_Tx, pose_Ty, pose_Tz, pose_Rx, pose_Ry, pose_Rz" in header
    df = pd.read_csv(tmp_path / "of.csv", skipinitialspace=True)
    assert df["frame"].iloc[0] == 1 and "AU12_r" in df and "AU12_c" in df
    assert df.columns.get_loc("AU01_r") < df.columns.get_loc("AU01_c")
    assert df["pose_Rx"].abs().max() < 1.6  # radians


def test_several_inputs_go_to_one_folder_and_a_bad_one_does_not_stop_the_rest(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_text("this is not a video")
    out = tmp_path / "out"
    r = run(EXAMPLE, bad, "-o", out, "--every", "25", "--threads", "2", cwd=tmp_path)
    assert r.returncode == 1
    assert (out / "astronaut.csv").exists() and not (out / "broken.csv").exists()
    assert not list(out.glob("*.partial"))
    errors = _errors(r.stderr)
    assert len(errors) == 1 and "broken.mp4" in errors[0]


def test_equal_file_names_in_different_folders_never_overwrite_each_other(tmp_path):
    for rel in ("p01/session1.mp4", "p02/Session1.mp4", "p02/other.mp4"):
        (tmp_path / "study" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLE, tmp_path / "study" / rel)
    r = run(tmp_path / "study" / "p01" / "session1.mp4", tmp_path / "study" / "p02" / "Session1.mp4",
            tmp_path / "study" / "p02" / "other.mp4", "study/p02/../p02/other.mp4",  # the last one again: analysed once
            "-o", tmp_path / "out", "--every", "25", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["other.csv", "p01__session1.csv", "p02__Session1.csv"]
    # a folder of folders: one line saying how to search the subfolders, then --recursive takes them
    r = run(tmp_path / "study", "-o", tmp_path / "deep", "--every", "25", cwd=tmp_path)
    assert r.returncode == 1 and "--recursive" in _errors(r.stderr)[0] and not (tmp_path / "deep").exists()
    r = run(tmp_path / "study", "--recursive", "-o", tmp_path / "one.csv", "--every", "25", cwd=tmp_path)
    assert r.returncode == 2 and "give a folder" in _errors(r.stderr)[0] and not (tmp_path / "one.csv").exists()
    r = run(tmp_path / "study", "--recursive", "-o", tmp_path / "deep", "--every", "25", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["other.csv", "p01__session1.csv", "p02__Session1.csv"]


def test_parallel_jobs_give_the_same_rows_as_one_process(tmp_path):
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    shutil.copy(EXAMPLE, a)
    shutil.copy(EXAMPLE, b)
    r = run(a, b, "-o", tmp_path / "out", "--every", "10", "--jobs", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    da, db = pd.read_csv(tmp_path / "out" / "a.csv"), pd.read_csv(tmp_path / "out" / "b.csv")
    assert len(da) == len(db) == 15
    pd.testing.assert_frame_equal(da, db)


def _truncated(tmp_path: Path) -> Path:
    data = EXAMPLE.read_bytes()
    p = tmp_path / "truncated.mp4"
    p.write_bytes(data[: len(data) * 6 // 10])
    return p


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _folder(path: Path) -> Path:
    path.mkdir()
    (path / "readme.txt").write_text("no media here")
    return path


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.mp4", "not found"),
    (lambda d: _file(d / "empty.mp4", b""), "empty file"),
    (lambda d: _file(d / "notes.mp4", b"hello, this is text"), "not a video or image"),
    (lambda d: _folder(d / "nomedia"), "no video or image files"),
])
def test_bad_inputs_fail_in_one_line_naming_the_file(tmp_path, make, message):
    path = make(tmp_path)
    r = run(path, "-o", tmp_path / "o.csv", cwd=tmp_path)
    assert r.returncode == 1
    errors = _errors(r.stderr)
    assert len(errors) == 1 and path.name in errors[0] and message in errors[0], r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "o.csv").exists()


def test_a_truncated_video_keeps_what_decodes_and_warns_where_it_broke(tmp_path):
    path = _truncated(tmp_path)
    r = run(path, "-o", tmp_path / "t.csv", "--threads", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path / "t.csv")
    assert 30 < len(df) < 150
    assert df["frame"].tolist() == list(range(len(df)))
    assert "truncated.mp4" in r.stderr and "warning" in r.stderr


def test_an_unwritable_output_path_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    r = run(EXAMPLE, "-o", tmp_path / "file" / "out.csv", cwd=tmp_path)
    assert r.returncode == 1
    errors = _errors(r.stderr)
    assert len(errors) == 1 and "out.csv" in errors[0] and "Traceback" not in r.stderr


def test_tampered_weights_stop_the_run_with_one_line(tmp_path):
    folder = tmp_path / "weights"
    shutil.copytree(REPO / "weights", folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    default = next(m for m in manifest["models"] if m["name"] == DEFAULT_MODEL)
    target = folder / default["file"]
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    r = run(EXAMPLE, "-o", tmp_path / "o.csv", cwd=tmp_path, env={"LIBREFACE_WEIGHTS": str(folder)})
    assert r.returncode == 1
    errors = _errors(r.stderr)
    assert len(errors) == 1 and "does not match the manifest" in errors[0] and default["file"] in errors[0]
    assert not (tmp_path / "o.csv").exists()


def test_bad_arguments_exit_2():
    r = run(EXAMPLE, EXAMPLE, "-o", "x.csv", cwd=REPO / "tests")
    assert r.returncode == 2 and "must be a folder" in r.stderr


def test_version_names_every_model_with_its_hash(tmp_path):
    r = run("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("libreface ")
    assert DEFAULT_MODEL in r.stdout and "sha256 64184e22" in r.stdout
    assert [line.split()[0] for line in r.stdout.splitlines() if line.endswith("(default)")] == [DEFAULT_MODEL]


def test_info_lists_models_hashes_and_threads(tmp_path):
    r = run("info", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "face_landmarker" in r.stdout and DEFAULT_MODEL in r.stdout and "threads:" in r.stdout
    assert "FAILED" not in r.stdout


def test_identity_gives_the_one_person_id_0_and_a_summary(tmp_path):
    pytest.importorskip("dlib", reason="the identity extra (dlib-bin) is not installed")
    r = run(EXAMPLE, "-o", tmp_path / "id.csv", "--identity", "--every", "3", "--threads", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(tmp_path / "id.csv")
    faces = df[df["success"] == 1]
    assert len(df) == 50 and (faces["person_id"] == 0).all() and df.loc[df["success"] == 0, "person_id"].isna().all()
    summary = json.loads((tmp_path / "id.summary.json").read_text())
    assert summary["main_person"] == 0 and summary["persons"][0]["frames"] == len(faces)


def test_subject_without_identity_is_a_usage_error(tmp_path):
    r = run(EXAMPLE, "-o", tmp_path / "x.csv", "--subject", "main", cwd=tmp_path)
    assert r.returncode == 2 and "--subject needs --identity" in r.stderr


@pytest.mark.data
def test_subject_main_keeps_one_person_and_a_row_for_every_frame(tmp_path, shared_videos):
    pytest.importorskip("dlib", reason="the identity extra (dlib-bin) is not installed")
    video = shared_videos / "multi_face.avi"
    r = run(video, "-o", tmp_path / "all.csv", "--identity", "--max-faces", "3", "--every", "6", "--threads", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = run(video, "-o", tmp_path / "main.csv", "--identity", "--subject", "main", "--max-faces", "3", "--every", "6",
            "--threads", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    every, main = pd.read_csv(tmp_path / "all.csv"), pd.read_csv(tmp_path / "main.csv")
    assert every["person_id"].nunique() >= 3
    assert main["frame"].tolist() == sorted(every["frame"].unique().tolist())
    assert set(main["person_id"].dropna()) == {0}


def test_crop_writes_only_the_requested_crops(tmp_path, face_image):
    r = run("crop", face_image, "--zoom", "0.5", "--size", "96x128", "-o", tmp_path / "crops", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    files = list((tmp_path / "crops").iterdir())
    assert len(files) == 1
    from PIL import Image

    assert Image.open(files[0]).size == (96, 128)


def test_the_analyzer_and_crops_need_no_opencv(tmp_path):
    """The desktop bundle leaves OpenCV out (packaging/README.md): analysing, the small-face pass and face-aware
    crops must run with `import cv2` failing (libreface.imaging's NumPy path), and give the table OpenCV gives."""
    from skimage import data
    from PIL import Image

    Image.fromarray(data.astronaut()).save(tmp_path / "astronaut.png")
    args = ["crop", str(tmp_path / "astronaut.png"), "--size", "96x96", "-o", str(tmp_path / "crops")]
    r = subprocess.run([sys.executable, "-c",
                        "import sys; sys.modules['cv2'] = None; from libreface.cli import main; "
                        "a = sys.argv[1:]; i = a.index('--'); sys.exit(main(a[:i]) or main(a[i + 1:]))",
                        *args, "--", str(EXAMPLE), "-o", str(tmp_path / "nocv.csv"), "--every", "10", "--threads", "2"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=300, env={**os.environ, "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    assert len(list((tmp_path / "crops").glob("*.png"))) == 1
    with_cv = run(EXAMPLE, "-o", tmp_path / "cv.csv", "--every", "10", "--threads", "2", cwd=tmp_path)
    assert with_cv.returncode == 0, with_cv.stderr
    a, b = pd.read_csv(tmp_path / "nocv.csv"), pd.read_csv(tmp_path / "cv.csv")
    assert len(a) == 15 and a["success"].sum() > 0
    assert (a["expression"].fillna("") == b["expression"].fillna("")).all()
    pd.testing.assert_frame_equal(a, b, check_exact=False, atol=0.05, rtol=0)
