"""Export step 2: per-frame results -> timed segments (dominant expression with hysteresis, AU activations).

Times come from the CSV's real `timestamp` column: a segment's onset is its first frame's timestamp and
its offset the timestamp of the next analysed frame of the recording (or, after the last frame, the last
timestamp plus the median frame interval), so back-to-back segments share their boundary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..outputs.reader import frame_ends
from .table import FrameTable


@dataclass(frozen=True)
class Segment:
    """One annotation: `label` on tier `tier` of person `person`, from `onset_s` to `offset_s` (seconds)."""

    person: str  # "P0"
    tier: str  # "expression" or an AU name such as "AU12"
    label: str  # the expression class, or the AU name for an activation
    onset_s: float
    offset_s: float

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s


@dataclass(frozen=True)
class SegmentOptions:
    """Segmentation parameters (all are CLI options of `libreface elan`).

    Attributes:
        margin: a new expression must lead the current one by this much probability (0..1) to replace it.
        min_frames: ... on this many consecutive analysed frames ...
        min_switch_s: ... spanning at least this many seconds (0: the frame count alone decides).
        min_duration_s: expression segments shorter than this are absorbed by the neighbouring segment.
        max_gap_frames: up to this many analysed frames without the face do not end a segment.
        au_min_duration_s: AU activations shorter than this (after gap merging) are dropped.
        au_merge_gap_s: AU activations separated by less than this are merged into one.
    """

    margin: float = 0.1
    min_frames: int = 3
    min_switch_s: float = 0.0
    min_duration_s: float = 0.5
    max_gap_frames: int = 2
    au_min_duration_s: float = 0.2
    au_merge_gap_s: float = 0.2

    def __post_init__(self) -> None:
        if not 0 <= self.margin < 1:
            raise ValueError(f"margin must be in [0, 1), got {self.margin}")
        if self.min_frames < 1 or self.max_gap_frames < 0:
            raise ValueError("min_frames must be >= 1 and max_gap_frames >= 0")
        if min(self.min_switch_s, self.min_duration_s, self.au_min_duration_s, self.au_merge_gap_s) < 0:
            raise ValueError("durations must be >= 0 seconds")


def hysteresis(probs: np.ndarray, times: np.ndarray, margin: float = 0.1, min_frames: int = 3,
               min_switch_s: float = 0.0) -> np.ndarray:
    """Dominant class per frame, switching only on a sustained lead.

    Args:
        probs: (n, C) class probabilities of consecutive frames; a row of NaN is a frame without the face
            (it keeps the current class and does not count towards a switch).
        times: (n,) frame timestamps, seconds.
        margin: a challenger must beat the current class by this much on each frame of its run.
        min_frames, min_switch_s: the run must last this many frames and seconds; the switch is then dated back
            to the run's first frame.

    Returns:
        (n,) int class index per frame; -1 on NaN rows before the first observation.
    """
    n = len(probs)
    state = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return state
    present = ~np.isnan(probs).any(axis=1)
    best = np.where(present, np.argmax(np.nan_to_num(probs, nan=-1.0), axis=1), -1).tolist()
    p = probs.tolist()
    t = times.tolist()
    cur, cand, start, count = -1, -1, 0, 0
    for i in range(n):
        b = best[i]
        if b < 0:
            state[i] = cur
            continue
        if cur < 0:
            cur, cand, count = b, -1, 0
        elif b != cur and p[i][b] - p[i][cur] >= margin:
            if b == cand:
                count += 1
            else:
                cand, start, count = b, i, 1
            if count >= min_frames and t[i] - t[start] >= min_switch_s:
                state[start:i] = b
                cur, cand, count = b, -1, 0
        else:
            cand, count = -1, 0
        state[i] = cur
    return state


def _runs(values: np.ndarray) -> list[tuple[int, int, int]]:
    """(value, first, last) for each run of equal values, inclusive indices."""
    if len(values) == 0:
        return []
    cuts = np.flatnonzero(np.diff(values)) + 1
    starts = np.concatenate(([0], cuts))
    ends = np.concatenate((cuts - 1, [len(values) - 1]))
    return [(int(values[s]), int(s), int(e)) for s, e in zip(starts, ends)]


def _person_rows(table: FrameTable, person: str) -> pd.DataFrame:
    """The person's rows aligned to every analysed frame of `table.frames` (NaN where the person is absent)."""
    rows = table.faces[table.faces["person"] == person].drop_duplicates("frame")
    return rows.set_index("frame").reindex(pd.Index(table.frames["frame"]))


