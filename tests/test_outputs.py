"""Output schema and writers: columns, rows, DataFrame, crash-safe CSV and feature files."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from libreface.errors import OutputError
from libreface.landmarks import BLENDSHAPE_NAMES
from libreface.outputs import atomic
from libreface.outputs import (
    BLENDSHAPE_COLUMNS,
    IBUG68_FROM_MEDIAPIPE,
    LANDMARK_COLUMNS,
    CsvSink,
    FeatureSink,
    columns,
    frame_rows,
    native_columns,
    openface_columns,
    partial_path,
    read_features,
    to_dataframe,
)
from libreface.outputs.atomic import OutputLock, lock_path
from libreface.results import FaceResult, FrameResult, OutputLabels

AUS = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU09", "AU12", "AU15", "AU17", "AU20", "AU25", "AU26")
EXPRESSIONS = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
LABELS = OutputLabels(au_intensity=AUS, au_occurrence=AUS, occurrence_threshold=0.5, expressions=EXPRESSIONS,
                      feature_dim=8, model="test")
LAYOUTS = [  # (fmt, landmarks, blendshapes)
    ("native", False, False),
    ("native", True, True),
    ("openface", False, False),
    ("openface", True, False),
]


def make_face(rng, face_id=0, success=True, person_id=-1) -> FaceResult:
    logits = rng.normal(size=len(EXPRESSIONS))
    return FaceResult(
        face_id=face_id,
        box_px=tuple(float(v) for v in rng.uniform(0, 640, 4)),
        confidence=float(rng.uniform(0.5, 1)),
        landmarks_px=rng.uniform(0, 640, (478, 3)).astype(np.float32),
        blendshapes=rng.uniform(0, 1, 52).astype(np.float32),
        pose_deg=tuple(float(v) for v in rng.uniform(-40, 40, 3)),
        au_intensity=rng.uniform(0, 5, len(AUS)).astype(np.float32),
        au_occurrence=rng.uniform(0, 1, len(AUS)).astype(np.float32),
        expression=(np.exp(logits) / np.exp(logits).sum()).astype(np.float32),
        features=rng.normal(size=LABELS.feature_dim).astype(np.float32),
        success=success,
        person_id=person_id,
        gaze=np.array([[0.1, 0.05, -0.99], [0.12, 0.04, -0.99]]),
        gaze_angle=(0.11, 0.045),
        translation_mm=tuple(float(v) for v in rng.uniform(-50, 600, 3)),
        landmarks_3d_mm=rng.uniform(-80, 600, (68, 3)),
    )


def make_frames(n: int, seed: int = 0) -> list[FrameResult]:
    """Frames with 1, 2, 0, 1, 2, 0... faces; every fifth face failed; 30 fps timestamps."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(n):
        faces = [make_face(rng, face_id=k, success=(i + k) % 5 != 4, person_id=k if i % 2 else -1)
                 for k in range([1, 2, 0][i % 3])]
        frames.append(FrameResult(frame=i, timestamp_s=i / 30.0, faces=faces))
    return frames


def write_csv(path, frames, **kwargs):
    with CsvSink(path, LABELS, **kwargs) as sink:
        for f in frames:
            sink.append(f)


def read_csv(path) -> pd.DataFrame:
    return pd.read_csv(path, skipinitialspace=True)


# -- schema -------------------------------------------------------------------------------------


def test_native_columns_follow_the_documented_groups_in_order():
    cols = native_columns(LABELS)
    assert cols[:13] == ["frame", "face_id", "person_id", "timestamp", "confidence", "success",
                         "box_x0", "box_y0", "box_x1", "box_y1", "pose_pitch", "pose_yaw", "pose_roll"]
    assert cols[13:24] == ["pose_Tx_mm", "pose_Ty_mm", "pose_Tz_mm", "gaze_0_x", "gaze_0_y", "gaze_0_z", "gaze_1_x",
                           "gaze_1_y", "gaze_1_z", "gaze_angle_x_deg", "gaze_angle_y_deg"]
    n, k = len(AUS), 24
    assert cols[k:k + n] == [f"{au}_intensity" for au in AUS]
    assert cols[k + n:k + 2 * n] == [f"{au}_presence" for au in AUS]
    assert cols[k + 2 * n:k + 3 * n] == [f"{au}_probability" for au in AUS]
    assert cols[k + 3 * n:] == [*EXPRESSIONS, "expression"]


