"""Blink events, counts and rates from synthetic AU45 series; blinks in the identity and collect summaries."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from libreface.blinks import BLINK_THRESHOLD, blink_column, blink_rate_per_min, blink_summary, detect_blinks

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
