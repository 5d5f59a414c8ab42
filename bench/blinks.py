"""Blink threshold check on real video: AU45 blink events vs eye-aspect-ratio closure events, per threshold.

    python bench/blinks.py [VIDEO ...] [--threads 2] [--out reports/blinks]

For each video (default: the shared real videos with faces; `multi_face.avi` keeps its first face track only),
runs the default model with `libreface.Analyzer` and builds, on the face's per-frame series (NaN where the face is
absent, so runs never bridge a missing frame):

* reference events: runs of EAR-closed frames (mean eye aspect ratio of the 478 landmarks below
  `distill.blink_check.CLOSED_FRACTION` x the face's median EAR in that video) lasting at most
  `libreface.blinks.MAX_BLINK_S`, with the same 1-frame gap merging as `libreface.blinks.detect_blinks`;
* AU45 events: `detect_blinks` on the AU45 intensity at each threshold of `THRESHOLDS`.

An AU45 event matches a reference event when their frame spans overlap (one-to-one, greedy in time order); the
report gives event-level precision, recall and F1 per threshold (pooled over videos) and the counts per video.
Caveat: EAR and MediaPipe's eyeBlink blendshapes (the default model's AU45 source) both come from the same face
mesh, so agreement is optimistic; the reference is eye closure, not FACS-coded blinks.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VIDEOS = REPO.parent / "shared" / "data" / "videos"
DEFAULT = ["2015-10-15-15-14.avi", "0686_02_003_gloria_estefan.avi", "1034_03_006_jet_li.avi",
           "1878_01_002_vladimir_putin.avi", "single_face.mp4", "sample_disfa.avi", "multi_face.avi"]
THRESHOLDS = (0.75, 1.0, 1.25, 1.5, 2.0, 2.5)
MULTI_FACE_MAX = 4
"""Faces analysed per frame; only face track 0 is scored (the first face of `multi_face.avi`)."""


@dataclass
class Series:
    """One face's per-frame series in one video: (N,) times (s), AU45 intensity 0..5 and mean EAR, NaN if absent."""

    video: str
    t: np.ndarray
    au45: np.ndarray
    ear: np.ndarray


def collect(paths: list[Path], threads: int) -> list[Series]:
    """Run the default model over `paths`; the series of face track 0 of each video."""
    from distill.blink_check import eye_aspect_ratio
    from libreface import Analyzer, AnalyzerOptions

    out = []
    with Analyzer(AnalyzerOptions(threads=threads, max_faces=MULTI_FACE_MAX)) as analyzer:
        col = analyzer.labels.au_intensity.index("AU45")
        for path in paths:
            t, au, ear = [], [], []
            for frame in analyzer.process(str(path)):
                face = next((f for f in frame.faces if f.face_id == 0 and f.success), None)
                t.append(frame.timestamp_s)
                au.append(float(face.au_intensity[col]) if face is not None else np.nan)
                ear.append(eye_aspect_ratio(face.landmarks_px) if face is not None else np.nan)
            out.append(Series(path.name, np.array(t), np.array(au), np.array(ear)))
            print(f"{path.name}: {len(t)} frames, {int(np.isfinite(au).sum())} with face 0", file=sys.stderr)
    return out


def reference_events(s: Series, closed_fraction: float | None = None):
    """EAR-closed runs of at most MAX_BLINK_S (the blink rule of `detect_blinks` on a 0/1 closed series); closed =
    EAR < `closed_fraction` (default `distill.blink_check.CLOSED_FRACTION`) x the face's median EAR."""
    from distill.blink_check import CLOSED_FRACTION
    from libreface.blinks import detect_blinks

    if not np.isfinite(s.ear).any():
        return []
    frac = CLOSED_FRACTION if closed_fraction is None else closed_fraction
    closed = np.where(np.isfinite(s.ear), (s.ear < frac * np.nanmedian(s.ear)).astype(float), np.nan)
    return detect_blinks(s.t, closed, threshold=1.0)


def match(found, ref) -> int:
    """Number of one-to-one matches between two time-ordered event lists (overlapping [start_s, end_s] spans)."""
    used = [False] * len(ref)
    n = 0
    for b in found:
        for j, r in enumerate(ref):
            if not used[j] and b.start_s <= r.end_s + 1e-9 and r.start_s <= b.end_s + 1e-9:
                used[j] = True
                n += 1
                break
    return n