def test_optional_landmark_and_blendshape_columns_come_last_and_include_bs_neutral():
    cols = native_columns(LABELS, landmarks=True, blendshapes=True)
    assert cols[-52:] == list(BLENDSHAPE_COLUMNS) == [f"bs_{b}" for b in BLENDSHAPE_NAMES]
    assert "bs__neutral" in cols and "bs_jawOpen" in cols
    assert cols[-52 - 3 * 478:-52] == list(LANDMARK_COLUMNS)
    assert LANDMARK_COLUMNS[0] == "lm_x_0" and LANDMARK_COLUMNS[478] == "lm_y_0" and LANDMARK_COLUMNS[-1] == "lm_z_477"


def test_openface_columns_use_openface_names_and_order_for_the_aus_we_have():
    cols = openface_columns(LABELS, landmarks=True)
    assert cols[:5] == ["frame", "face_id", "timestamp", "confidence", "success"]
    assert cols[5:19] == ["gaze_0_x", "gaze_0_y", "gaze_0_z", "gaze_1_x", "gaze_1_y", "gaze_1_z", "gaze_angle_x",
                          "gaze_angle_y", "pose_Tx", "pose_Ty", "pose_Tz", "pose_Rx", "pose_Ry", "pose_Rz"]
    assert cols[19:19 + 136] == [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)]
    assert cols[155:155 + 204] == [f"{a}_{i}" for a in "XYZ" for i in range(68)]
    aus_r = [c for c in cols if c.endswith("_r")]
    aus_c = [c for c in cols if c.endswith("_c")]
    assert aus_r == [f"{au}_r" for au in AUS] and aus_c == [f"{au}_c" for au in AUS]  # AUS is in OpenFace order
    assert cols.index("AU26_r") < cols.index("AU01_c")
    assert "AU07_r" not in cols and "AU45_c" not in cols and "AU28_c" not in cols


def test_openface_au_columns_follow_openface_order_whatever_the_model_order():
    labels = OutputLabels(au_intensity=("AU45", "AU12", "AU01"), au_occurrence=("AU28", "AU01"),
                          occurrence_threshold=0.5, expressions=EXPRESSIONS, feature_dim=0)
    assert openface_columns(labels)[19:] == ["AU01_r", "AU12_r", "AU45_r", "AU01_c", "AU28_c"]


def test_the_ibug68_table_has_68_distinct_mesh_vertices():
    assert len(IBUG68_FROM_MEDIAPIPE) == 68 and len(set(IBUG68_FROM_MEDIAPIPE)) == 68
    assert all(0 <= i < 468 for i in IBUG68_FROM_MEDIAPIPE)


def test_an_unknown_format_lists_the_choices():
    with pytest.raises(ValueError, match="native, openface"):
        columns(LABELS, fmt="csv")


# -- rows ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt, landmarks, blendshapes", LAYOUTS)
def test_every_row_has_one_value_per_column(fmt, landmarks, blendshapes):
    cols = columns(LABELS, fmt=fmt, landmarks=landmarks, blendshapes=blendshapes)
    for frame in make_frames(6):
        for row in frame_rows(frame, LABELS, fmt=fmt, landmarks=landmarks, blendshapes=blendshapes):
            assert len(row) == len(cols)


@pytest.mark.parametrize("fmt, face_id", [("native", -1), ("openface", 0)])
def test_a_frame_without_faces_gives_one_unsuccessful_row_with_empty_outputs(fmt, face_id):
    rows = frame_rows(FrameResult(frame=7, timestamp_s=0.25, faces=[]), LABELS, fmt=fmt)
    assert len(rows) == 1
    row = dict(zip(columns(LABELS, fmt=fmt), rows[0]))
    assert row["success"] == 0 and row["face_id"] == face_id and row["timestamp"] == 0.25
    assert row["frame"] == (7 if fmt == "native" else 8)
    au = [v for k, v in row.items() if k.startswith("AU")]
    assert au and all(math.isnan(v) for v in au)
    assert math.isnan(row["confidence"])


