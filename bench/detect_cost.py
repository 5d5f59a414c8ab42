"""Worst-case detection and identity cost per frame with many faces.

    python bench/detect_cost.py            # about 2 minutes on 2 busy cores

Frames are built by tiling face pictures that need no download: skimage's astronaut (NASA, public domain) and
camera, matplotlib's grace_hopper.jpg (US Navy, public domain) when matplotlib is installed, and the shared
multi_face.jpg (5 faces) when ../shared/data is present. Each tile is mirrored or rescaled a little so that no two
are identical. Printed: median and worst time per call of

* `detect_faces_capped` (copy capped at 1024 px, MediaPipe in IMAGE mode, at most `max_faces` candidates);
* `FaceFrontEnd.detect` in VIDEO mode (the pipeline's landmark stage), first frame (tile scan) and later frames;
* `IdentityResolver.observe` with dlib embeddings: the default cap (1 embedding per frame) and no cap.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libreface.crop import detect_faces_capped  # noqa: E402
from libreface.landmarks import FaceFrontEnd, FrontEndOptions, quiet_native_logs  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def face_tiles() -> list[np.ndarray]:
    """Head-and-shoulders tiles, (H, W, 3) uint8 RGB, each with one face."""
    from skimage import data

    tiles = [data.astronaut()[20:320, 90:360], np.dstack([data.camera()[40:300, 130:330]] * 3)]
    try:
        import matplotlib
        from PIL import Image

        gh = Path(matplotlib.__file__).parent / "mpl-data" / "sample_data" / "grace_hopper.jpg"
        tiles.append(np.asarray(Image.open(gh).convert("RGB"))[60:420, 60:450])
    except ImportError:
        pass
    photo = DATA / "videos" / "multi_face.jpg"
    if photo.is_file():
        from libreface.sources import open_source

        with open_source(photo) as src:
            rgb = next(iter(src)).rgb
        for x0, y0, x1, y1 in detect_faces_capped(rgb, max_faces=8):
            s = 1.4 * max(x1 - x0, y1 - y0)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            a, b = int(max(0, cy - s)), int(min(rgb.shape[0], cy + s))
            c, d = int(max(0, cx - s)), int(min(rgb.shape[1], cx + s))
            tiles.append(rgb[a:b, c:d])
    return tiles


def tiled_frame(n: int, width: int, height: int, tiles: list[np.ndarray]) -> np.ndarray:
    """A width x height frame with n faces on a grid (tiles cycled, alternately mirrored)."""
    import cv2

    cols = int(np.ceil(np.sqrt(n * width / height)))
    rows = int(np.ceil(n / cols))
    cw, ch = width // cols, height // rows
    frame = np.full((height, width, 3), 90, np.uint8)
    for k in range(n):
        t = tiles[k % len(tiles)]
        if (k // len(tiles)) % 2:
            t = t[:, ::-1]
        s = min(cw / t.shape[1], ch / t.shape[0]) * (0.9 if k % 3 else 0.75)
        t = cv2.resize(np.ascontiguousarray(t), (max(1, int(t.shape[1] * s)), max(1, int(t.shape[0] * s))),
                       interpolation=cv2.INTER_AREA)
        r, c = divmod(k, cols)
        y, x = r * ch + (ch - t.shape[0]) // 2, c * cw + (cw - t.shape[1]) // 2
        frame[y:y + t.shape[0], x:x + t.shape[1]] = t
    return frame


def timed(fn, repeats: int) -> tuple[float, float, object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), max(times), out


def main() -> int:
    quiet_native_logs()
    tiles = face_tiles()
    print(f"{len(tiles)} distinct face tiles; times in ms per call (median / worst)\n")
    frames = {
        "12 faces, 1280x720": tiled_frame(12, 1280, 720, tiles),
        "16 faces, 1920x1080": tiled_frame(16, 1920, 1080, tiles),
        "24 faces, 3840x2160": tiled_frame(24, 3840, 2160, tiles),
    }
    print(f"{'step':58s} {'frame':22s} {'found':>5s} {'median':>7s} {'worst':>7s}")
    for max_faces in (4, 10, 32):
        with FaceFrontEnd(FrontEndOptions(max_faces=max_faces, video=False)) as fe:
            for name, frame in frames.items():
                med, worst, boxes = timed(lambda f=frame, n=max_faces, fe=fe: detect_faces_capped(f, 1024, n, fe), 3)
                print(f"{'detect_faces_capped (1024 px copy), max_faces=' + str(max_faces):58s} {name:22s} "
                      f"{len(boxes):5d} {med * 1e3:7.0f} {worst * 1e3:7.0f}")
    for max_faces in (10,):
        for name, frame in list(frames.items())[:2]:
            with FaceFrontEnd(FrontEndOptions(max_faces=max_faces, video=True)) as fe:
                t0 = time.perf_counter()
                faces = fe.detect(frame, 0)
                first = time.perf_counter() - t0
                clock = iter(range(33, 10**6, 33))
                med, worst, faces2 = timed(lambda f=frame, fe=fe, c=clock: fe.detect(f, next(c)), 6)
            print(f"{'FaceFrontEnd.detect VIDEO (full frame), first frame':58s} {name:22s} {len(faces):5d} "
                  f"{first * 1e3:7.0f} {first * 1e3:7.0f}")
            print(f"{'FaceFrontEnd.detect VIDEO (full frame), next frames':58s} {name:22s} {len(faces2):5d} "
                  f"{med * 1e3:7.0f} {worst * 1e3:7.0f}")

    try:
        from libreface.identity import DlibEmbedder, IdentityOptions, IdentityResolver
        embedder = DlibEmbedder()
    except ImportError as e:
        print(f"\nidentity: skipped ({e})")
        return 0
    frame = frames["16 faces, 1920x1080"]
    with FaceFrontEnd(FrontEndOptions(max_faces=16, video=False)) as fe:
        faces = fe.detect(frame)
    print(f"\nidentity on '16 faces, 1920x1080' ({len(faces)} faces found), 30 frames of one shot, ms per observe():")
    for per_frame, cap in [(1, 10), (4, 10), (10 ** 6, 10 ** 6)]:
        options = IdentityOptions(max_embeds_per_frame=per_frame, max_faces_per_frame=cap)
        resolver = IdentityResolver(embedder, options)
        times = []
        for i in range(30):
            t0 = time.perf_counter()
            resolver.observe(i, frame, faces, list(range(len(faces))), i / 30)
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        resolver.resolve()
        tail = time.perf_counter() - t0
        label = (f"max_embeds_per_frame={per_frame}, max_faces_per_frame={cap}" if per_frame < 10 ** 6
                 else "no caps")
        print(f"  {label:52s} median {statistics.median(times) * 1e3:6.0f}  worst {max(times) * 1e3:6.0f}  "
              f"resolve() {tail * 1e3:6.0f}  embeddings {resolver.embeddings_computed}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
