"""Identity step, reporting: per-person summary (screen time, mean expressions) of native rows with `person_id`."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..blinks import blink_column, blink_summary
from ..outputs.reader import expression_columns_in


def _expression_columns(df, expressions) -> list[str]:
    if expressions is None:
        expressions = (df.attrs.get("libreface") or {}).get("expressions") or expression_columns_in(list(df.columns))
    return [c for c in expressions if c in df.columns]


def summarize(df, expressions: Sequence[str] | None = None) -> dict:
    """Per-recording summary of native rows that carry `person_id`, ready for `json.dump`.

    Args:
        df: native rows (`libreface.analyze(...)` or `pd.read_csv` of a native CSV): `frame`, `face_id`,
            `person_id`, `timestamp` (seconds), `success` and the expression probability columns.
        expressions: expression column names; default `df.attrs["libreface"]["expressions"]`, else the columns
            the native layout writes just before `expression` (`outputs.reader.expression_columns_in`).

    Returns:
        {"frames": analysed frames, "frames_with_faces", "duration_s", "main_person": 0 or -1,
         "persons": [{"person_id", "main", "frames", "rows", "screen_time_s", "first_timestamp_s",
                      "last_timestamp_s", "mean_expression": {class: mean probability over analysed rows},
                      "dominant_expression", "blinks", "blink_rate_per_min"}],
         "unassigned": {"frames", "rows"} for face rows with person_id -1 (flagged faces)}.
        Screen time sums, over the frames where the person appears, the time to the next analysed frame (the
        median step for the last frame), so it is right with `--every` / `--fps` subsampling too.
        Blinks come from the AU45 intensity column (see `libreface.blinks`; rate per minute of screen time);
        both are None when the model has no AU45.
    """
    import pandas as pd

    for col in ("frame", "face_id", "person_id", "timestamp"):
        if col not in df.columns:
            raise ValueError(f"summarize needs native rows with a {col!r} column; got columns {list(df.columns)[:8]}…")
    exprs = _expression_columns(df, expressions)
    blink_col = blink_column(list(df.columns))
    frames = df.groupby("frame", sort=True)["timestamp"].first()
    ts = frames.to_numpy(np.float64)
    steps = np.diff(ts)
    dur = pd.Series(np.append(steps, np.median(steps) if len(steps) else 0.0), index=frames.index)
    face_rows = df[df["face_id"] >= 0]
    pid = pd.to_numeric(face_rows["person_id"], errors="coerce").fillna(-1).astype(np.int64)
    persons = []
    for p in sorted(set(pid.tolist()) - {-1}):
        rows = face_rows[pid == p]
        fr = np.unique(rows["frame"].to_numpy())
        ok = rows[rows["success"] == 1] if "success" in rows.columns else rows
        means = {c: (None if ok[c].isna().all() else round(float(ok[c].mean()), 4)) for c in exprs}
        known = {c: v for c, v in means.items() if v is not None}
        screen_time = float(dur.loc[fr].sum())
        blinks = {"blinks": None, "blink_rate_per_min": None}
        if blink_col is not None:
            blinks = blink_summary(rows["timestamp"], pd.to_numeric(rows[blink_col], errors="coerce"),
                                   groups=rows["face_id"], face_time_s=screen_time)
            if blinks["blink_rate_per_min"] != blinks["blink_rate_per_min"]:  # NaN: no screen time
                blinks["blink_rate_per_min"] = None
        persons.append({
            "person_id": int(p), "main": int(p) == 0, "frames": int(len(fr)), "rows": int(len(rows)),
            "screen_time_s": round(screen_time, 3),
            "first_timestamp_s": round(float(rows["timestamp"].min()), 3),
            "last_timestamp_s": round(float(rows["timestamp"].max()), 3),
            "mean_expression": means,
            "dominant_expression": max(known, key=known.get) if known else None,
            **blinks,
        })
    unassigned = face_rows[pid == -1]
    return {
        "frames": int(len(frames)),
        "frames_with_faces": int(face_rows["frame"].nunique()),
        "duration_s": round(float(dur.sum()), 3),
        "main_person": 0 if any(p["person_id"] == 0 for p in persons) else -1,
        "persons": persons,
        "unassigned": {"frames": int(unassigned["frame"].nunique()), "rows": int(len(unassigned))},
    }
