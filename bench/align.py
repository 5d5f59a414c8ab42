"""Cost of the alignment per face, OpenCV path vs the NumPy path (what the desktop bundle runs).

    python bench/align.py [--video PATH] [--repeats 5]

Landmarks come from MediaPipe on the first 30 frames of the 640x480 webcam recording (a ~200 px face), and on
the same frames upscaled to 1920x1440 (a ~600 px face, where the pyramid does more work). Prints milliseconds
per aligned face for each path.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--video", type=Path, default=REPO.parent / "shared" / "data" / "videos" / "2015-10-15-15-14.avi")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()

    from libreface import imaging
    from libreface.align import align_face
    from libreface.landmarks import FaceFrontEnd, FrontEndOptions
    from libreface.sources import open_source

    with open_source(args.video) as src:
        frames = [f.rgb for _, f in zip(range(30), src)]
    big = [imaging.resize(f, (1920, 1440)) for f in frames[:10]]
    with FaceFrontEnd(FrontEndOptions(max_faces=1, video=False)) as fe:
        sets = {"640x480": [(f, fe.detect(f)) for f in frames], "1920x1440": [(f, fe.detect(f)) for f in big]}
    sizes = {k: round(max(fc[0].size_px for _, fc in v if fc)) for k, v in sets.items()}

    def ms_per_face(items) -> float:
        n, t = 0, time.perf_counter()
        for _ in range(args.repeats):
            for frame, faces in items:
                if faces:
                    align_face(frame, faces[0].landmarks_px, 64)
                    n += 1
        return (time.perf_counter() - t) / max(n, 1) * 1000

    rows = {}
    for path in ("opencv", "numpy"):
        imaging._cv2 = imaging._UNSET if path == "opencv" else None
        if path == "opencv" and imaging.opencv() is None:
            continue
        rows[path] = {k: ms_per_face(v) for k, v in sets.items()}
    print("| path | " + " | ".join(f"{k} (face ~{sizes[k]} px) ms/face" for k in sets) + " |")
    print("|---|" + "---:|" * len(sets))
    for path, r in rows.items():
        print(f"| {path} | " + " | ".join(f"{r[k]:.2f}" for k in sets) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
