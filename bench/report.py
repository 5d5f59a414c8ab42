"""Speed of `libreface report` on a 1-hour recording: a synthetic native CSV (90,000 rows at 25 fps).

    python bench/report.py [--minutes 60] [--fps 25] [--repeats 3] [--persons 1]

The CSV has every column of the default model's native layout (taken from its model card), with smooth random AU
intensities, occurrences derived from them, expression probabilities that sum to 1, a head pose that sometimes turns
far away, and short stretches without a face. It is written to a temporary folder and deleted afterwards (never
commit it). The timed command is the whole process, `python -m libreface report CSV -o HTML`, interpreter start
included; the median of `--repeats` runs is printed with the CSV and HTML sizes.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _walk(rng: np.random.Generator, n: int, k: int, step: float, pull: float = 0.01) -> np.ndarray:
    """(n, k) mean-reverting random walks (AR(1)), starting at 0."""
    x = np.zeros((n, k))
    noise = rng.normal(0, step, (n, k))
    for i in range(1, n):
        x[i] = x[i - 1] * (1 - pull) + noise[i]
    return x


def synth_csv(path: Path, minutes: float = 60, fps: float = 25, persons: int = 1, seed: int = 0) -> int:
    """Write a synthetic native results CSV of the default model to `path`; returns its row count."""
    from libreface.models.registry import DEFAULT_MODEL
    from libreface.models.session import StudentModel
    from libreface.outputs import native_columns
    from libreface.results import OutputLabels

    c = StudentModel.load(DEFAULT_MODEL).card
    labels = OutputLabels(c.au_intensity, c.au_occurrence, c.occurrence_threshold, c.expressions, c.feature_dim,
                          DEFAULT_MODEL)
    cols = native_columns(labels)
    rng = np.random.default_rng(seed)
    n = int(minutes * 60 * fps)
    frame = np.repeat(np.arange(n), persons)
    rows = len(frame)
    df = pd.DataFrame(index=range(rows))
    df["frame"] = frame
    df["face_id"] = np.tile(np.arange(persons), n)
    df["person_id"] = -1 if persons == 1 else df["face_id"]
    df["timestamp"] = frame / fps
    face = np.ones(rows, bool)
    for start in rng.integers(0, rows, size=max(1, rows // 3000)):  # ~30 short stretches per hour without a face
        face[start:start + int(rng.integers(10, 200))] = False
    df["confidence"] = np.clip(0.93 + rng.normal(0, 0.03, rows), 0, 1)
    df["success"] = 1
    box = np.array([280.0, 120.0, 380.0, 230.0]) + _walk(rng, rows, 1, 0.5)
    for i, name in enumerate(("box_x0", "box_y0", "box_x1", "box_y1")):
        df[name] = box[:, 0] + [280, 120, 380, 230][i] - 280
    pose = _walk(rng, rows, 3, 1.2, 0.005) * np.array([0.8, 1.5, 0.5])
    df["pose_pitch"], df["pose_yaw"], df["pose_roll"] = pose[:, 0], pose[:, 1], pose[:, 2]
    inten = np.clip(_walk(rng, rows, len(c.au_intensity), 0.08) + 0.6, 0, 5)
    for i, au in enumerate(c.au_intensity):
        df[f"{au}_intensity"] = inten[:, i]
    prob = 1 / (1 + np.exp(-(_walk(rng, rows, len(c.au_occurrence), 0.15) - 0.5)))
    for i, au in enumerate(c.au_occurrence):
        df[f"{au}_presence"] = (prob[:, i] >= c.occurrence_threshold).astype(np.int64)
    for i, au in enumerate(c.au_occurrence):
        df[f"{au}_probability"] = prob[:, i]
    logits = _walk(rng, rows, len(c.expressions), 0.2) + np.eye(len(c.expressions))[0] * 2
    e = np.exp(logits - logits.max(1, keepdims=True))
    e /= e.sum(1, keepdims=True)
    for i, cls in enumerate(c.expressions):
        df[cls] = e[:, i]
    df["expression"] = np.array(c.expressions)[e.argmax(1)]
    other = [x for x in cols if x not in df.columns]  # columns newer than this script (gaze, ...): smooth values
    if other:
        df[other] = _walk(rng, rows, len(other), 0.5, 0.01)
    df = df[cols]
    value_cols = [x for x in cols if x not in ("frame", "face_id", "person_id", "timestamp", "success")]
    df[value_cols] = df[value_cols].astype(object).where(np.repeat(face[:, None], len(value_cols), 1), None)
    df.loc[~face, "success"] = 0
    df.loc[~face, "face_id"] = -1
    if persons > 1:  # a faceless frame has one row: keep the first of its rows
        df = df[face | (df.groupby("frame").cumcount() == 0).to_numpy()]
    df.to_csv(path, index=False, float_format="%.4f")
    return len(df)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=60)
    p.add_argument("--fps", type=float, default=25)
    p.add_argument("--persons", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv, html = Path(tmp) / "hour.csv", Path(tmp) / "hour.html"
        t = time.perf_counter()
        n = synth_csv(csv, args.minutes, args.fps, args.persons)
        print(f"synthetic CSV: {n:,} rows, {csv.stat().st_size / 1e6:.1f} MB (made in {time.perf_counter() - t:.1f} s)")
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "libreface", "report", str(csv), "-o", str(html), "--quiet"],
                           check=True)
            times.append(time.perf_counter() - t)
        print(f"libreface report: median {statistics.median(times):.2f} s wall (runs: "
              f"{', '.join(f'{x:.2f}' for x in times)}), HTML {html.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
