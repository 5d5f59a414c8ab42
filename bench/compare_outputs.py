"""Refactor check: run the `libreface` command of two checkouts on the same inputs and compare what they write.

    python bench/compare_outputs.py --old DIR --new DIR [--inputs FILE...] [--work DIR] [--threads 2] [--timeout S]

Each checkout runs as `PYTHONPATH=<checkout> python -m libreface ...` from a neutral folder, so its own tree (and its
own `weights/`) is used, not the installed package; the script checks that before it starts. Inputs: every video and
the photo listed in ../shared/data/videos/videos.csv (`--inputs` takes paths, or names in that folder). Per input, two
runs per tree, one input per process, the old tree first and then the new one (sequential: 2 cores):

    native    --landmarks --blendshapes --features <stem>.parquet --identity  -> CSV, Parquet, <stem>.summary.json
    openface  --format openface --landmarks                                   -> CSV

CSV and summary JSON must be byte-for-byte equal; Parquet files are read with pandas and must be equal (the
feature vectors exactly, and the schema metadata). The exit status of each run must match too. Prints one table
row per input, run and file; exits 1 on any difference, 2 on bad arguments. The work folder (default: a temporary
one, removed when everything matched) keeps `old/` and `new/` outputs for a look at what differed.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VIDEOS = REPO.parent / "shared" / "data" / "videos"
MEDIA_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".jpg", ".jpeg", ".png"}
RUNS = {
    "native": lambda out, stem: ["--landmarks", "--blendshapes", "--features", str(out / f"{stem}.parquet"), "--identity"],
    "openface": lambda out, stem: ["--format", "openface", "--landmarks"],
}


@dataclass
class Run:
    """One `python -m libreface` process: exit status, wall seconds, stderr, and its output folder."""

    rc: int
    seconds: float
    stderr: str
    out: Path


def default_inputs() -> list[Path]:
    """The media of ../shared/data/videos, in the order of its videos.csv (else every media file, sorted)."""
    listing = VIDEOS / "videos.csv"
    if listing.is_file():
        with open(listing, newline="") as f:
            return [VIDEOS / row["file"] for row in csv.DictReader(f)]
    return sorted(p for p in VIDEOS.glob("*") if p.suffix.lower() in MEDIA_SUFFIXES)


def resolve_input(text: str) -> Path:
    path = Path(text)
    if not path.exists() and (VIDEOS / text).exists():
        path = VIDEOS / text
    if not path.is_file():
        raise SystemExit(f"compare_outputs: {text}: no such input file (nor in {VIDEOS})")
    return path.resolve()


def tree_env(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("HF_HUB_OFFLINE", "1")
    return env


def check_tree(tree: Path, cwd: Path) -> None:
    """Fail unless `python -m libreface` from `cwd` with PYTHONPATH=tree imports `tree`'s package."""
    if not (tree / "libreface" / "__init__.py").is_file():
        raise SystemExit(f"compare_outputs: {tree}: not a libreface checkout (no libreface/__init__.py)")
    got = subprocess.run([sys.executable, "-c", "import libreface; print(libreface.__file__)"], cwd=cwd,
                         env=tree_env(tree), capture_output=True, text=True)
    where = Path(got.stdout.strip() or ".").resolve()
    if got.returncode or tree.resolve() not in where.parents:
        raise SystemExit(f"compare_outputs: {tree}: PYTHONPATH={tree} imports libreface from {where}, not from the "
                         f"checkout ({got.stderr.strip().splitlines()[-1:] or 'no error'})")


def run_cli(tree: Path, src: Path, kind: str, out: Path, threads: int, timeout: float) -> Run:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "libreface", str(src), "-o", str(out / f"{src.stem}.csv"), "--quiet",
           "--threads", str(threads), *RUNS[kind](out, src.stem)]
    t = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=out, env=tree_env(tree), capture_output=True, text=True, timeout=timeout)
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        rc, err = -1, f"timed out after {timeout:.0f} s"
    return Run(rc, time.perf_counter() - t, err, out)


def _parquet_diff(a: Path, b: Path) -> str | None:
    """None when the two Parquet files hold equal frames (and schema metadata), else what differs."""
    import numpy as np
    import pandas as pd
    import pyarrow.parquet as pq

    if pq.read_schema(a).metadata != pq.read_schema(b).metadata:
        return "schema metadata differs"
    da, db = pd.read_parquet(a), pd.read_parquet(b)
    if list(da.columns) != list(db.columns) or len(da) != len(db):
        return f"shape/columns differ: {da.shape} {list(da.columns)} vs {db.shape} {list(db.columns)}"
    lists = [c for c in da.columns if da[c].dtype == object]
    try:
        pd.testing.assert_frame_equal(da.drop(columns=lists), db.drop(columns=lists), check_exact=True)
    except AssertionError as e:
        return str(e).splitlines()[0]
    for c in lists:
        xa = np.stack(da[c].to_numpy()) if len(da) else np.zeros((0,))
        xb = np.stack(db[c].to_numpy()) if len(db) else np.zeros((0,))
        if xa.shape != xb.shape or not np.array_equal(xa, xb):
            err = float(np.max(np.abs(xa - xb))) if xa.shape == xb.shape else float("nan")
            return f"column {c} differs (max abs diff {err:.3g})"
    return None


