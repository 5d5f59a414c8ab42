"""Batch throughput (video seconds per wall second) and memory per worker, and what 500 hours of video would take.

    python bench/batch.py [--videos DIR] [--n 6] [--seconds S] [--configs jobs1,jobs2,dask2] [--every N]

Recordings: the videos of `--videos` (default ../shared/data/videos when present), else `--n` copies of
examples/astronaut.mp4; at least `--n` of them (a folder's files are used again, under other names, when it has
fewer). `--seconds S` cuts each to its first S seconds (re-encoded, mpeg4) for a quick run. Each configuration
analyses all of them into a fresh folder with `libreface.batch.run_batch`, as `libreface batch` does:

    jobs1   --jobs 1           one local worker process, ONNX threads = cores
    jobs2   --jobs 2           two local worker processes, ONNX threads = cores // 2
    dask2   --dask-local 2     a 2-worker Dask LocalCluster on 127.0.0.1

Reported per configuration: wall time end to end (worker start and model loading included), video seconds per wall
second, the median speed of one worker on one file (speed_x in the ledger), and the peak resident memory of a worker
process (ru_maxrss, from the ledger). The estimate for 500 hours scales the best configuration's throughput per core.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
CONFIGS = {"jobs1": {"jobs": 1}, "jobs2": {"jobs": 2}, "dask2": {"dask_local": 2}}


def cut(src: Path, dst: Path, seconds: float) -> Path:
    """The first `seconds` of `src`, re-encoded with mpeg4 (even size), frame rate kept."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vs = inp.streams.video[0]
        rate = Fraction(float(vs.average_rate or 25)).limit_denominator(1001)  # mpeg4: time base below 2^16
        stream = out.add_stream("mpeg4", rate=rate)
        stream.width, stream.height = vs.codec_context.width // 2 * 2, vs.codec_context.height // 2 * 2
        stream.pix_fmt, stream.max_b_frames, stream.bit_rate = "yuv420p", 0, 4_000_000
        for i, frame in enumerate(inp.decode(vs)):
            if i >= seconds * float(rate):
                break
            img = frame.to_ndarray(format="rgb24")[: stream.height, : stream.width]
            out.mux(stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(stream.encode())
    return dst


def recordings(args, tmp: Path) -> list[Path]:
    folder = args.videos
    if folder is None and (REPO.parent / "shared" / "data" / "videos").is_dir():
        folder = REPO.parent / "shared" / "data" / "videos"
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES) if folder else []
    found = found or [REPO / "examples" / "astronaut.mp4"]
    out = []
    for i in range(max(args.n, len(found))):
        src = found[i % len(found)]
        dst = tmp / "videos" / f"{i:02d}_{src.stem}.mp4"
        dst.parent.mkdir(parents=True, exist_ok=True)
        if args.seconds:
            cut(src, dst, args.seconds)
        else:
            dst = dst.with_suffix(src.suffix)
            shutil.copy(src, dst)
        out.append(dst)
    return out


def run(config: str, videos: list[Path], tmp: Path, every: int) -> dict:
    from libreface.batch import BatchSettings, read_ledger, run_batch

    out = tmp / config
    t0 = time.perf_counter()
    report = run_batch(videos, out, BatchSettings(every=every), retries=0, quiet_native_logs=True, **CONFIGS[config])
    wall = time.perf_counter() - t0
    ledger = read_ledger(out)
    done = ledger[ledger["status"] == "done"]
    video_s = float(done["duration_s"].astype(float).sum())
    return {
        "config": config, "files": len(done), "failed": len(report.failed), "video_s": video_s, "wall_s": wall,
        "throughput": video_s / wall, "frames": int(done["frames"].astype(int).sum()),
        "one_file_speed_x": statistics.median(done["speed_x"].astype(float)) if len(done) else float("nan"),
        "peak_rss_mb": float(done["peak_rss_mb"].astype(float).max()) if len(done) else float("nan"),
        "workers": CONFIGS[config].get("jobs") or CONFIGS[config].get("dask_local"),
    }


def main() -> int:
    from libreface.models.session import default_threads

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=Path, default=None, help="folder of videos; default ../shared/data/videos")
    p.add_argument("--n", type=int, default=6, help="at least this many recordings")
    p.add_argument("--seconds", type=float, default=0.0, help="cut each recording to its first S seconds (0 = whole)")
    p.add_argument("--configs", default="jobs1,jobs2,dask2", help=f"comma-separated, from {', '.join(CONFIGS)}")
    p.add_argument("--every", type=int, default=1, help="analyse every N-th frame (as libreface batch --every)")
    args = p.parse_args()
    configs = [c for c in args.configs.split(",") if c]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration(s) {', '.join(unknown)}; choose from {', '.join(CONFIGS)}")
    cores = default_threads()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(f"cores: {cores}, load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    with tempfile.TemporaryDirectory(prefix="libreface-bench-batch-") as tmp_name:
        tmp = Path(tmp_name)
        videos = recordings(args, tmp)
        print(f"recordings: {len(videos)} ({', '.join(v.name for v in videos[:4])}{', ...' if len(videos) > 4 else ''})"
              f"{f', first {args.seconds:g} s of each' if args.seconds else ''}, every {args.every} frame(s)")
        rows = []
        for config in configs:
            r = run(config, videos, tmp, args.every)
            rows.append(r)
            failed = f"; {r['failed']} FAILED" if r["failed"] else ""
            print(f"{r['config']:6s} {r['files']} files, {r['frames']} frames, {r['video_s']:.1f} video-s in "
                  f"{r['wall_s']:.1f} s wall -> {r['throughput']:.2f} video-s per wall-s; one worker on one file "
                  f"{r['one_file_speed_x']:.2f}x real time; worker peak RSS {r['peak_rss_mb']:.0f} MB{failed}",
                  flush=True)
    best = max(rows, key=lambda r: r["throughput"])
    per_core = best["throughput"] / cores  # every configuration keeps all cores busy (threads = cores // workers)
    hours = 500.0
    wall_here_h = hours * 3600 / best["throughput"] / 3600
    core_hours = hours / per_core
    print(f"\n500 hours of video, from {best['config']} ({best['throughput']:.2f} video-s per wall-s on {cores} cores, "
          f"{per_core:.2f} per core):")
    print(f"  on this machine: {wall_here_h:,.0f} h wall ({wall_here_h / 24:,.1f} days)")
    print(f"  compute: {core_hours:,.0f} core-hours; to finish in 24 h wall: {core_hours / 24:,.0f} cores "
          f"(about {-(-core_hours // (24 * 32)):.0f} nodes of 32 cores), {best['peak_rss_mb']:.0f} MB per "
          "single-threaded worker")
    for cores_avail in (16, 64, 256):
        print(f"  with {cores_avail:3d} cores (one single-threaded worker each): {core_hours / cores_avail:,.1f} h "
              f"wall, {cores_avail * best['peak_rss_mb'] / 1024:,.0f} GB of worker memory")
    print("(the estimate assumes throughput grows linearly with cores, as it does for independent recordings "
          "until storage or memory bandwidth limit it; rerun on a quiet machine for the README)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
