"""Recall of the face front-end on small faces in 1080p frames, with and without the small-face pass.

    python bench/small_faces.py [--trials 40] [--sizes 50 60 70 80 100 130 200]

Each trial pastes one face (a crop of `skimage.data.astronaut()`, public domain, under random scale jitter and
brightness; plus, when `../shared/data/ckplus48` exists, a CK+ face upscaled) at a random position of a 1920x1080
frame whose background is a blurred, tiled copy of the astronaut image with the face region masked out (so the
background holds no face), and asks `FaceFrontEnd` (IMAGE mode) for faces. A hit is a face whose landmark box
overlaps the pasted box with IoU >= 0.3. "face px" is the side of the pasted face box (forehead to chin).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def face_sources() -> list[np.ndarray]:
    from skimage import data

    faces = [data.astronaut()[40:250, 120:320]]  # ~200 px square around the face
    ck = REPO.parent / "shared" / "data" / "ckplus48"
    if ck.is_dir():
        from PIL import Image

        for p in sorted(ck.glob("happy/*.png"))[:3] + sorted(ck.glob("surprise/*.png"))[:3]:
            g = np.asarray(Image.open(p).convert("RGB"))
            faces.append(g)
    return faces


def background(rng: np.random.Generator) -> np.ndarray:
    import cv2
    from skimage import data

    img = data.astronaut().copy()
    img[20:280, 100:340] = img[300:560, 260:500] if img.shape[0] >= 560 else 128  # mask the face
    tile = cv2.GaussianBlur(cv2.resize(img, (640, 640)), (0, 0), 6)
    bg = np.tile(tile, (2, 3, 1))[:1080, :1920]
    return np.ascontiguousarray(np.roll(bg, int(rng.integers(0, 640)), axis=1))


def main() -> int:
    import cv2

    from libreface.landmarks import FaceFrontEnd, FrontEndOptions, box_iou

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--sizes", type=int, nargs="+", default=[50, 60, 70, 80, 100, 130, 200])
    args = p.parse_args()
    rng = np.random.default_rng(0)
    faces = face_sources()
    print(f"{len(faces)} face sources, {args.trials} trials per size, 1920x1080 frames\n")
    print("| face px | recall, full-frame pass only | recall, with small-face pass | ms/frame with pass |")
    print("|---:|---:|---:|---:|")
    with FaceFrontEnd(FrontEndOptions(video=False, small_faces=False, max_faces=1)) as plain, \
            FaceFrontEnd(FrontEndOptions(video=False, small_faces=True, max_faces=1)) as small:
        for size in args.sizes:
            hits = {"plain": 0, "small": 0}
            t_small = 0.0
            for t in range(args.trials):
                frame = background(rng)
                face = faces[t % len(faces)]
                side = int(size * rng.uniform(0.95, 1.05))
                # the source crops hold the face with ~25 % margin: scale so the face itself is `side` px
                patch = cv2.resize(face, (int(side * 1.35),) * 2, interpolation=cv2.INTER_AREA)
                patch = np.clip(patch.astype(np.float32) * rng.uniform(0.8, 1.15), 0, 255).astype(np.uint8)
                ph = patch.shape[0]
                x0, y0 = int(rng.integers(0, 1920 - ph)), int(rng.integers(0, 1080 - ph))
                frame[y0 : y0 + ph, x0 : x0 + ph] = patch
                m = (ph - side) / 2
                box = (x0 + m, y0 + m, x0 + m + side, y0 + m + side)
                hits["plain"] += any(box_iou(f.box_px, box) >= 0.3 for f in plain.detect(frame))
                t0 = time.perf_counter()
                found = small.detect(frame)
                t_small += time.perf_counter() - t0
                hits["small"] += any(box_iou(f.box_px, box) >= 0.3 for f in found)
            print(f"| {size} | {hits['plain'] / args.trials:.2f} | {hits['small'] / args.trials:.2f} | "
                  f"{1000 * t_small / args.trials:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
