"""Report step 6: assemble one recording's report (numbers, figures, provenance) and write it atomically."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ..outputs.atomic import write_atomic
from ..outputs.reader import Results, read_results
from . import figures, html, summaries
from .provenance import collect as collect_provenance

MAX_SEGMENT_ROWS = 40
"""Extreme-pose segments listed per person; the rest are counted."""

AU_NAMES: dict[str, str] = {
    "AU01": "inner brow raiser", "AU02": "outer brow raiser", "AU04": "brow lowerer", "AU05": "upper lid raiser",
    "AU06": "cheek raiser", "AU07": "lid tightener", "AU09": "nose wrinkler", "AU10": "upper lip raiser",
    "AU12": "lip corner puller", "AU14": "dimpler", "AU15": "lip corner depressor", "AU17": "chin raiser",
    "AU20": "lip stretcher", "AU23": "lip tightener", "AU24": "lip pressor", "AU25": "lips part",
    "AU26": "jaw drop", "AU28": "lip suck", "AU45": "blink",
}
"""FACS names of the AUs libreface and OpenFace report, for labels."""


def default_output(csv_path: str | os.PathLike) -> Path:
    """`<csv without .csv>.html` next to the CSV, e.g. out.csv -> out.html."""
    p = Path(csv_path)
    return p.with_suffix(".html") if p.suffix.lower() == ".csv" else p.with_name(p.name + ".html")


def make_report(csv_path: str | os.PathLike, output: str | os.PathLike | None = None, *,
                provenance: dict | None = None, pose_threshold_deg: float = summaries.POSE_THRESHOLD_DEG,
                pose_min_s: float = summaries.POSE_MIN_S) -> Path:
    """Write the HTML report of one results CSV (native or OpenFace layout) and return its path.

    Args:
        csv_path: a libreface results CSV.
        output: the HTML file; default `default_output(csv_path)`.
        provenance: what the caller knows about the run (`model`, `model_sha256`, `source`, `options`,
            `libreface_version`); see `provenance.collect`.
        pose_threshold_deg, pose_min_s: extreme head pose = |yaw| or |pitch| beyond this many degrees for at least
            this many seconds.

    Raises:
        InputError: the CSV cannot be read; OutputError: the HTML cannot be written;
        ImportError: matplotlib (the `report` extra) is missing, with the install hint as its message.
    """
    figures.require_matplotlib()
    res = read_results(csv_path)
    out = Path(output) if output is not None else default_output(csv_path)
    return write_atomic(out, render(res, provenance, pose_threshold_deg, pose_min_s))


def render(res: Results, provenance: dict | None = None, pose_threshold_deg: float = summaries.POSE_THRESHOLD_DEG,
           pose_min_s: float = summaries.POSE_MIN_S) -> str:
    """The report of `res` as one HTML document (see `make_report`)."""
    rows = res.rows
    q = summaries.quality(res)
    ts_frames = rows.groupby("frame", sort=True)["timestamp"].first()
    t0 = float(ts_frames.min()) if len(ts_frames) else 0.0
    t1 = t0 + q["duration_s"]
    groups = summaries.groups(res)
    segs = {g.label: summaries.pose_segments(res, g, pose_threshold_deg, pose_min_s) for g in groups}
    nav = {"provenance": "Provenance", "quality": "Analysis quality"}
    sections = [html.section("provenance", "Provenance", html.kv_table(collect_provenance(res, provenance)))]
    sections.append(html.section("quality", "Analysis quality", _quality(res, q, ts_frames, t0, t1, segs,
                                                                         pose_threshold_deg, pose_min_s)))
    for i, g in enumerate(groups):
        anchor = f"person-{g.person_id}" if g.person_id >= 0 else f"group-{i}"
        nav[anchor] = g.label
        sections.append(html.section(anchor, g.label, _group(res, g, t0, t1, segs[g.label], pose_threshold_deg,
                                                             anchor)))
    sections.append(html.section("notes", "How to read this report", _NOTES.format(thr=pose_threshold_deg,
                                                                                  min_s=pose_min_s)))
    nav["notes"] = "Notes"
    made = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    sub = (f"{figures.clock(q['duration_s'])} of video, {q['frames']:,} analysed frames, "
           f"{len([g for g in groups if g.person_id >= 0]) or 'no'} identified person(s); report made {made}")
    return html.page(f"libreface report: {res.path.name}", sub, nav, sections)


def _quality(res: Results, q: dict, ts_frames: pd.Series, t0: float, t1: float, segs: dict[str, pd.DataFrame],
             thr: float, min_s: float) -> str:
    rows = res.rows
    faces = rows[rows["face_id"] >= 0]
    conf = q["confidence_mean"]
    body = html.cards({
        "analysed frames": f"{q['frames']:,}",
        "duration": figures.clock(q["duration_s"]),
        "frames with a face": f"{q['pct_frames_with_face']:.1f}%",
        "frames analysed (success)": f"{q['pct_frames_analysed']:.1f}%",
        "mean detector confidence": "–" if conf is None else f"{conf:.2f}",
        "frame step": f"{q['median_step_s'] * 1000:.0f} ms",
        "most faces in a frame": str(q["max_faces_in_a_frame"]),
    })
    body += "<h3>Face detection over time</h3>"
    has_face = np.isin(ts_frames.index.to_numpy(), faces["frame"].unique()).astype(np.float64)
    if "confidence" in faces.columns:
        body += figures.detection_over_time(ts_frames.to_numpy(), has_face, faces["timestamp"].to_numpy(),
                                            pd.to_numeric(faces["confidence"], errors="coerce").to_numpy(), t0, t1)
    body += f"<h3>Extreme head pose (|yaw| or |pitch| &gt; {thr:g}&deg; for &ge; {min_s:g} s)</h3>"
    lines = []
    for label, s in segs.items():
        for r in s.head(MAX_SEGMENT_ROWS).itertuples():
            lines.append([label, figures.clock(r.start_s), figures.clock(r.end_s), html.num(r.duration_s, 1),
                          html.num(r.max_abs_yaw, 0), html.num(r.max_abs_pitch, 0)])
    total = sum(len(s) for s in segs.values())
    if lines:
        body += html.table(["who", "from", "to", "seconds", "max |yaw|°", "max |pitch|°"], lines,
                           [False, True, True, True, True, True])
        if total > len(lines):
            body += f'<p class="note">{total - len(lines)} more segments not listed.</p>'
    else:
        body += '<p class="note">None: the head stayed within the threshold (or no pose was recorded).</p>'
    return body


def _group(res: Results, g: summaries.Group, t0: float, t1: float, segs: pd.DataFrame, thr: float,
           anchor: str) -> str:
    st = summaries.screen_time(res, g)
    blink = summaries.blinks(res, g)
    ok = g.rows[g.rows["success"] == 1]
    card = {"screen time": figures.clock(st["screen_time_s"]),
            "of the recording": f"{st['pct_of_recording']:.1f}%",
            "frames with this face": f"{st['frames']:,}",
            "analysed rows": f"{len(ok):,}"}
    if st["first_s"] is not None:
        card["first / last seen"] = f"{figures.clock(st['first_s'])} / {figures.clock(st['last_s'])}"
    if blink is not None:
        card["blinks per minute"] = html.num(blink["per_minute"], 1)
        card["blinks"] = f"{blink['count']:,}"
    body = html.cards(card)
    if not len(ok):
        return body + '<p class="note">No analysed face rows for this group.</p>'
    t = ok["timestamp"].to_numpy()
    aus = res.au_intensity
    if aus:
        body += "<h3>Action unit intensity over time</h3>"
        body += ('<p class="note">One lane per AU, each from 0 (its baseline) to 5. Dark line: mean '
                 'intensity per time bin; light band: up to the highest value in the bin. Gaps: the face was not '
                 'analysed.</p>')
        body += figures.au_timelines(t, {a: pd.to_numeric(ok[f"{a}_intensity"], errors="coerce").to_numpy()
                                         for a in aus}, t0, t1, AU_NAMES, name=f"{anchor}-au")
    table = summaries.au_table(res, g)
    body += '<div class="cols"><div><h3>Action units</h3>'
    body += html.table(
        ["AU", "name", "mean intensity", "90th percentile", "% of time active"],
        [[a, html.esc(AU_NAMES.get(a, "")), html.num(r["mean"]), html.num(r["p90"]), html.bar(r["pct_active"])]
         for a, r in table.iterrows()], [False, False, True, True, False], raw=True)
    body += "</div>"
    if res.expressions:
        et = summaries.expression_table(res, g)
        body += "<div><h3>Expressions</h3>"
        body += html.table(["expression", "% of time dominant", "mean probability"],
                           [[html.esc(c), html.bar(r["pct_dominant"]), html.num(r["mean_probability"])]
                            for c, r in et.iterrows()], [False, False, True], raw=True)
        body += "</div>"
    body += "</div>"
    if res.expressions:
        body += "<h3>Expression probabilities over time</h3>"
        probs = ok[res.expressions].apply(pd.to_numeric, errors="coerce").to_numpy()
        body += figures.expressions_over_time(t, probs, res.expressions, t0, t1, name=f"{anchor}-expr")
    pose = {k: pd.to_numeric(g.rows[f"pose_{k}"], errors="coerce").to_numpy()
            for k in ("yaw", "pitch", "roll") if f"pose_{k}" in g.rows.columns}
    if pose:
        body += "<h3>Head pose</h3>"
        body += figures.head_pose(g.rows["timestamp"].to_numpy(), pose, t0, t1, thr,
                                  list(zip(segs["start_s"], segs["end_s"])), name=f"{anchor}-pose")
    if blink is not None:
        body += f'<p class="note">Blinks counted as {html.esc(blink["method"])}.</p>'
    return body


_NOTES = """<ul class="note">
<li>All summaries use the rows where the face was analysed (<code>success</code> = 1). Screen time adds up, over the
frames where the face appears, the time to the next analysed frame.</li>
<li><b>% of time active</b>: the share of analysed rows whose AU occurrence (<code>_presence</code> /
<code>_c</code>) is 1. <b>90th percentile</b>: 10% of the analysed rows have a higher intensity (0-5 scale).</li>
<li><b>% of time dominant</b>: the share of analysed rows where the expression is the most probable class.</li>
<li><b>Extreme head pose</b>: |yaw| or |pitch| above {thr:g}&deg; for at least {min_s:g} s (change with
<code>--pose-threshold</code> and <code>--pose-min-seconds</code>). AU and expression values are less reliable there.</li>
<li>Plots show time bins (at most 2,000 per curve); the tables use every row. This report holds numbers and plots
only, no face image.</li>
</ul>"""