def test_two_faces_give_two_rows_with_their_own_values():
    rng = np.random.default_rng(0)
    faces = [make_face(rng, 0), make_face(rng, 1, person_id=3)]
    rows = frame_rows(FrameResult(frame=2, timestamp_s=0.1, faces=faces), LABELS)
    cols = native_columns(LABELS)
    assert len(rows) == 2
    for face, row in zip(faces, rows):
        r = dict(zip(cols, row))
        assert r["face_id"] == face.face_id and r["person_id"] == face.person_id and r["success"] == 1
        assert r["AU12_intensity"] == pytest.approx(face.au_intensity[AUS.index("AU12")])
        assert r["AU12_presence"] == int(face.au_occurrence[AUS.index("AU12")] >= 0.5)
        assert r["expression"] == EXPRESSIONS[int(np.argmax(face.expression))]


def test_a_failed_face_keeps_box_pose_and_landmarks_but_has_empty_model_outputs():
    face = make_face(np.random.default_rng(1), success=False)
    cols = native_columns(LABELS, landmarks=True)
    (row,) = frame_rows(FrameResult(frame=0, timestamp_s=0.0, faces=[face]), LABELS, landmarks=True)
    r = dict(zip(cols, row))
    assert r["success"] == 0 and r["face_id"] == 0
    assert r["box_x1"] == pytest.approx(face.box_px[2]) and r["pose_yaw"] == pytest.approx(face.pose_deg[1])
    assert r["lm_y_5"] == pytest.approx(face.landmarks_px[5, 1])
    assert all(math.isnan(r[c]) for c in cols if c.startswith("AU") or c in EXPRESSIONS or c == "expression")


def test_openface_frame_is_one_based_and_pose_is_in_radians():
    face = make_face(np.random.default_rng(2))
    (row,) = frame_rows(FrameResult(frame=0, timestamp_s=0.0, faces=[face]), LABELS, fmt="openface")
    r = dict(zip(openface_columns(LABELS), row))
    assert r["frame"] == 1
    for name, deg in zip(("pose_Rx", "pose_Ry", "pose_Rz"), face.pose_deg):
        assert r[name] == pytest.approx(math.radians(deg))
    assert r["AU01_c"] in (0, 1)


def test_openface_landmarks_are_the_mapped_mesh_points():
    face = make_face(np.random.default_rng(3))
    (row,) = frame_rows(FrameResult(frame=0, timestamp_s=0.0, faces=[face]), LABELS, fmt="openface", landmarks=True)
    r = dict(zip(openface_columns(LABELS, landmarks=True), row))
    assert r["x_30"] == pytest.approx(face.landmarks_px[IBUG68_FROM_MEDIAPIPE[30], 0])
    assert r["X_30"] == pytest.approx(face.landmarks_3d_mm[30, 0]) and r["Z_67"] == pytest.approx(face.landmarks_3d_mm[67, 2])


def test_gaze_and_translation_go_to_their_columns_in_both_layouts():
    face = make_face(np.random.default_rng(4))
    frame = FrameResult(frame=0, timestamp_s=0.0, faces=[face])
    (of,) = frame_rows(frame, LABELS, fmt="openface")
    r = dict(zip(openface_columns(LABELS), of))
    assert r["gaze_0_z"] == pytest.approx(-0.99) and r["gaze_1_x"] == pytest.approx(0.12)
    assert r["gaze_angle_x"] == pytest.approx(0.11) and r["pose_Tz"] == pytest.approx(face.translation_mm[2])
    (nat,) = frame_rows(frame, LABELS)
    r = dict(zip(native_columns(LABELS), nat))
    assert r["gaze_angle_y_deg"] == pytest.approx(math.degrees(0.045)) and r["gaze_0_y"] == pytest.approx(0.05)
    assert r["pose_Tx_mm"] == pytest.approx(face.translation_mm[0])