def _absent_runs(present: np.ndarray, max_gap: int) -> np.ndarray:
    """(n,) bool: frames inside an absence longer than `max_gap` frames (or before the first / after the last sighting)."""
    out = ~present.copy()
    if not present.any():
        return out
    for v, s, e in _runs(present.astype(np.int64)):
        inner = s > 0 and e < len(present) - 1
        if v == 0 and inner and e - s + 1 <= max_gap:
            out[s:e + 1] = False
    return out


def expression_segments(table: FrameTable, options: SegmentOptions = SegmentOptions()) -> list[Segment]:
    """Dominant-expression segments of every person, in time order per person (none for the OpenFace layout)."""
    if not table.expressions:
        return []
    t = table.frames["timestamp"].to_numpy(np.float64)
    ends = frame_ends(t)
    out: list[Segment] = []
    for person in sorted(table.faces["person"].unique(), key=_person_key):
        rows = _person_rows(table, person)
        probs = rows[table.expressions].to_numpy(np.float64)
        present = ~np.isnan(probs).any(axis=1)
        state = hysteresis(probs, t, options.margin, options.min_frames, options.min_switch_s)
        state[_absent_runs(present, options.max_gap_frames)] = -1
        spans = [(v, float(t[s]), float(ends[e])) for v, s, e in _runs(state) if v >= 0]
        for v, on, off in _absorb_short(spans, options.min_duration_s):
            out.append(Segment(person, "expression", table.expressions[v], on, off))
    return out


def _absorb_short(spans: list[tuple[int, float, float]], min_s: float) -> list[tuple[int, float, float]]:
    """Give each span shorter than `min_s` to the touching span before it (else after it); drop isolated ones."""
    out: list[list] = []
    carry: float | None = None  # onset handed forward by a short span that touched the next one
    for k, (v, on, off) in enumerate(spans):
        if carry is not None:
            on, carry = carry, None
        if off - on < min_s:
            if out and out[-1][2] == on:
                out[-1][2] = off
                continue
            if k + 1 < len(spans) and spans[k + 1][1] == off:
                carry = on
                continue
            continue  # isolated and short: dropped
        if out and out[-1][0] == v and out[-1][2] == on:
            out[-1][2] = off
        else:
            out.append([v, on, off])
    return [(v, on, off) for v, on, off in out]


def au_segments(table: FrameTable, options: SegmentOptions = SegmentOptions(),
                aus: list[str] | None = None) -> list[Segment]:
    """AU activation segments (occurrence == 1) of every person and AU, gap-merged, short ones dropped."""
    t = table.frames["timestamp"].to_numpy(np.float64)
    ends = frame_ends(t)
    out: list[Segment] = []
    for person in sorted(table.faces["person"].unique(), key=_person_key):
        rows = _person_rows(table, person)
        for au in aus if aus is not None else table.aus:
            active = (rows[au].to_numpy(np.float64) >= 0.5).astype(np.int64)  # NaN (absent) -> inactive
            spans: list[list[float]] = []
            for v, s, e in _runs(active):
                if v != 1:
                    continue
                on, off = float(t[s]), float(ends[e])
                if spans and on - spans[-1][1] < options.au_merge_gap_s:
                    spans[-1][1] = off
                else:
                    spans.append([on, off])
            out += [Segment(person, au, au, on, off) for on, off in spans if off - on >= options.au_min_duration_s]
    return out


def segments(table: FrameTable, options: SegmentOptions = SegmentOptions()) -> list[Segment]:
    """Expression and AU segments of every person: person, then tier (expression first, then AUs in CSV order), then time."""
    order = {"expression": -1, **{au: i for i, au in enumerate(table.aus)}}
    segs = expression_segments(table, options) + au_segments(table, options)
    return sorted(segs, key=lambda s: (_person_key(s.person), order[s.tier], s.onset_s))


def tier_names(table: FrameTable) -> list[tuple[str, str]]:
    """(person, tier) of every tier to write, even empty ones: each person's expression tier and one per AU."""
    persons = sorted(table.faces["person"].unique(), key=_person_key)
    tiers = (["expression"] if table.expressions else []) + list(table.aus)
    return [(p, tier) for p in persons for tier in tiers]


def _person_key(person: str) -> tuple[int, str]:
    digits = person[1:]
    return (int(digits), person) if digits.isdigit() else (1 << 30, person)
