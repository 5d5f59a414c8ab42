"""Report step 2: the numbers of a report (pure pandas): detection, screen time, per-AU / per-expression, pose, blinks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..blinks import BLINK_THRESHOLD, MAX_BLINK_S, blink_rate_per_min, detect_blinks, detect_blinks_from_occurrence
from ..outputs.reader import Results, frame_ends

POSE_THRESHOLD_DEG = 30.0
"""Default |yaw| or |pitch| beyond which a head pose counts as extreme, degrees."""
POSE_MIN_S = 0.5
"""Default shortest extreme-pose segment listed, seconds (shorter ones are single noisy frames)."""
BLINK_AU = "AU45"


@dataclass(frozen=True)
class Group:
    """The rows one report section is about: one person, or everyone when the CSV has no identities.

    Attributes:
        person_id: the person's id, or -1 for "everyone" (no identities in the CSV).
        label: a heading, e.g. "Person 0" or "Everyone".
        rows: that group's face rows (`face_id` >= 0), every column of `Results.rows`.
    """

    person_id: int
    label: str
    rows: pd.DataFrame


def frame_durations(rows: pd.DataFrame) -> pd.Series:
    """Seconds each analysed frame stands for, indexed by `frame`: the step to the next analysed frame (the median
    step for the last one), so that sums are right with `--every` / `--fps` subsampling too."""
    ts = rows.groupby("frame", sort=True)["timestamp"].first()
    t = ts.to_numpy(np.float64)
    return pd.Series(frame_ends(t) - t, index=ts.index, name="duration_s")


def groups(res: Results) -> list[Group]:
    """One `Group` per person_id >= 0 (rows with person_id -1 go to "Unassigned" when there are persons), or
    a single "Everyone" group when the CSV has no identities (every person_id is -1)."""
    faces = res.rows[res.rows["face_id"] >= 0]
    ids = sorted(set(faces["person_id"].unique().tolist()) - {-1})
    if not ids:
        return [Group(-1, "Everyone", faces)]
    out = [Group(int(p), f"Person {p}", faces[faces["person_id"] == p]) for p in ids]
    rest = faces[faces["person_id"] == -1]
    if len(rest):
        out.append(Group(-1, "Unassigned faces", rest))
    return out


def quality(res: Results) -> dict:
    """Recording-level quality numbers.

    Returns:
        {"frames": analysed frames, "face_rows": rows with a face, "analysed_rows": rows with success 1,
         "frames_with_face": frames with at least one face, "pct_frames_with_face": 0..100,
         "pct_frames_analysed": 0..100 (frames with at least one analysed face), "duration_s": last - first
         timestamp + one frame step, "median_step_s", "confidence_mean", "confidence_p10" (over face rows; None
         without a confidence column), "max_faces_in_a_frame", "persons": number of person ids >= 0}.
    """
    r = res.rows
    dur = frame_durations(r)
    frames = int(len(dur))
    faces = r[r["face_id"] >= 0]
    ok = faces[faces["success"] == 1]
    with_face = int(faces["frame"].nunique())
    analysed = int(ok["frame"].nunique())
    conf = faces["confidence"].dropna() if "confidence" in faces.columns else pd.Series(dtype=float)
    t = r["timestamp"].dropna()
    return {
        "frames": frames,
        "face_rows": int(len(faces)),
        "analysed_rows": int(len(ok)),
        "frames_with_face": with_face,
        "pct_frames_with_face": 100.0 * with_face / frames if frames else 0.0,
        "pct_frames_analysed": 100.0 * analysed / frames if frames else 0.0,
        "duration_s": float(dur.sum()) if frames else 0.0,
        "first_timestamp_s": float(t.min()) if len(t) else 0.0,
        "median_step_s": float(np.median(dur.to_numpy()[:-1])) if frames > 1 else 0.0,
        "confidence_mean": float(conf.mean()) if len(conf) else None,
        "confidence_p10": float(conf.quantile(0.1)) if len(conf) else None,
        "max_faces_in_a_frame": int(faces.groupby("frame").size().max()) if len(faces) else 0,
        "persons": int(len(set(faces["person_id"].tolist()) - {-1})),
    }


def screen_time(res: Results, group: Group) -> dict:
    """{"frames": frames where the group has a face, "screen_time_s", "pct_of_recording" (0..100), "first_s",
    "last_s"}; screen time sums `frame_durations` over those frames."""
    dur = frame_durations(res.rows)
    fr = np.unique(group.rows["frame"].to_numpy())
    st = float(dur.reindex(fr).fillna(0).sum())
    total = float(dur.sum())
    ts = group.rows["timestamp"]
    return {"frames": int(len(fr)), "screen_time_s": st, "pct_of_recording": 100.0 * st / total if total else 0.0,
            "first_s": float(ts.min()) if len(ts) else None, "last_s": float(ts.max()) if len(ts) else None}


def au_table(res: Results, group: Group) -> pd.DataFrame:
    """One row per AU (index "AU01", ...), over the group's analysed rows (success 1).

    Columns: `mean` and `p90` of `<AU>_intensity` (0..5 scale; NaN without an intensity column), `pct_active`:
    100 * the mean of `<AU>_presence` (0..100; NaN without a presence column), `rows`: analysed rows.
    """
    ok = group.rows[group.rows["success"] == 1]
    out = []
    for au in res.aus:
        ic, pc = f"{au}_intensity", f"{au}_presence"
        x = pd.to_numeric(ok[ic], errors="coerce").dropna() if ic in ok.columns else pd.Series(dtype=float)
        p = pd.to_numeric(ok[pc], errors="coerce").dropna() if pc in ok.columns else pd.Series(dtype=float)
        out.append({"au": au, "mean": float(x.mean()) if len(x) else np.nan,
                    "p90": float(x.quantile(0.9)) if len(x) else np.nan,
                    "pct_active": 100.0 * float(p.mean()) if len(p) else np.nan, "rows": int(len(ok))})
    return pd.DataFrame(out, columns=["au", "mean", "p90", "pct_active", "rows"]).set_index("au")


def expression_table(res: Results, group: Group) -> pd.DataFrame:
    """One row per expression class (index), over the group's analysed rows: `pct_dominant` (0..100, share of rows
    where the class is the most probable one) and `mean_probability` (0..1). Empty without expression columns."""
    if not res.expressions:
        return pd.DataFrame(columns=["pct_dominant", "mean_probability"])
    ok = group.rows[group.rows["success"] == 1]
    probs = ok[res.expressions].apply(pd.to_numeric, errors="coerce").dropna(how="all")
    dom = probs.idxmax(axis=1) if len(probs) else pd.Series(dtype=object)
    counts = dom.value_counts()
    n = len(probs)
    return pd.DataFrame({
        "pct_dominant": [100.0 * counts.get(c, 0) / n if n else np.nan for c in res.expressions],
        "mean_probability": [float(probs[c].mean()) if n else np.nan for c in res.expressions],
    }, index=pd.Index(res.expressions, name="expression"))


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the runs of True in a 1-D bool array, stop exclusive."""
    f = np.concatenate([[False], np.asarray(flags, bool), [False]])
    d = np.diff(f.astype(np.int8))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def pose_segments(res: Results, group: Group, threshold_deg: float = POSE_THRESHOLD_DEG,
                  min_s: float = POSE_MIN_S) -> pd.DataFrame:
    """Time ranges where the group's head is turned beyond `threshold_deg` (|yaw| or |pitch|, degrees).

    A segment is a run of consecutive analysed frames (of the whole recording) in which the group's face is
    extreme; a frame without the face ends it. Per frame the largest |angle| of the group's faces counts.
    Segments shorter than `min_s` seconds are dropped.

    Returns:
        DataFrame with `start_s`, `end_s` (end of the last extreme frame), `duration_s`, `max_abs_yaw`,
        `max_abs_pitch` (degrees), one row per segment in time order.
    """
    cols = ["start_s", "end_s", "duration_s", "max_abs_yaw", "max_abs_pitch"]
    g = group.rows
    if not len(g) or "pose_yaw" not in g.columns or "pose_pitch" not in g.columns:
        return pd.DataFrame(columns=cols)
    dur = frame_durations(res.rows)
    per = g.assign(ay=g["pose_yaw"].abs(), ap=g["pose_pitch"].abs()).groupby("frame")[["ay", "ap"]].max()
    per = per.reindex(dur.index)  # every analysed frame, NaN where the face is absent
    ts = res.rows.groupby("frame", sort=True)["timestamp"].first().reindex(dur.index).to_numpy()
    extreme = ((per["ay"] > threshold_deg) | (per["ap"] > threshold_deg)).to_numpy()
    d = dur.to_numpy()
    out = []
    for a, b in runs(extreme):
        start, end = float(ts[a]), float(ts[b - 1] + d[b - 1])
        if end - start >= min_s:
            out.append((start, end, end - start, float(per["ay"].iloc[a:b].max()), float(per["ap"].iloc[a:b].max())))
    return pd.DataFrame(out, columns=cols)