def test_a_face_without_geometry_has_empty_gaze_translation_and_3d_landmarks():
    face = make_face(np.random.default_rng(5))
    face = FaceResult(**{**face.__dict__, "gaze": np.full((2, 3), np.nan), "gaze_angle": (math.nan, math.nan),
                         "translation_mm": (math.nan,) * 3, "landmarks_3d_mm": None})
    (row,) = frame_rows(FrameResult(frame=0, timestamp_s=0.0, faces=[face]), LABELS, fmt="openface", landmarks=True)
    r = dict(zip(openface_columns(LABELS, landmarks=True), row))
    assert all(math.isnan(r[c]) for c in ("gaze_0_x", "gaze_angle_y", "pose_Tz", "X_0", "Z_67"))
    assert r["x_0"] == pytest.approx(face.landmarks_px[IBUG68_FROM_MEDIAPIPE[0], 0])
    assert r["y_8"] == pytest.approx(face.landmarks_px[IBUG68_FROM_MEDIAPIPE[8], 1])


# -- DataFrame and CSV --------------------------------------------------------------------------


def test_the_dataframe_has_nullable_ints_and_provenance():
    df = to_dataframe(make_frames(6), LABELS)
    assert len(df) == 1 + 2 + 1 + 1 + 2 + 1
    assert str(df["frame"].dtype) == "int64" and str(df["success"].dtype) == "int64"
    assert str(df["person_id"].dtype) == "Int64" and str(df["AU01_presence"].dtype) == "Int64"
    assert df["AU01_intensity"].dtype == np.float64
    assert df.attrs["libreface"]["model"] == "test"
    assert df.loc[df["face_id"] == -1, "AU01_presence"].isna().all()


def test_an_empty_run_gives_an_empty_dataframe_with_every_column():
    df = to_dataframe([], LABELS, fmt="openface")
    assert list(df.columns) == openface_columns(LABELS) and len(df) == 0


@pytest.mark.parametrize("fmt, landmarks, blendshapes", LAYOUTS)
def test_the_csv_read_back_equals_the_dataframe_within_the_written_precision(tmp_path, fmt, landmarks, blendshapes):
    frames = make_frames(9)
    out = tmp_path / "out.csv"
    write_csv(out, frames, fmt=fmt, landmarks=landmarks, blendshapes=blendshapes)
    got = read_csv(out)
    want = to_dataframe(frames, LABELS, fmt=fmt, landmarks=landmarks, blendshapes=blendshapes)
    assert list(got.columns) == list(want.columns)
    numeric = [c for c in want.columns if c != "expression"]
    np.testing.assert_allclose(got[numeric].to_numpy(float), want[numeric].to_numpy(float, na_value=np.nan),
                               rtol=0, atol=0.005 + 1e-9)
    if "expression" in want:
        assert got["expression"].fillna("").tolist() == want["expression"].fillna("").tolist()


def test_openface_csv_separates_fields_with_comma_and_space(tmp_path):
    out = tmp_path / "of.csv"
    write_csv(out, make_frames(3), fmt="openface")
    header, first = out.read_text().splitlines()[:2]
    assert header.startswith("frame, face_id, timestamp, confidence, success, gaze_0_x")
    assert first.startswith("1, 0, 0, ")
    assert ",," not in header and header.split(", ") == openface_columns(LABELS)


def test_floats_are_written_compactly_and_nan_as_an_empty_field(tmp_path):
    out = tmp_path / "out.csv"
    write_csv(out, [FrameResult(frame=0, timestamp_s=1 / 3, faces=[])])
    row = out.read_text().splitlines()[1].split(",")
    assert row[:6] == ["0", "-1", "", "0.333333", "", "0"]
    assert set(row[6:]) == {""}


# -- crash safety and resume --------------------------------------------------------------------


def test_a_normal_exit_renames_the_partial_to_the_final_name(tmp_path):
    out = tmp_path / "sub" / "out.csv"  # the folder is created
    write_csv(out, make_frames(4))
    assert out.is_file() and not partial_path(out).exists()
    assert len(read_csv(out)) == len(to_dataframe(make_frames(4), LABELS))


