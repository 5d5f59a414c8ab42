"""The OpenFace layout against a real OpenFace 2 CSV header (vendored, see tests/data/README.md): names, order, types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from libreface.outputs import OPENFACE_AU_INTENSITY, OPENFACE_AU_OCCURRENCE, OPENFACE_OMITTED, columns
from libreface.outputs.schema import layout_for
from libreface.results import OutputLabels

REFERENCE = Path(__file__).parent / "data" / "openface_reference_header.csv"
LABELS = OutputLabels(au_intensity=OPENFACE_AU_INTENSITY, au_occurrence=OPENFACE_AU_OCCURRENCE,
                      occurrence_threshold=0.5, expressions=("neutral", "happiness"), feature_dim=4, model="of17")
INT_COLUMNS = {"frame", "face_id", "success"}


def reference_columns() -> list[str]:
    return [c.strip() for c in REFERENCE.read_text().splitlines()[0].split(",")]


def expected_kind(name: str) -> str:
    if name in INT_COLUMNS:
        return "int"
    if name.startswith("AU") and name.endswith("_c"):
        return "Int"  # an integer 0/1, empty when the face was not analysed
    return "float"


def test_the_vendored_header_is_the_431_column_openface_header():
    ref = reference_columns()
    assert len(ref) == 431 and ref[:4] == ["frame", "timestamp", "confidence", "success"]
    assert ref[-1] == "AU45_c" and "AU28_c" in ref and "AU28_r" not in ref


def test_every_reference_column_but_the_documented_omissions_is_written_in_openface_order():
    ours = columns(LABELS, fmt="openface", landmarks=True)
    wanted = [c for c in reference_columns() if c not in OPENFACE_OMITTED]
    missing = [c for c in wanted if c not in ours]
    assert not missing, f"OpenFace columns we do not write: {missing}"
    positions = [ours.index(c) for c in wanted]
    assert positions == sorted(positions), "reference columns are not in OpenFace's relative order"
    # what we add over the reference is what OpenFace 2.2's FeatureExtraction also writes, in its places
    extra = [c for c in ours if c not in wanted]
    assert extra == ["face_id", "gaze_angle_x", "gaze_angle_y"]
    assert ours.index("face_id") == 1
    assert ours.index("gaze_1_z") + 1 == ours.index("gaze_angle_x") and ours.index("gaze_angle_y") + 1 == ours.index(
        "pose_Tx")


def test_omitted_columns_are_only_pdm_parameters_and_eye_landmarks():
    assert all(c.startswith(("p_", "eye_lmk_")) for c in OPENFACE_OMITTED)
    ref = set(reference_columns())
    assert {c for c in ref if c.startswith("p_")} <= set(OPENFACE_OMITTED)


def test_column_types_match_openface():
    layout = layout_for(LABELS, "openface", True, False)
    kinds = dict(zip(layout.names, layout.kinds))
    for name in reference_columns():
        if name in OPENFACE_OMITTED:
            continue
        kind = kinds[name]
        want = expected_kind(name)
        assert (kind if kind in ("int", "Int") else "float") == want, f"{name}: {kind}, OpenFace writes {want}"


@pytest.mark.data
def test_openface_csv_of_a_real_video_has_the_reference_columns(shared_videos, tmp_path):
    from libreface.pipeline import Analyzer, AnalyzerOptions

    video = shared_videos / "2015-10-15-15-14.avi"  # 842 frames; every 14th: 61 analysed frames
    out = tmp_path / "of.csv"
    with Analyzer(AnalyzerOptions(every=14, threads=2)) as analyzer:
        analyzer.analyze_to_files(video, out, fmt="openface", landmarks=True)
        labels = analyzer.labels
    header = out.read_text().splitlines()[0]
    df = pd.read_csv(out, skipinitialspace=True)
    ours = [c.strip() for c in header.split(",")]
    ref = [c for c in reference_columns() if c not in OPENFACE_OMITTED]
    aus = [c for c in ref if c.startswith("AU")]
    non_au = [c for c in ref if not c.startswith("AU")]
    assert [c for c in ours if c in non_au] == non_au
    ok = df[df["success"] == 1]
    assert len(ok) > 0.9 * len(df)
    g = ok[[f"gaze_{e}_{a}" for e in (0, 1) for a in "xyz"]].to_numpy().reshape(-1, 2, 3)
    np.testing.assert_allclose(np.linalg.norm(g, axis=2), 1.0, atol=1e-3)
    assert (g[:, :, 2] < 0).all()  # the eyes look toward the camera side
    assert ok["pose_Tz"].between(150, 2000).all()
    assert ok[[f"Z_{i}" for i in range(68)]].to_numpy().min() > 0
    for c in ("frame", "face_id", "success"):
        assert pd.api.types.is_integer_dtype(df[c]), c
    if len(labels.au_intensity) < 17 or len(labels.au_occurrence) < 18:
        pytest.skip(f"model {labels.model!r} has {len(labels.au_intensity)} AU intensities and "
                    f"{len(labels.au_occurrence)} occurrences, not OpenFace's 17/18: AU columns not compared "
                    f"(non-AU columns passed)")
    assert [c for c in ours if c in aus] == aus
    assert set(df[[c for c in aus if c.endswith("_c")]].stack().unique()) <= {0, 1}
