"""The analyzer end to end through the Python API, on the bundled example and generated fixtures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import libreface
from libreface.outputs import CsvSink
from libreface.pipeline import Analyzer, AnalyzerOptions

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.mp4"


def _container_pts(path: Path) -> list[float]:
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [float(f.pts * s.time_base) for f in c.decode(s)]


@pytest.fixture(scope="module")
def analyzer():
    with Analyzer(AnalyzerOptions(threads=2)) as a:
        yield a


@pytest.fixture(scope="module")
def example_df(analyzer):
    return analyzer.analyze(EXAMPLE)


def test_every_decoded_frame_gets_exactly_one_row(example_df):
    pts = _container_pts(EXAMPLE)
    assert len(example_df) == len(pts) == 150
    assert example_df["frame"].tolist() == list(range(150))


def test_timestamps_are_the_container_presentation_times(example_df):
    np.testing.assert_allclose(example_df["timestamp"].to_numpy(), _container_pts(EXAMPLE), atol=1e-6)


def test_frames_without_a_face_are_success_0_rows_with_empty_values(example_df):
    last_second = example_df[example_df["frame"] >= 130]
    assert (last_second["success"] == 0).all()
    assert last_second["AU12_intensity"].isna().all() and last_second["happiness"].isna().all()
    face_part = example_df[example_df["frame"] < 110]
    assert (face_part["success"] == 1).mean() > 0.95


def test_outputs_are_in_their_documented_ranges(example_df):
    ok = example_df[example_df["success"] == 1]
    au = ok.filter(like="_intensity")
    assert list(au.columns) == [f"{a}_intensity" for a in example_df.attrs["libreface"]["au_intensity"]]
    assert au.shape[1] >= 12 and au.min().min() >= 0 and au.max().max() <= 5
    probs = ok[["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=2e-3)
    assert set(ok["expression"]) <= set(probs.columns)
    assert ok[["pose_pitch", "pose_yaw", "pose_roll"]].abs().max().max() < 90
    assert ok["confidence"].between(0, 1).all()


def test_the_face_keeps_one_face_id_through_the_shot(example_df):
    ok = example_df[example_df["success"] == 1]
    assert ok["face_id"].nunique() == 1


def test_a_still_image_gives_one_row(analyzer, face_image):
    df = analyzer.analyze(face_image)
    assert len(df) == 1 and df["success"].iloc[0] == 1 and df["timestamp"].iloc[0] == 0.0


def test_two_faces_in_one_frame_give_two_rows(two_face_image):
    with Analyzer(AnalyzerOptions(max_faces=2, threads=2)) as a:
        df = a.analyze(two_face_image)
    assert len(df) == 2 and (df["success"] == 1).all()
    assert sorted(df["face_id"]) == [0, 1]
    assert df["box_x0"].iloc[0] < df["box_x0"].iloc[1]


def test_every_and_fps_subsample_by_frame_and_by_time(analyzer):
    with Analyzer(AnalyzerOptions(every=5, threads=2)) as a:
        df = a.analyze(EXAMPLE)
    assert df["frame"].tolist() == list(range(0, 150, 5))
    with Analyzer(AnalyzerOptions(fps=5, threads=2)) as a:
        df = a.analyze(EXAMPLE)
    assert len(df) == 30 and np.allclose(np.diff(df["timestamp"]), 0.2, atol=1e-6)


def test_the_streaming_iterator_yields_typed_results_in_order(analyzer):
    results = list(analyzer.process(EXAMPLE))
    assert [r.frame for r in results] == list(range(150))
    face = results[0].faces[0]
    assert face.landmarks_px.shape == (478, 3) and face.blendshapes.shape == (52,)
    assert face.features.shape == (analyzer.labels.feature_dim,)


def test_stopping_the_iterator_early_stops_the_pipeline(analyzer):
    it = analyzer.process(EXAMPLE)
    first = [next(it) for _ in range(3)]
    it.close()
    assert [r.frame for r in first] == [0, 1, 2]
    assert next(iter(analyzer.process(EXAMPLE))).frame == 0  # still usable


def test_resume_after_an_interruption_gives_the_same_csv(analyzer, tmp_path):
    full = tmp_path / "full.csv"
    analyzer.analyze_to_files(EXAMPLE, full)
    part = tmp_path / "part.csv"
    with pytest.raises(KeyboardInterrupt):
        with CsvSink(part, analyzer.labels, flush_every_s=0) as sink:
            for result in analyzer.process(EXAMPLE):
                sink.append(result)
                if result.frame == 60:
                    raise KeyboardInterrupt
    assert not part.exists() and Path(str(part) + ".partial").exists()
    summary = analyzer.analyze_to_files(EXAMPLE, part, resume=True)
    assert summary.resumed_from == 60
    a, b = pd.read_csv(full), pd.read_csv(part)
    assert b["frame"].tolist() == a["frame"].tolist()
    # rows written before the interruption are kept as they were
    pd.testing.assert_frame_equal(a[a["frame"] < 60], b[b["frame"] < 60])
    # the rest is analysed again from frame 60; the landmarker restarts its tracking there, so
    # values agree closely, not bit for bit
    after_a, after_b = a[a["frame"] >= 60], b[b["frame"] >= 60]
    assert (after_a["success"].to_numpy() == after_b["success"].to_numpy()).all()
    assert (after_a["box_x0"] - after_b["box_x0"]).abs().max() < 3.0
    assert (after_a["AU12_intensity"] - after_b["AU12_intensity"]).abs().max() < 0.5


def test_features_are_written_keyed_by_frame_and_face(analyzer, tmp_path):
    from libreface.outputs import read_features

    analyzer.analyze_to_files(EXAMPLE, tmp_path / "e.csv", features_path=tmp_path / "e.parquet")
    feats = read_features(tmp_path / "e.parquet")
    df = pd.read_csv(tmp_path / "e.csv")
    assert len(feats) == int(df["success"].sum())
    assert set(feats["frame"]) == set(df.loc[df["success"] == 1, "frame"])


def test_the_convenience_function_returns_a_dataframe_with_provenance():
    df = libreface.analyze(EXAMPLE, every=10, threads=2)
    assert len(df) == 15 and df.attrs["libreface"]["model"] and df.attrs["libreface"]["mirror"] is False


def test_with_mirror_the_outputs_change_a_little_and_the_provenance_says_so():
    on = libreface.analyze(EXAMPLE, every=10, threads=2, mirror=True)
    off = libreface.analyze(EXAMPLE, every=10, threads=2)
    assert on.attrs["libreface"]["mirror"] is True and off.attrs["libreface"]["mirror"] is False
    meta = on.attrs["libreface"]
    cols = [f"{a}_intensity" for a in meta["au_intensity"]] + meta["expressions"]
    assert len(cols) == len(meta["au_intensity"]) + 8
    diff = (on[cols] - off[cols]).abs().to_numpy()
    assert 0 < np.nanmax(diff) < 1.0  # the same face seen twice: close, not identical
    pd.testing.assert_series_equal(on["timestamp"], off["timestamp"])


@pytest.mark.data
def test_happiness_and_au12_rise_during_the_smile(shared_videos):
    df = libreface.analyze(shared_videos / "single_face.mp4", threads=2)
    assert len(df) == 72 and (df["success"] == 1).all()
    first, last = df.iloc[:15], df.iloc[-15:]
    assert last["happiness"].mean() > first["happiness"].mean() + 0.2
    assert last["AU12_intensity"].mean() > first["AU12_intensity"].mean() + 0.5
    assert last["expression"].mode()[0] == "happiness"


@pytest.mark.data
def test_a_video_without_faces_still_gets_one_row_per_frame(shared_videos):
    df = libreface.analyze(shared_videos / "no_face.mp4", threads=2)
    assert len(df) == 95 and (df["success"] == 0).all()


@pytest.mark.data
def test_a_face_leaving_the_video_turns_into_success_0_rows(shared_videos):
    df = libreface.analyze(shared_videos / "face_noface.mov", threads=2)
    assert len(df) == 169
    assert (df.loc[df["frame"] < 70, "success"] == 1).mean() > 0.95
    assert (df.loc[df["frame"] > 75, "success"] == 0).all()


@pytest.mark.parametrize("face_px", [180, 220])
def test_a_mid_sized_face_in_1080p_that_the_full_frame_detector_misses_is_found(face_px):
    """MediaPipe's detector sees the frame shrunk to 128 px: in 1080p it misses faces up to ~300 px, not only small
    ones. The region pass must take them too (it used to stop at 165 px)."""
    from skimage import data

    from libreface.imaging import resize
    from libreface.landmarks import FaceFrontEnd, FrontEndOptions, box_iou

    frame = np.full((1080, 1920, 3), 120, np.uint8)
    head = data.astronaut()[51:197, 152:298]  # her face (a ~108 px landmark box) with a 35 % margin
    side = int(face_px * 1.35)
    x0, y0 = 740, 500  # inside one scan tile (tiles of 360 px every 240 px)
    frame[y0 : y0 + side, x0 : x0 + side] = resize(head, (side, side))
    m = (side - face_px) / 2
    with FaceFrontEnd(FrontEndOptions(video=False, small_faces=False, max_faces=1)) as plain, \
            FaceFrontEnd(FrontEndOptions(video=False, small_faces=True, max_faces=1)) as front_end:
        assert plain.detect(frame) == []  # what makes the region pass necessary at this size
        (face,) = front_end.detect(frame)
    assert box_iou(face.box_px, (x0 + m, y0 + m, x0 + m + face_px, y0 + m + face_px)) > 0.5