def test_rows_reach_the_disk_before_close_when_flushing_every_frame(tmp_path):
    out = tmp_path / "out.csv"
    sink = CsvSink(out, LABELS, flush_every_s=0)
    sink.append(make_frames(1)[0])
    assert len(read_csv(partial_path(out))) == 1 and not out.exists()
    sink.close()
    assert out.exists()


def test_an_exception_inside_the_sink_leaves_a_readable_partial_and_no_final_file(tmp_path):
    out = tmp_path / "out.csv"
    frames = make_frames(10)
    with pytest.raises(KeyboardInterrupt):
        with CsvSink(out, LABELS, flush_every_s=3600) as sink:
            for f in frames[:5]:
                sink.append(f)
            raise KeyboardInterrupt
    assert not out.exists()
    text = partial_path(out).read_text()
    assert text.endswith("\n")
    df = read_csv(partial_path(out))
    assert list(df.columns) == native_columns(LABELS)
    assert sorted(set(df["frame"])) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("fmt", ["native", "openface"])
def test_resume_drops_a_half_line_and_the_last_frame_then_writes_every_frame_once(tmp_path, fmt):
    out = tmp_path / "out.csv"
    frames = make_frames(12)
    with pytest.raises(RuntimeError):
        with CsvSink(out, LABELS, fmt=fmt) as sink:
            for f in frames[:8]:  # frame 7 has two faces
                sink.append(f)
            raise RuntimeError("killed")
    with open(partial_path(out), "a") as f:  # a crash in the middle of writing frame 8
        f.write("9" if fmt == "native" else "9, 0, 0.2")

    sink = CsvSink(out, LABELS, fmt=fmt, resume=True)
    assert sink.resume_after_frame == 6 and sink.resume_from_frame == 7
    kept = read_csv(partial_path(out))
    assert kept["frame"].max() == (6 if fmt == "native" else 7)
    with sink:
        for f in frames:  # replaying from the start is fine: frames already in the file are skipped
            sink.append(f)

    got = read_csv(out)
    want = to_dataframe(frames, LABELS, fmt=fmt)
    assert got["frame"].tolist() == want["frame"].tolist()  # every frame exactly once, in order
    assert got["face_id"].tolist() == want["face_id"].tolist()
    np.testing.assert_allclose(got["AU12_r" if fmt == "openface" else "AU12_intensity"].to_numpy(float),
                               want["AU12_r" if fmt == "openface" else "AU12_intensity"].to_numpy(float),
                               atol=1e-4)


def test_resume_without_a_partial_starts_from_the_first_frame(tmp_path):
    with CsvSink(tmp_path / "out.csv", LABELS, resume=True) as sink:
        assert sink.resume_from_frame == 0 and sink.resume_after_frame == -1


def test_resume_of_a_partial_with_other_columns_raises_output_error(tmp_path):
    out = tmp_path / "out.csv"
    partial_path(out).write_text("frame,face_id,something_else\n0,0,1\n")
    with pytest.raises(OutputError, match="partial has different columns") as err:
        CsvSink(out, LABELS, resume=True)
    assert str(partial_path(out)) in str(err.value) and "\n" not in str(err.value)


def _a_folder(tmp_path, suffix):
    path = tmp_path / f"results{suffix}"
    path.mkdir()
    return path


def _under_a_file(tmp_path, suffix):
    (tmp_path / "notes.txt").write_text("x")
    return tmp_path / "notes.txt" / f"out{suffix}"


def _in_a_read_only_folder(tmp_path, suffix):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    return folder / f"out{suffix}"


