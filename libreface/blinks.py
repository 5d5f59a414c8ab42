"""Blink step: blink events, counts and rates from one face's AU45 (blink) intensity or occurrence series.

A blink is a closure run that lasts at least one frame and at most `max_duration_s` (longer closures are eyes
kept shut, not blinks); two runs separated by at most `merge_gap_frames` open frames are one blink (a noisy dip
mid-blink). A missing value (NaN: no face, or the face was not analysed) ends a run and is never bridged. The eye
is closed where the AU45 intensity is >= `threshold` (0..5 scale, `detect_blinks`) or, for a table with only
the AU45 occurrence column, where the occurrence is 1 (`detect_blinks_from_occurrence`); both go through
`closure_blinks`, the one definition of a blink. The rate is per minute of face time.

Used by the per-recording summaries (`libreface.identity.summary`, `libreface.collect`) and the HTML report
(`libreface.report.summaries`). A model without AU45 has no blink column: `blink_column` returns None and the
summaries leave the blink fields empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

BLINK_THRESHOLD = 2.5
"""AU45 intensity (0..5) at or above which the eye counts as closing.

Chosen by `bench/blinks.py` (reports/blinks/blinks.md): the best event-level F1 (0.40, precision 0.30, recall 0.59,
17 reference events) among 0.75 .. 2.5 for the default model on the shared real videos, measured against eye-aspect-
ratio eye closure (runs <= 0.5 s of EAR < 0.6 x the face's median EAR), not against human-coded blinks. EAR and the
default model's AU45 (MediaPipe eyeBlink blendshapes) both derive from MediaPipe's face mesh, so the agreement is
optimistic. The choice is fragile: it rests on multi_face.avi (7 of the 17 reference events, a face whose AU45
baseline is near 2); without that video 1.25 scores best.
"""
MAX_BLINK_S = 0.5
MERGE_GAP_FRAMES = 1
BLINK_COLUMNS: tuple[str, ...] = ("AU45_intensity", "AU45_r")
"""The AU45 intensity column of the native and the OpenFace layout."""


@dataclass(frozen=True)
class Blink:
    """One blink: first and last frame time (seconds) above the threshold, and the peak intensity."""

    start_s: float
    end_s: float
    peak: float


def blink_column(columns: Sequence[str]) -> str | None:
    """The AU45 intensity column among `columns`, or None when the model has no AU45."""
    return next((c for c in BLINK_COLUMNS if c in columns), None)


def closure_blinks(timestamps_s, closed, level=None, *, max_duration_s: float = MAX_BLINK_S,
                   merge_gap_frames: int = MERGE_GAP_FRAMES) -> list[Blink]:
    """Blink events in one face's eye-closure series: the definition of a blink both AU45 paths share.

    Args:
        timestamps_s: (N,) increasing frame times in seconds, one per analysed frame of this face.
        closed: (N,) 1 (or True) where the eye is closed, 0 where open, NaN where unknown (ends a run).
        level: (N,) the value reported as each blink's `peak` (its maximum over the run); default `closed`.
        max_duration_s, merge_gap_frames: see the module docstring.

    Returns:
        The blinks in time order. A run's duration is its last minus first frame time plus one frame step
        (the median step of `timestamps_s`), so a one-frame blink lasts one frame.
    """
    t = np.asarray(timestamps_s, np.float64)
    c = np.asarray(closed, np.float64)
    x = c if level is None else np.asarray(level, np.float64)
    if t.ndim != 1 or t.shape != c.shape or t.shape != x.shape:
        raise ValueError(f"timestamps and values must be 1-D arrays of one length, got {t.shape} and {c.shape}")
    if len(t) == 0:
        return []
    step = float(np.median(np.diff(t))) if len(t) > 1 else 0.0
    runs: list[list[int]] = []  # [first, last] indices
    for i in np.flatnonzero(c == 1):  # NaN compares False
        if runs and i - runs[-1][1] - 1 <= merge_gap_frames and not np.isnan(c[runs[-1][1] + 1: i]).any():
            runs[-1][1] = i
        else:
            runs.append([i, i])
    out = []
    for a, b in runs:
        if t[b] - t[a] + step <= max_duration_s + 1e-9:
            out.append(Blink(float(t[a]), float(t[b]), float(np.nanmax(x[a: b + 1]))))
    return out


def detect_blinks(timestamps_s, intensity, *, threshold: float = BLINK_THRESHOLD, max_duration_s: float = MAX_BLINK_S,
                  merge_gap_frames: int = MERGE_GAP_FRAMES) -> list[Blink]:
    """Blink events in one face's AU45 intensity series (closed where intensity >= `threshold`).

    Args:
        timestamps_s: (N,) increasing frame times in seconds, one per analysed frame of this face.
        intensity: (N,) AU45 intensity 0..5; NaN where unknown.
        threshold, max_duration_s, merge_gap_frames: see the module docstring.

    Returns:
        `closure_blinks` of the thresholded series; each blink's `peak` is its largest intensity.
    """
    x = np.asarray(intensity, np.float64)
    closed = np.where(np.isnan(x), np.nan, (x >= threshold).astype(np.float64))
    return closure_blinks(timestamps_s, closed, x, max_duration_s=max_duration_s, merge_gap_frames=merge_gap_frames)


def detect_blinks_from_occurrence(timestamps_s, occurrence, *, max_duration_s: float = MAX_BLINK_S,
                                  merge_gap_frames: int = MERGE_GAP_FRAMES) -> list[Blink]:
    """Blink events in one face's AU45 occurrence series (closed where occurrence is 1), for a table that has
    `AU45_presence` / `AU45_c` but no AU45 intensity.

    Args:
        timestamps_s: (N,) increasing frame times in seconds, one per analysed frame of this face.
        occurrence: (N,) 0 or 1; NaN where unknown.
        max_duration_s, merge_gap_frames: see the module docstring.

    Returns:
        `closure_blinks` of the series; each blink's `peak` is 1.0.

    Raises:
        ValueError: a value other than 0, 1 or NaN.
    """
    o = np.asarray(occurrence, np.float64)
    bad = ~(np.isnan(o) | (o == 0) | (o == 1))
    if bad.any():
        raise ValueError(f"AU45 occurrence must be 0, 1 or NaN, got {o[bad][0]:g}")
    return closure_blinks(timestamps_s, o, max_duration_s=max_duration_s, merge_gap_frames=merge_gap_frames)


def blink_rate_per_min(blinks: int, face_time_s: float) -> float:
    """Blinks per minute of face time; NaN when there is no face time."""
    return 60.0 * blinks / face_time_s if face_time_s > 0 else float("nan")


def blink_summary(timestamps_s, intensity, groups=None, face_time_s: float | None = None, **kwargs) -> dict:
    """{"blinks": count, "blink_rate_per_min": rate} over one or more faces.

    Args:
        timestamps_s, intensity: (N,) rows, in time order within each face.
        groups: (N,) face or person ids; each group is its own series (None = one face).
        face_time_s: the faces' total time on screen; default: the number of rows with a known intensity times
            the median frame step of each group.
        **kwargs: passed to `detect_blinks`.
    """
    t = np.asarray(timestamps_s, np.float64)
    x = np.asarray(intensity, np.float64)
    g = np.zeros(len(t), np.int64) if groups is None else np.asarray(groups)
    count, time_s = 0, 0.0
    for key in np.unique(g):
        sel = g == key
        order = np.argsort(t[sel], kind="stable")
        ts, xs = t[sel][order], x[sel][order]
        count += len(detect_blinks(ts, xs, **kwargs))
        step = float(np.median(np.diff(ts))) if len(ts) > 1 else 0.0
        time_s += step * int(np.isfinite(xs).sum())
    if face_time_s is not None:
        time_s = face_time_s
    return {"blinks": int(count), "blink_rate_per_min": round(blink_rate_per_min(count, time_s), 3)}