def _csv_hint(a: Path, b: Path) -> str:
    """Where two differing CSVs first part (line and column), for the table."""
    la, lb = a.read_text(errors="replace").splitlines(), b.read_text(errors="replace").splitlines()
    if len(la) != len(lb):
        return f"{len(la)} vs {len(lb)} lines"
    header = [h.strip() for h in la[0].split(",")] if la else []
    for i, (x, y) in enumerate(zip(la, lb)):
        if x != y:
            cols = [header[j] if j < len(header) else str(j)
                    for j, (u, v) in enumerate(zip(x.split(","), y.split(","))) if u != v]
            return f"line {i + 1} first differs ({', '.join(cols[:3]) or 'layout'}{'...' if len(cols) > 3 else ''})"
    return "bytes differ"


def compare_file(a: Path, b: Path) -> tuple[bool, str]:
    """(equal, note) for one output file of the old (a) and new (b) tree."""
    if not a.exists() and not b.exists():
        return True, "absent in both"
    if not a.exists() or not b.exists():
        return False, f"missing in {'old' if not a.exists() else 'new'}"
    if a.suffix == ".parquet":
        diff = _parquet_diff(a, b)
        return diff is None, diff or "equal (pandas)"
    if a.read_bytes() == b.read_bytes():
        return True, f"identical ({a.stat().st_size} bytes)"
    return False, _csv_hint(a, b) if a.suffix == ".csv" else "bytes differ"


def outputs_of(kind: str, stem: str) -> list[str]:
    names = [f"{stem}.csv"]
    if kind == "native":
        names += [f"{stem}.parquet", f"{stem}.summary.json"]
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", type=Path, required=True, help="checkout of the reference tree")
    p.add_argument("--new", type=Path, required=True, help="checkout of the tree under test")
    p.add_argument("--inputs", nargs="+", default=None, help="input files or names in ../shared/data/videos (default: all)")
    p.add_argument("--work", type=Path, default=None, help="folder for the outputs (default: a temporary one)")
    p.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads of each run")
    p.add_argument("--timeout", type=float, default=1800, help="seconds one run may take")
    args = p.parse_args(argv)

    inputs = [resolve_input(t) for t in args.inputs] if args.inputs else default_inputs()
    if not inputs:
        print(f"compare_outputs: no inputs (is {VIDEOS} there?)", file=sys.stderr)
        return 2
    work = (args.work or Path(tempfile.mkdtemp(prefix="compare_outputs_"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    for tree in trees.values():
        check_tree(tree, work)

    rows, different = [], 0
    for src in inputs:
        for kind in RUNS:
            runs = {}
            for label, tree in trees.items():  # one after the other, never both at once
                runs[label] = run_cli(tree, src, kind, work / label / kind, args.threads, args.timeout)
                if runs[label].rc:
                    tail = runs[label].stderr.strip().splitlines()[-1:] or ["(no stderr)"]
                    print(f"  {label} {kind} {src.name}: exit {runs[label].rc}: {tail[0]}", file=sys.stderr)
            old, new = runs["old"], runs["new"]
            timing = f"{old.seconds:.1f} / {new.seconds:.1f}"
            if old.rc != new.rc:
                rows.append((src.name, kind, "(exit status)", "DIFFERENT", f"exit {old.rc} vs {new.rc}", timing))
                different += 1
            for name in outputs_of(kind, src.stem):
                same, note = compare_file(old.out / name, new.out / name)
                rows.append((src.name, kind, Path(name).suffix.lstrip(".") if name != f"{src.stem}.summary.json"
                             else "summary.json", "same" if same else "DIFFERENT", note, timing))
                different += not same
            print(f"{src.name} {kind}: {'same' if all(r[3] == 'same' for r in rows if r[:2] == (src.name, kind)) else 'DIFFERENT'}"
                  f" ({timing} s old / new)", file=sys.stderr, flush=True)

    head = ("input", "run", "file", "result", "note", "seconds old / new")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(len(head))]
    for r in [head, tuple("-" * w for w in widths), *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    print(f"\n{len(rows) - different} of {len(rows)} comparisons equal; outputs in {work}" if different or args.work
          else f"\nall {len(rows)} comparisons equal")
    if not different and args.work is None:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