def blinks(res: Results, group: Group) -> dict | None:
    """Blink count and rate, or None when the CSV has no AU45 (blink) column.

    With an AU45 intensity column, `libreface.blinks.detect_blinks` finds the blinks in the group's per-frame
    series (the largest value of its faces in each analysed frame; NaN where the face is absent); with only an
    occurrence column (`AU45_presence` / `AUxx_c`), `libreface.blinks.detect_blinks_from_occurrence` does, on
    the same per-frame series: one definition of a blink (a closure of at most `MAX_BLINK_S`) for both.

    Returns:
        {"count": blinks, "per_minute": count / screen time in minutes, "method": a short description}.
    """
    icol, pcol = f"{BLINK_AU}_intensity", f"{BLINK_AU}_presence"
    col = icol if icol in res.rows.columns else pcol if pcol in res.rows.columns else None
    if col is None:
        return None
    st = screen_time(res, group)["screen_time_s"]
    dur = frame_durations(res.rows)
    ok = group.rows[group.rows["success"] == 1]
    per = pd.to_numeric(ok[col], errors="coerce").groupby(ok["frame"]).max().reindex(dur.index)
    ts = res.rows.groupby("frame", sort=True)["timestamp"].first().reindex(dur.index).to_numpy()
    if col == icol:
        count = len(detect_blinks(ts, per.to_numpy(np.float64)))
        method = f"{icol} >= {BLINK_THRESHOLD:g} for at most {MAX_BLINK_S:g} s (libreface.blinks)"
    else:
        count = len(detect_blinks_from_occurrence(ts, per.to_numpy(np.float64)))
        method = f"{pcol} = 1 for at most {MAX_BLINK_S:g} s (libreface.blinks; the CSV has no AU45 intensity)"
    return {"count": count, "per_minute": blink_rate_per_min(count, st), "method": method}
