"""Start-up latency of the command: `libreface --help`, and time to the first analysed frame.

    python bench/startup.py [--repeats 5]

"first frame" runs the real command on a one-frame input (the first frame of the bundled example, saved as a
PNG in a temporary folder) and measures the whole process wall time: interpreter start, imports, model
verification and loading, landmarker creation, one frame analysed, CSV written. Median of `--repeats` runs.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def wall(cmd: list[str], cwd: Path) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    from PIL import Image

    from libreface.sources import open_source

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with open_source(REPO / "examples" / "astronaut.mp4") as src:
            Image.fromarray(next(iter(src)).rgb).save(tmp / "frame.png")
        exe = [sys.executable, "-m", "libreface"]
        wall(exe + ["--help"], tmp)  # warm the file cache
        helps = [wall(exe + ["--help"], tmp) for _ in range(args.repeats)]
        firsts = [wall(exe + ["frame.png", "-o", "frame.csv", "--quiet"], tmp) for _ in range(args.repeats)]
    print(f"libreface --help: median {statistics.median(helps):.2f} s (min {min(helps):.2f})")
    print(f"first frame analysed (whole process, one-frame input): median {statistics.median(firsts):.2f} s (min {min(firsts):.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
