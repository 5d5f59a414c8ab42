"""Report step 8: the study page of a batch folder: one row per recording and person, the per-recording summaries."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from ..errors import InputError
from ..outputs.atomic import write_atomic
from ..outputs.reader import read_results
from . import html, summaries
from .figures import clock, require_matplotlib

LEDGER_SKIP = {"attempts", "settings", "started_at", "finished_at", "worker", "csv", "features", "model_sha256",
               "landmarker_sha256", "peak_rss_mb", "speed_x", "wall_s", "warning", "error"}


def _ledger(outdir: Path) -> dict[str, dict]:
    try:
        with open(outdir / "ledger.csv", encoding="utf-8", newline="") as f:
            return {r["recording"]: r for r in csv.DictReader(f) if r.get("recording")}
    except (OSError, csv.Error, KeyError):
        return {}


def study_rows(outdir: Path) -> tuple[list[str], list[dict]]:
    """(AUs, rows): one row per recording x person of `OUTDIR/csv/*.csv` (person "all" without identities), with
    the ledger's metadata columns, screen time, detection rate, blinks per minute, per-AU mean intensity and % active,
    per-expression % dominant (the same numbers as each recording's report)."""
    ledger = _ledger(outdir)
    rows, aus = [], []
    for path in sorted((outdir / "csv").glob("*.csv")):
        res = read_results(path)
        aus += [a for a in res.aus if a not in aus]
        q = summaries.quality(res)
        meta = {k: v for k, v in ledger.get(path.stem, {}).items() if k not in LEDGER_SKIP and k != "recording"}
        for g in summaries.groups(res):
            st = summaries.screen_time(res, g)
            b = summaries.blinks(res, g)
            at = summaries.au_table(res, g)
            et = summaries.expression_table(res, g)
            row = {"recording": path.stem, **meta, "person": "all" if g.person_id < 0 and g.label == "Everyone"
                   else (g.person_id if g.person_id >= 0 else "unassigned"),
                   "duration_s": q["duration_s"], "pct_frames_with_face": q["pct_frames_with_face"],
                   "screen_time_s": st["screen_time_s"], "blinks_per_min": b["per_minute"] if b else float("nan")}
            for a, r in at.iterrows():
                row[f"{a}_mean"], row[f"{a}_pct_active"] = r["mean"], r["pct_active"]
            for c, r in et.iterrows():
                row[f"{c}_pct_dominant"] = r["pct_dominant"]
            rows.append(row)
    return aus, rows


def make_study_report(outdir: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Write the study page of a `libreface batch` folder (default `OUTDIR/reports/study.html`) and return its path.

    Raises:
        InputError: OUTDIR has no `csv/` folder with CSVs; ImportError: matplotlib is missing.
    """
    require_matplotlib()
    outdir = Path(outdir)
    if not any((outdir / "csv").glob("*.csv")):
        raise InputError(f"{outdir}: no csv/<recording>.csv files; expected the -o folder of `libreface batch`")
    out = Path(output) if output is not None else outdir / "reports" / "study.html"
    aus, rows = study_rows(outdir)
    cols = [c for c in rows[0] if c not in ("duration_s", "pct_frames_with_face", "screen_time_s", "blinks_per_min")
            and not c.endswith(("_mean", "_pct_active", "_pct_dominant"))]
    exprs = [k[:-len("_pct_dominant")] for k in rows[0] if k.endswith("_pct_dominant")]
    head = cols + ["duration", "% frames with a face", "screen time", "blinks / min"]
    body = []
    for r in rows:
        rec = html.esc(r["recording"])
        link = out.parent / f"{r['recording']}.html"
        cells = [f'<a href="{rec}.html">{rec}</a>' if link.is_file() else rec] + [html.esc(r[c]) for c in cols[1:]]
        cells += [clock(r["duration_s"]), html.num(r["pct_frames_with_face"], 1), clock(r["screen_time_s"]),
                  html.num(r["blinks_per_min"], 1)]
        body.append(cells)
    n = [False] * len(cols) + [True] * 4
    parts = [html.table(head, body, n, raw=True)]
    au_head = ["recording", "person"] + [f"{a} mean / % active" for a in aus]
    au_rows = [[html.esc(r["recording"]), html.esc(r["person"])]
               + [f'{html.num(r.get(f"{a}_mean"))} / {html.num(r.get(f"{a}_pct_active"), 1)}%' for a in aus]
               for r in rows]
    parts.append("<h3>Action units: mean intensity / % of time active</h3>")
    parts.append(html.table(au_head, au_rows, [False, False] + [True] * len(aus), raw=True))
    if exprs:
        parts.append("<h3>Expressions: % of time dominant</h3>")
        parts.append(html.table(["recording", "person"] + exprs,
                                [[html.esc(r["recording"]), html.esc(r["person"])]
                                 + [html.num(r.get(f"{c}_pct_dominant"), 1) for c in exprs] for r in rows],
                                [False, False] + [True] * len(exprs), raw=True))
    sections = [html.section("recordings", "Recordings and participants", "".join(parts))]
    doc = html.page(f"libreface study: {outdir.resolve().name}", f"{len({r['recording'] for r in rows})} recordings, "
                    f"{len(rows)} rows (one per recording and person)", {"recordings": "Recordings"}, sections)
    return write_atomic(out, doc)