def score(series: list[Series], closed_fraction: float | None = None) -> dict:
    """Per-threshold pooled precision/recall/F1 and per-video counts."""
    from libreface.blinks import detect_blinks

    per_video = {}
    totals = {th: {"found": 0, "ref": 0, "matched": 0} for th in THRESHOLDS}
    for s in series:
        ref = reference_events(s, closed_fraction)
        row = {"frames": int(len(s.t)), "face_frames": int(np.isfinite(s.au45).sum()), "reference": len(ref)}
        for th in THRESHOLDS:
            found = detect_blinks(s.t, s.au45, threshold=th)
            m = match(found, ref)
            row[f"au45@{th:g}"] = len(found)
            row[f"matched@{th:g}"] = m
            totals[th]["found"] += len(found)
            totals[th]["ref"] += len(ref)
            totals[th]["matched"] += m
        per_video[s.video] = row
    thresholds = []
    for th, c in totals.items():
        p = c["matched"] / c["found"] if c["found"] else float("nan")
        r = c["matched"] / c["ref"] if c["ref"] else float("nan")
        f1 = 2 * p * r / (p + r) if c["found"] and c["ref"] and p + r > 0 else float("nan")
        thresholds.append({"threshold": th, **c, "precision": round(p, 3), "recall": round(r, 3), "f1": round(f1, 3)})
    best = max((t for t in thresholds if np.isfinite(t["f1"])), key=lambda t: t["f1"], default=None)
    return {"thresholds": thresholds, "per_video": per_video, "best_threshold": best and best["threshold"]}


SENSITIVITY_FRACTIONS = (0.5, 0.6, 0.7)


def sensitivity(series: list[Series]) -> list[dict]:
    """F1 per threshold under other reference choices: closed fraction 0.5 / 0.6 / 0.7, each with all videos and
    with each video left out in turn (how much the best threshold rests on one rule or one video)."""
    rows = []
    for frac in SENSITIVITY_FRACTIONS:
        for left_out in [None] + [s.video for s in series]:
            r = score([s for s in series if s.video != left_out], frac)
            rows.append({"closed_fraction": frac, "left_out": left_out, "best_threshold": r["best_threshold"],
                         "f1": {f"{t['threshold']:g}": t["f1"] for t in r["thresholds"]}})
    return rows


def markdown(res: dict) -> str:
    """The result as Markdown tables."""
    lines = ["# AU45 blink events vs EAR eye-closure events", "",
             "Reference: EAR-closed runs <= 0.5 s (mean EAR < 0.6 x the face's median EAR in its video, 1-frame gaps "
             "merged). Both EAR and the default model's AU45 (MediaPipe eyeBlink blendshapes) come from MediaPipe's "
             "face mesh, so agreement is optimistic; this is eye closure, not FACS-coded blinks.", "",
             "| threshold | AU45 events | reference events | matched | precision | recall | F1 |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    for t in res["thresholds"]:
        lines.append(f"| {t['threshold']:g} | {t['found']} | {t['ref']} | {t['matched']} | {t['precision']:.3f} "
                     f"| {t['recall']:.3f} | {t['f1']:.3f} |")
    lines += ["", f"Best F1 at threshold {res['best_threshold']}.", "",
              "Sensitivity (F1 per threshold; other closed fractions, one video left out):", "",
              "| closed fraction | left out | " + " | ".join(f"F1@{t:g}" for t in THRESHOLDS) + " | best |",
              "|---:|---|" + "---:|" * (len(THRESHOLDS) + 1)]
    for r in res.get("sensitivity", []):
        cells = " | ".join(f"{r['f1'][f'{t:g}']:.3f}" for t in THRESHOLDS)
        lines.append(f"| {r['closed_fraction']:g} | {r['left_out'] or '-'} | {cells} | {r['best_threshold']} |")
    lines += ["", "Counts per video (default reference):", "",
              "| video | frames | face frames | reference | " + " | ".join(f"AU45@{t:g} (matched)" for t in THRESHOLDS) + " |",
              "|---|---:|---:|---:|" + "---:|" * len(THRESHOLDS)]
    for v, r in res["per_video"].items():
        cells = " | ".join(f"{r[f'au45@{t:g}']} ({r[f'matched@{t:g}']})" for t in THRESHOLDS)
        lines.append(f"| {v} | {r['frames']} | {r['face_frames']} | {r['reference']} | {cells} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="*", type=Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "reports" / "blinks")
    a = ap.parse_args(argv)
    paths = a.videos or [VIDEOS / v for v in DEFAULT if (VIDEOS / v).exists()]
    if not paths:
        print(f"no videos found (looked in {VIDEOS})", file=sys.stderr)
        return 1
    for p in paths:
        if not p.exists():
            print(f"{p}: no such video", file=sys.stderr)
            return 1
    series = collect(paths, a.threads)
    res = score(series)
    res["sensitivity"] = sensitivity(series)
    md = markdown(res)
    print(md)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "blinks.md").write_text(md)
    (a.out / "blinks.json").write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
