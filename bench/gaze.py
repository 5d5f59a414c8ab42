"""Gaze checks on real video: iris-model gaze vs the eyeLook* blendshape estimate, and direction sanity.

    python bench/gaze.py [VIDEO ...] [--every 2]

For every face MediaPipe finds (default: the shared videos with one face), computes the iris/eyeball gaze
(`libreface.gaze.iris_gaze`, the output) and the blendshape gaze (`blendshape_gaze`), and prints:

* Pearson r of gaze_angle_x and of gaze_angle_y between the two, in camera axes (both include the head pose,
  which inflates agreement) and eye-in-head (head rotation removed: only the eyes' own movement);
* the least-squares slope iris ~ blendshape of the eye-in-head angle (how many degrees the iris model reads per
  degree the blendshapes read at `BLENDSHAPE_GAIN_DEG`);
* direction checks: among frames where the blendshapes say "looking left/right/up/down" clearly (difference
  >= 0.3 on both eyes), the share where the iris model's eye-in-head angle has the sign OpenFace's convention
  expects (x > 0 toward the image's right, y > 0 down).

No ground-truth gaze exists for these videos: agreement of two independent estimates is what can be measured.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
VIDEOS = REPO.parent / "shared" / "data" / "videos"
DEFAULT = ["2015-10-15-15-14.avi", "single_face.mp4", "0686_02_003_gloria_estefan.avi", "1034_03_006_jet_li.avi",
           "1878_01_002_vladimir_putin.avi", "sample_disfa.avi"]


def eye_in_head_angles(vectors: np.ndarray, r: np.ndarray) -> np.ndarray:
    """(2,) angles (x, y) of the mean gaze in the head's axes."""
    from libreface.gaze import gaze_angles

    return gaze_angles((r.T @ vectors.T).T)


def measure(paths: list[Path], every: int) -> dict:
    from libreface.gaze import BLENDSHAPE_GAIN_DEG, blendshape_gaze, gaze_angles, iris_gaze
    from libreface.geometry import rotation
    from libreface.landmarks import BLENDSHAPE_NAMES, FaceFrontEnd, FrontEndOptions
    from libreface.sources import open_source

    bi = {n: i for i, n in enumerate(BLENDSHAPE_NAMES)}
    rows = []
    for path in paths:
        with open_source(path) as src, FaceFrontEnd(FrontEndOptions(max_faces=1)) as fe:
            for frame in src:
                if frame.index % every:
                    continue
                h, w = frame.rgb.shape[:2]
                for f in fe.detect(frame.rgb, int(round(frame.timestamp_s * 1000))):
                    if f.transform is None:
                        continue
                    gi = iris_gaze(f.landmarks_px, f.transform, w, h)
                    gb = blendshape_gaze(f.blendshapes, f.transform)
                    r = rotation(f.transform)
                    b = f.blendshapes
                    hx = ((b[bi["eyeLookInRight"]] - b[bi["eyeLookOutRight"]]) + (b[bi["eyeLookOutLeft"]] - b[bi["eyeLookInLeft"]])) / 2
                    hy = ((b[bi["eyeLookDownRight"]] - b[bi["eyeLookUpRight"]]) + (b[bi["eyeLookDownLeft"]] - b[bi["eyeLookUpLeft"]])) / 2
                    both_x = min(abs(b[bi["eyeLookInRight"]] - b[bi["eyeLookOutRight"]]), abs(b[bi["eyeLookOutLeft"]] - b[bi["eyeLookInLeft"]]))
                    blink = max(b[bi["eyeBlinkLeft"]], b[bi["eyeBlinkRight"]])
                    rows.append((path.name, *np.degrees(gaze_angles(gi)), *np.degrees(gaze_angles(gb)),
                                 *np.degrees(eye_in_head_angles(gi, r)), *np.degrees(eye_in_head_angles(gb, r)),
                                 hx, hy, both_x, blink))
    a = np.array([r[1:] for r in rows], np.float64)
    names = [r[0] for r in rows]
    open_eyes = a[:, 11] < 0.5
    a = a[open_eyes]
    out = {"videos": sorted(set(names)), "faces": int(len(a)), "gain_deg": BLENDSHAPE_GAIN_DEG}
    out["r_camera_x"], out["r_camera_y"] = (float(np.corrcoef(a[:, i], a[:, i + 2])[0, 1]) for i in (0, 1))
    out["r_eye_in_head_x"], out["r_eye_in_head_y"] = (float(np.corrcoef(a[:, i], a[:, i + 2])[0, 1]) for i in (4, 5))
    out["slope_eye_in_head_x"], out["slope_eye_in_head_y"] = (
        float(np.polyfit(a[:, i + 2], a[:, i], 1)[0]) for i in (4, 5))
    checks = {}
    for name, col, sign, sel in (("right", 8, 1, a[:, 8] >= 0.3), ("left", 8, -1, a[:, 8] <= -0.3),
                                 ("down", 9, 1, a[:, 9] >= 0.3), ("up", 9, -1, a[:, 9] <= -0.3)):
        iris = a[sel, 4 if col == 8 else 5]
        checks[name] = (int(sel.sum()), float(np.mean(np.sign(iris) == sign)) if sel.any() else float("nan"))
    out["direction"] = checks
    out["iris_eye_in_head_sd_deg"] = [float(a[:, 4].std()), float(a[:, 5].std())]
    out["iris_eye_in_head_median_deg"] = [float(np.median(a[:, 4])), float(np.median(a[:, 5]))]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("videos", nargs="*", type=Path)
    p.add_argument("--every", type=int, default=2)
    args = p.parse_args()
    paths = args.videos or [VIDEOS / v for v in DEFAULT if (VIDEOS / v).exists()]
    if not paths:
        print(f"bench/gaze.py: no videos (looked in {VIDEOS})", file=sys.stderr)
        return 1
    res = measure(paths, args.every)
    print(f"{res['faces']} faces with open eyes, {len(res['videos'])} videos: {', '.join(res['videos'])}")
    print(f"gaze_angle_x  r(iris, blendshapes): camera {res['r_camera_x']:.3f}, eye-in-head {res['r_eye_in_head_x']:.3f}, "
          f"slope {res['slope_eye_in_head_x']:.2f}")
    print(f"gaze_angle_y  r(iris, blendshapes): camera {res['r_camera_y']:.3f}, eye-in-head {res['r_eye_in_head_y']:.3f}, "
          f"slope {res['slope_eye_in_head_y']:.2f}")
    print("iris eye-in-head angle: median x {:.1f}, y {:.1f} deg; sd x {:.1f}, y {:.1f} deg".format(
        *res["iris_eye_in_head_median_deg"], *res["iris_eye_in_head_sd_deg"]))
    for name, (n, share) in res["direction"].items():
        print(f"blendshapes say '{name}' ({n} faces): iris angle has the expected sign in {100 * share:.0f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
