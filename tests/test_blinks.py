"""Blink events, counts and rates from synthetic AU45 series; blinks in the identity and collect summaries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from libreface.blinks import (BLINK_THRESHOLD, MAX_BLINK_S, blink_column, blink_rate_per_min, blink_summary,
                              closure_blinks, detect_blinks, detect_blinks_from_occurrence)

FPS = 30.0


def series(n: int, events: list[tuple[int, int]], level: float = 3.0, base: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """n frames at 30 fps, AU45 = `level` on frames [a, b) of each event, `base` elsewhere."""
    x = np.full(n, base)
    for a, b in events:
        x[a:b] = level
    return np.arange(n) / FPS, x


def test_separate_short_closures_are_separate_blinks():
    t, x = series(300, [(10, 14), (100, 103), (200, 201)])
    blinks = detect_blinks(t, x)
    assert [(round(b.start_s * FPS), round(b.end_s * FPS)) for b in blinks] == [(10, 13), (100, 102), (200, 200)]
    assert all(b.peak == 3.0 for b in blinks)


def test_a_one_frame_dip_is_merged_but_a_two_frame_gap_is_not():
    t, x = series(100, [(10, 13), (14, 17), (40, 43), (45, 48)])
    assert len(detect_blinks(t, x)) == 3
    assert len(detect_blinks(t, x, merge_gap_frames=2)) == 2


def test_closures_longer_than_half_a_second_are_not_blinks():
    t, x = series(200, [(10, 25), (50, 70)])  # 15 frames = 0.5 s: a blink; 20 frames: eyes shut
    assert len(detect_blinks(t, x)) == 1
    assert len(detect_blinks(t, x, max_duration_s=1.0)) == 2


def test_threshold_is_a_parameter_and_inclusive():
    t, x = series(60, [(5, 8)], level=BLINK_THRESHOLD)
    assert len(detect_blinks(t, x)) == 1 and detect_blinks(t, x, threshold=BLINK_THRESHOLD + 0.5) == []
    t, x = series(60, [(5, 8)], level=BLINK_THRESHOLD - 0.01)
    assert detect_blinks(t, x) == [] and len(detect_blinks(t, x, threshold=BLINK_THRESHOLD - 0.5)) == 1


def test_default_threshold_is_the_one_bench_blinks_measured_best():
    report = json.loads((Path(__file__).resolve().parents[1] / "reports" / "blinks" / "blinks.json").read_text())
    assert BLINK_THRESHOLD == report["best_threshold"]
    assert 3.0 > BLINK_THRESHOLD  # the synthetic blinks above (level 3.0) stay above it


def test_missing_values_end_a_blink_and_are_not_bridged():
    t, x = series(60, [(10, 13), (14, 17)])
    x[13] = np.nan
    assert len(detect_blinks(t, x)) == 2


def test_rate_is_per_minute_of_face_time_and_groups_are_separate_series():
    t, x = series(1800, [(i, i + 3) for i in range(30, 1800, 150)])  # 60 s, a blink every 5 s
    s = blink_summary(t, x)
    assert s["blinks"] == 12 and s["blink_rate_per_min"] == pytest.approx(12.0)
    two = blink_summary(np.r_[t, t], np.r_[x, x], groups=np.r_[np.zeros(1800), np.ones(1800)])
    assert two == {"blinks": 24, "blink_rate_per_min": pytest.approx(12.0)}
    assert math.isnan(blink_rate_per_min(3, 0.0))


def _frame_table() -> pd.DataFrame:
    """A results-CSV-like frame table at 30 fps: a 2 s closure (eyes kept shut) at 1 s, a 0.2 s one at 5 s, a
    0.5 s one (the longest blink) at 7 s; AU45 given both as intensity and as occurrence."""
    n = int(10 * FPS)
    t = np.round(np.arange(n) / FPS, 6)
    closed = np.zeros(n, bool)
    for start_s, length_s in ((1.0, 2.0), (5.0, 0.2), (7.0, MAX_BLINK_S)):
        a = int(round(start_s * FPS))
        closed[a: a + int(round(length_s * FPS))] = True
    return pd.DataFrame({"frame": np.arange(n), "face_id": 0, "timestamp": t, "success": 1,
                         "AU45_intensity": np.where(closed, 3.5, 0.3), "AU45_presence": closed.astype(int)})


@pytest.mark.parametrize("path", ["intensity", "occurrence"])
def test_both_au45_paths_share_the_duration_cap(path):
    df = _frame_table()
    t = df["timestamp"].to_numpy()
    if path == "intensity":
        blinks = detect_blinks(t, df["AU45_intensity"].to_numpy())
    else:
        blinks = detect_blinks_from_occurrence(t, df["AU45_presence"].to_numpy())
    # the 2 s closure is not a blink; the 0.2 s one and the 0.5 s one (6 and 15 frames) are
    assert [(round(b.start_s * FPS), round(b.end_s * FPS)) for b in blinks] == [(150, 155), (210, 224)]
    assert [b.peak for b in blinks] == ([3.5, 3.5] if path == "intensity" else [1.0, 1.0])
    if path == "intensity":
        longer = detect_blinks(t, df["AU45_intensity"].to_numpy(), max_duration_s=2.0)
    else:
        longer = detect_blinks_from_occurrence(t, df["AU45_presence"].to_numpy(), max_duration_s=2.0)
    assert len(longer) == 3  # the cap is what excluded the 2 s closure


def test_occurrence_path_merges_one_frame_dips_and_stops_at_missing_values():
    t = np.arange(40) / FPS
    o = np.zeros(40)
    o[[5, 6, 8, 9]] = 1  # a one-frame dip at 7: one blink
    o[[20, 21, 23, 24]] = 1
    o[22] = np.nan  # unknown, not open: never bridged
    assert [(round(b.start_s * FPS), round(b.end_s * FPS)) for b in detect_blinks_from_occurrence(t, o)] == [
        (5, 9), (20, 21), (23, 24)]
    assert len(closure_blinks(t, np.nan_to_num(o))) == 2  # with the gap known to be open, 20-24 is one blink


def test_occurrence_must_be_zero_one_or_missing():
    with pytest.raises(ValueError, match="AU45 occurrence must be 0, 1 or NaN, got 3"):
        detect_blinks_from_occurrence([0.0, 0.1], [0.0, 3.0])


def test_bad_input_names_the_problem():
    with pytest.raises(ValueError, match="1-D arrays of one length"):
        detect_blinks([0.0, 1.0], [1.0])


def test_blink_column_finds_au45_in_either_layout_or_none():
    assert blink_column(["AU01_intensity", "AU45_intensity"]) == "AU45_intensity"
    assert blink_column(["AU45_r"]) == "AU45_r"
    assert blink_column(["AU01_r"]) is None


def _native_rows(with_au45: bool) -> pd.DataFrame:
    t, x = series(600, [(30, 33), (200, 204), (400, 402)])
    df = pd.DataFrame({"frame": np.arange(600), "face_id": 0, "person_id": 0, "timestamp": t, "success": 1,
                       "neutral": 0.6, "happiness": 0.4})
    if with_au45:
        df.insert(5, "AU45_intensity", x)
    return df


def test_identity_summary_has_blinks_per_person():
    from libreface.identity import summarize

    (person,) = summarize(_native_rows(True), ("neutral", "happiness"))["persons"]
    assert person["blinks"] == 3 and person["blink_rate_per_min"] == pytest.approx(9.0)
    (person,) = summarize(_native_rows(False), ("neutral", "happiness"))["persons"]
    assert person["blinks"] is None and person["blink_rate_per_min"] is None


def test_collect_stats_have_blinks_only_with_au45():
    from libreface.collect import _Stats

    for with_au45 in (True, False):
        df = _native_rows(with_au45)
        stats = _Stats(list(df.columns))
        stats.add(df.iloc[:250])
        stats.add(df.iloc[250:])
        row = stats.row()
        if with_au45:
            assert row["blinks"] == 3 and row["blink_rate_per_min"] == pytest.approx(9.0)
        else:
            assert "blinks" not in row and "blink_rate_per_min" not in row