@pytest.mark.parametrize("make_path, message", [
    (_a_folder, "is a folder"),
    (_under_a_file, "cannot create the folder"),
    pytest.param(_in_a_read_only_folder, "cannot write", marks=pytest.mark.skipif(
        os.name != "posix" or os.geteuid() == 0, reason="root and Windows ignore read-only folders")),
    pytest.param(lambda tmp_path, suffix: Path("/proc") / f"out{suffix}", "cannot write", marks=pytest.mark.skipif(
        not Path("/proc/self").exists(), reason="needs Linux /proc, where nobody can create files")),
])
@pytest.mark.parametrize("sink, suffix", [(CsvSink, ".csv"), (FeatureSink, ".npz"), (FeatureSink, ".parquet")])
def test_an_unwritable_output_path_is_one_line_naming_the_path(tmp_path, make_path, message, sink, suffix):
    path = make_path(tmp_path, suffix)
    with pytest.raises(OutputError, match=message) as err:
        sink(path, LABELS)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


# -- features -----------------------------------------------------------------------------------


def _expected_features(frames):
    rows = [(f.frame, face.face_id, face.person_id, f.timestamp_s, face.features)
            for f in frames for face in f.faces if face.success]
    return rows


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_features_round_trip_through_read_features(tmp_path, suffix):
    frames = make_frames(10)
    out = tmp_path / f"feat{suffix}"
    with FeatureSink(out, LABELS, row_group_rows=4) as sink:
        for f in frames:
            sink.append(f)
    assert out.exists() and not partial_path(out).exists()
    df = read_features(out)
    want = _expected_features(frames)
    assert list(df.columns) == ["frame", "face_id", "person_id", "timestamp"] + [f"f{i}" for i in range(8)]
    assert df["frame"].tolist() == [w[0] for w in want] and df["face_id"].tolist() == [w[1] for w in want]
    assert df["person_id"].tolist() == [w[2] for w in want]
    np.testing.assert_allclose(df["timestamp"], [w[3] for w in want])
    np.testing.assert_array_equal(df[[f"f{i}" for i in range(8)]].to_numpy(), np.stack([w[4] for w in want]))
    assert df.attrs["libreface"]["model"] == "test"


def test_parquet_features_are_one_list_column_readable_with_plain_pandas(tmp_path):
    # One list column keeps the writer's per-column-chunk metadata (held until the footer) from
    # growing with D x row groups, i.e. with the video's length.
    import pyarrow.parquet as pq

    frames = make_frames(10)
    out = tmp_path / "feat.parquet"
    with FeatureSink(out, LABELS, row_group_rows=3) as sink:
        for f in frames:
            sink.append(f)
    meta = pq.ParquetFile(out).metadata
    assert meta.num_columns == 5 and meta.num_row_groups >= 3
    plain = pd.read_parquet(out)
    want = np.stack([w[4] for w in _expected_features(frames)])
    np.testing.assert_array_equal(np.stack(plain["features"]), want)


