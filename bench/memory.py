"""Peak RSS and RSS growth of the full analyzer over a long recording (a short clip looped).

    python bench/memory.py [--video PATH] [--minutes 30] [--threads 2]

A looping source replays the video (decoding it again on each pass) with ever-increasing timestamps for `--minutes` of video time; the analyzer
writes the CSV (all columns) and a Parquet features file as `libreface` would. RSS is sampled every 500 frames.
Reported: RSS after warm-up (first 2 minutes of video), peak RSS, and the growth per hour of video from a
least-squares line through the samples after warm-up (target: < 50 MB per hour).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def looped(path: Path, minutes: float):
    """A `Source` replaying `path` (decoded again on each pass, streaming) until `minutes` of video time."""
    from libreface.sources import Frame, Source, open_source

    with open_source(path) as src:
        info = src.info
        last_ts = max(f.timestamp_s for f in src)
    period = last_ts + 1.0 / (info.fps or 30.0)

    class Loop(Source):
        def __init__(self) -> None:
            self.info = info

        def _frames(self):
            i, k = 0, 0
            while True:
                with open_source(path) as one_pass:
                    for f in one_pass:
                        t = f.timestamp_s + k * period
                        if t > minutes * 60 or self._closed:
                            return
                        yield Frame(i, t, f.rgb)
                        i += 1
                k += 1

    return Loop()


def main() -> int:
    from libreface.pipeline import Analyzer, AnalyzerOptions

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = REPO.parent / "shared" / "data" / "videos" / "2015-10-15-15-14.avi"
    p.add_argument("--video", type=Path, default=default if default.exists() else REPO / "examples" / "astronaut.mp4")
    p.add_argument("--minutes", type=float, default=30.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-features", action="store_true", help="CSV only (no Parquet features file)")
    args = p.parse_args()
    samples: list[tuple[float, float]] = []
    start_rss = rss_mb()

    def on_result(result) -> None:
        if result.frame % 500 == 0:
            samples.append((result.timestamp_s, rss_mb()))

    t0 = time.perf_counter()
    with Analyzer(AnalyzerOptions(threads=args.threads)) as a, tempfile.TemporaryDirectory() as tmp:
        s = a.analyze_to_files(looped(args.video, args.minutes), Path(tmp) / "out.csv", landmarks=True, blendshapes=True,
                               features_path=None if args.no_features else Path(tmp) / "f.parquet", on_result=on_result)
    wall = time.perf_counter() - t0
    ts, rss = np.array(samples).T
    after = ts >= 120
    slope_per_h = float(np.polyfit(ts[after] / 3600, rss[after], 1)[0]) if after.sum() >= 3 else float("nan")
    print(f"video {args.video.name} looped to {args.minutes:g} min: {s.frames} frames in {wall:.0f} s ({s.frames / wall:.1f} fps)")
    print(f"RSS before start {start_rss:.0f} MB, after warm-up {rss[after][0] if after.any() else rss[0]:.0f} MB, "
          f"peak {rss.max():.0f} MB, growth {slope_per_h:+.1f} MB per hour of video")
    step = max(1, len(ts) // 12)
    print("RSS by video time: " + ", ".join(f"{t / 60:.0f} min {r:.0f} MB" for t, r in zip(ts[::step], rss[::step])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