def test_read_features_still_reads_one_column_per_dimension_files(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    old = pd.DataFrame({"frame": [0, 1], "face_id": [0, 0], "person_id": [-1, -1], "timestamp": [0.0, 0.04],
                        **{f"f{i}": np.float32([i, -i]) for i in range(8)}})
    pq.write_table(pa.Table.from_pandas(old, preserve_index=False), tmp_path / "old.parquet")
    df = read_features(tmp_path / "old.parquet")
    pd.testing.assert_frame_equal(df, old)


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_a_crash_leaves_a_readable_features_partial_and_no_final_file(tmp_path, suffix):
    frames = make_frames(10)
    out = tmp_path / f"feat{suffix}"
    with pytest.raises(RuntimeError):
        with FeatureSink(out, LABELS, row_group_rows=3) as sink:
            for f in frames[:6]:
                sink.append(f)
            raise RuntimeError("killed")
    assert not out.exists()
    df = read_features(partial_path(out))
    assert df["frame"].tolist() == [w[0] for w in _expected_features(frames[:6])]


def test_an_unknown_features_suffix_lists_the_choices(tmp_path):
    with pytest.raises(ValueError, match=r"\.npz, \.parquet"):
        FeatureSink(tmp_path / "feat.h5", LABELS)


# -- one writer per output ----------------------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]
posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGKILL / SIGSTOP are POSIX")


@pytest.mark.parametrize("sink, suffix", [(CsvSink, ".csv"), (FeatureSink, ".parquet"), (FeatureSink, ".npz")])
def test_a_second_sink_on_an_output_being_written_is_refused_naming_the_pid(tmp_path, sink, suffix):
    frames = make_frames(10)
    alone, out = tmp_path / f"alone{suffix}", tmp_path / f"out{suffix}"
    with sink(alone, LABELS) as s:
        for f in frames:
            s.append(f)
    with sink(out, LABELS) as first:
        for f in frames[:5]:
            first.append(f)
        if sink is CsvSink:
            first.flush()
        partial_before = partial_path(out).read_bytes()
        with pytest.raises(OutputError, match=f"pid {os.getpid()} ") as err:
            sink(out, LABELS)
        assert str(out) in str(err.value) and "\n" not in str(err.value)
        assert partial_path(out).read_bytes() == partial_before  # the refused sink touched nothing
        for f in frames[5:]:
            first.append(f)
    if suffix == ".npz":  # zip entries carry a time stamp: compare the contents
        pd.testing.assert_frame_equal(read_features(out), read_features(alone))
    else:
        assert out.read_bytes() == alone.read_bytes()
    assert not partial_path(out).exists() and not lock_path(out).exists()


@pytest.mark.parametrize("fail", [False, True])
def test_the_lock_file_is_removed_when_the_sink_ends(tmp_path, fail):
    out = tmp_path / "out.csv"
    with pytest.raises(RuntimeError) if fail else contextlib.nullcontext():
        with CsvSink(out, LABELS) as sink:
            assert lock_path(out).read_text().startswith(f"pid {os.getpid()} on ")
            sink.append(make_frames(1)[0])
            if fail:
                raise RuntimeError("stop")
    assert not lock_path(out).exists()
    assert partial_path(out).exists() == fail and out.exists() != fail
    assert sorted(p.name for p in tmp_path.iterdir()) == [partial_path(out).name if fail else out.name]
    with CsvSink(out, LABELS, resume=True):  # and the next run gets the output
        pass


def test_a_sink_that_fails_to_open_releases_the_lock(tmp_path):
    out = tmp_path / "out.csv"
    partial_path(out).write_text("frame,something_else\n")
    with pytest.raises(OutputError, match="different columns"):
        CsvSink(out, LABELS, resume=True)
    assert not lock_path(out).exists()
    with CsvSink(out, LABELS):
        pass


_HOLD = """
import sys
from libreface.outputs.atomic import OutputLock
lock = OutputLock(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
"""


@posix_only
def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    out = tmp_path / "out.csv"
    holder = subprocess.Popen([sys.executable, "-c", _HOLD, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(OutputError, match=f"pid {holder.pid} "):  # alive: refused, naming its pid
            CsvSink(out, LABELS)
        assert not partial_path(out).exists()
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the kernel drops the flock
        holder.wait(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    assert lock_path(out).read_text().startswith(f"pid {holder.pid} ")  # the stale lock file is still there
    write_csv(out, make_frames(3))
    assert len(read_csv(out)) == len(to_dataframe(make_frames(3), LABELS))
    assert not lock_path(out).exists()


def test_a_lock_removed_by_its_holder_while_a_second_writer_opens_it_is_not_shared(tmp_path, monkeypatch):
    out = tmp_path / "out.csv"
    first = OutputLock(out)
    lock_file = atomic._lock_file

    def holder_ends_between_open_and_lock(f, path):
        if first.held:
            first.release()  # unlinks the file the second writer has just opened
        return lock_file(f, path)

    monkeypatch.setattr(atomic, "_lock_file", holder_ends_between_open_and_lock)
    second = OutputLock(out)
    monkeypatch.undo()
    assert lock_path(out).read_text().startswith(f"pid {os.getpid()} ")  # the second locked the new file
    with pytest.raises(OutputError, match="another libreface run"):
        OutputLock(out)
    second.release()
    assert not lock_path(out).exists()


@posix_only
def test_two_libreface_commands_on_one_output_the_second_stops_naming_the_first(tmp_path):
    example = REPO / "examples" / "astronaut.mp4"
    out = tmp_path / "out.csv"
    env = {**os.environ, "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "libreface", str(example), "-o", str(out), "--threads", "1"]
    first = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (lock_path(out).exists() and lock_path(out).read_text()):
            assert first.poll() is None and time.monotonic() < deadline, "the first run never took the lock"
            time.sleep(0.005)
        first.send_signal(signal.SIGSTOP)  # hold it mid-run, whatever the machine's speed
        try:
            second = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        finally:
            first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert second.returncode == 1
    errors = [line for line in second.stderr.splitlines() if line.startswith("libreface:")]
    assert len(errors) == 1 and str(out) in errors[0] and f"pid {first.pid} " in errors[0], second.stderr
    assert "Traceback" not in second.stderr
    assert first.returncode == 0, err
    assert len(pd.read_csv(out)) == 150  # the first run's CSV is complete
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["out.csv"]


# -- reading a results CSV back (outputs.reader) -------------------------------------------------


def test_both_layouts_read_back_to_the_same_native_table(tmp_path):
    from libreface.outputs import OPENFACE_AU_INTENSITY
    from libreface.outputs.reader import read_results

    frames = make_frames(12)
    write_csv(tmp_path / "n.csv", frames, fmt="native")
    write_csv(tmp_path / "o.csv", frames, fmt="openface")
    nat, of = read_results(tmp_path / "n.csv"), read_results(tmp_path / "o.csv")
    assert (nat.fmt, of.fmt) == ("native", "openface")
    assert nat.au_intensity == list(AUS) and nat.au_presence == list(AUS) and nat.expressions == list(EXPRESSIONS)
    assert of.au_intensity == [a for a in OPENFACE_AU_INTENSITY if a in AUS] and of.expressions == []
    common = ["frame", "face_id", "timestamp", "success", "pose_pitch", "pose_yaw", "pose_roll", "pose_Tx_mm",
              "gaze_0_x", "gaze_angle_x_deg", "gaze_angle_y_deg", "AU12_intensity", "AU12_presence"]
    assert set(common) <= set(of.rows.columns)
    np.testing.assert_allclose(of.rows[common].to_numpy(float), nat.rows[common].to_numpy(float),
                               rtol=0, atol=0.06)  # radians written with 4 decimals -> degrees within 0.006
    assert (nat.rows["face_id"] == -1).sum() == 4 and (nat.rows.loc[nat.rows["face_id"] == -1, "success"] == 0).all()


def test_expression_columns_are_the_model_cards_classes_not_a_fixed_list(tmp_path):
    from libreface.outputs.reader import expression_columns_in, read_results

    labels = OutputLabels(au_intensity=("AU12",), au_occurrence=("AU12",), occurrence_threshold=0.5,
                          expressions=("calm", "joy", "alarm"), feature_dim=0, model="custom")
    rng = np.random.default_rng(1)
    with CsvSink(tmp_path / "c.csv", labels) as sink:
        for i in range(3):
            face = make_face(rng)
            face = dataclasses.replace(face, au_intensity=np.array([1.0], np.float32),
                                       au_occurrence=np.array([0.9], np.float32),
                                       expression=np.array([0.2, 0.7, 0.1], np.float32))
            sink.append(FrameResult(frame=i, timestamp_s=i / 25, faces=[face]))
    res = read_results(tmp_path / "c.csv")
    assert res.expressions == ["calm", "joy", "alarm"] and res.aus == ["AU12"]
    assert res.rows["joy"].tolist() == pytest.approx([0.7] * 3)
    assert expression_columns_in(["frame", "gaze_angle_y_deg", "a", "b", "expression"]) == ["a", "b"]


def test_reading_a_file_that_is_not_a_results_csv_is_one_line_naming_it(tmp_path):
    from libreface.errors import InputError
    from libreface.outputs.reader import read_results

    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "other.csv").write_text("a,b\n1,2\n")
    for name, problem in (("missing.csv", "no such file"), ("empty.csv", "empty"),
                          ("other.csv", "not a libreface results CSV")):
        with pytest.raises(InputError) as e:
            read_results(tmp_path / name)
        assert str(e.value).startswith(f"{tmp_path / name}: ") and problem in str(e.value)
        assert "\n" not in str(e.value)
