"""Identity benchmark: face verification (TPR at FPR = 0.1 %) and MOT-style identity figures, on the shared data.

    python bench/identity.py                 # everything, about 5 minutes on 2 busy cores
    python bench/identity.py --quick         # fewer frames, no CK+, no dlib5 comparison (about 2 minutes)

1. Verification. Faces are found with libreface's MediaPipe front end and embedded with `DlibEmbedder`; every pair of
   faces is a genuine pair (same person) or an impostor pair (different people). The threshold is the distance at
   which 0.1 % of impostor pairs are accepted; TPR is the share of genuine pairs under it.
   * videos: frames of the shared videos. Persons: the man of single_face.mp4 / face_noface.mov / noface_face.mov
     (three recordings), the man of 2015-10-15-15-14.avi who is also the nearest man of multi_face.avi (with
     glasses there), the two other men of multi_face.avi, Jet Li, Gloria Estefan, Vladimir Putin, the DISFA
     subject, and the five people of multi_face.jpg (impostors only). "cross-recording" keeps only genuine pairs
     whose two faces come from different files.
   * ckplus48: the 48 x 48 grey CK+ faces (83 subjects), padded and upscaled x5 for MediaPipe; genuine pairs are
     taken across different sequences of a subject (different expressions, same session).
2. Recordings with cuts, through the full chain (FaceFrontEnd -> IouTracker -> IdentityResolver):
   * "cuts": man A (single_face) | Jet Li | nobody | man A (face_noface) | both side by side | man A (noface_face)
   * "interview": Putin and Gloria Estefan alternating in shot / reverse shot, each centred (the tracker carries ids
     across the cuts, so the resolver's shot-cut split is exercised)
   * multi_face.avi: three men moving around each other in one shot (truth: the nearest man by face size, the others
     by side; faces between the sides are left unscored)
   Figures: ID switches (changes of predicted person within a true identity), fragmentations, extra persons, ID
   accuracy (rows whose person matches their identity after one-to-one matching, = IDF1 here), flagged rows.
"""

from __future__ import annotations

import argparse
import glob
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from libreface.identity import DEFAULT_EPS, DlibEmbedder, IdentityOptions, IdentityResolver  # noqa: E402
from libreface.landmarks import FaceFrontEnd, FrontEndOptions, quiet_native_logs  # noqa: E402
from libreface.sources import open_source  # noqa: E402
from libreface.track import IouTracker  # noqa: E402
from mot import score_identities  # noqa: E402  (bench/mot.py, next to this script)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


# ---------------------------------------------------------------------------------------------
# faces with identities
# ---------------------------------------------------------------------------------------------

def _multi_face_label(face) -> str | None:
    """Truth for multi_face.avi: the nearest man has the largest face; the mug man stays left, the third man right."""
    x0, _, x1, _ = face.box_px
    cx, w = (x0 + x1) / 2, x1 - x0
    if w >= 90:
        return "tadas"  # the same man as 2015-10-15-15-14.avi
    if cx < 260:
        return "mf_left"
    if cx > 300:
        return "mf_right"
    return None


VIDEO_PEOPLE = [  # file, frame range, step, label (None: per face), max faces
    ("single_face.mp4", (0, 72), 3, "man_a", 1),
    ("face_noface.mov", (0, 72), 3, "man_a", 1),
    ("noface_face.mov", (96, 168), 3, "man_a", 1),
    ("2015-10-15-15-14.avi", (0, 842), 10, "tadas", 1),
    ("multi_face.avi", (0, 702), 10, None, 4),
    ("1034_03_006_jet_li.avi", (0, 152), 3, "jet_li", 1),
    ("0686_02_003_gloria_estefan.avi", (0, 125), 3, "gloria", 1),
    ("1878_01_002_vladimir_putin.avi", (0, 182), 3, "putin", 1),
    ("sample_disfa.avi", (0, 20), 1, "disfa", 2),
]


def video_faces(embedders: dict, quick: bool):
    """[(label, file, frame, {mode: vector})] for the faces of the shared videos and multi_face.jpg."""
    out = []
    for name, (a, b), step, label, max_faces in VIDEO_PEOPLE:
        step = step * 2 if quick else step
        with FaceFrontEnd(FrontEndOptions(max_faces=max_faces)) as fe, open_source(DATA / "videos" / name) as src:
            for frame in src:
                if frame.index >= b:
                    break
                faces = fe.detect(frame.rgb, int(round(frame.timestamp_s * 1000)))
                if frame.index < a or (frame.index - a) % step:
                    continue
                for f in faces:
                    who = label
                    if name == "multi_face.avi":
                        who = _multi_face_label(f)
                    elif name == "sample_disfa.avi" and (f.box_px[0] + f.box_px[2]) / 2 < frame.rgb.shape[1] * 0.2:
                        who = None  # the second DISFA face, cut off at the left edge
                    if who is None:
                        continue
                    out.append((who, name, frame.index, {m: e.embed(frame.rgb, f.landmarks_px)
                                                         for m, e in embedders.items()}))
    with open_source(DATA / "videos" / "multi_face.jpg") as src:
        rgb = next(iter(src)).rgb
    with FaceFrontEnd(FrontEndOptions(max_faces=8, video=False)) as fe:
        for i, f in enumerate(fe.detect(rgb)):
            vectors = {m: e.embed(rgb, f.landmarks_px) for m, e in embedders.items()}
            out.append((f"photo_{i}", "multi_face.jpg", 0, vectors))
    return out


def ckplus_faces(embedders: dict):
    import cv2
    from PIL import Image

    out, missed = [], 0
    files = sorted(glob.glob(str(DATA / "ckplus48" / "*" / "S*.png")))
    with FaceFrontEnd(FrontEndOptions(max_faces=1, video=False)) as fe:
        for path in files:
            grey = np.asarray(Image.open(path).convert("L"))
            big = cv2.resize(cv2.copyMakeBorder(grey, 16, 16, 16, 16, cv2.BORDER_REPLICATE), (240, 240),
                             interpolation=cv2.INTER_CUBIC)
            rgb = np.ascontiguousarray(np.dstack([big] * 3))
            faces = fe.detect(rgb)
            if not faces:
                missed += 1
                continue
            stem = Path(path).stem  # Sxxx_yyy_zzzzzzzz
            subject, sequence = stem.split("_")[0], "_".join(stem.split("_")[:2])
            out.append((subject, sequence, 0, {m: e.embed(rgb, faces[0].landmarks_px) for m, e in embedders.items()}))
    return out, missed, len(files)


# ---------------------------------------------------------------------------------------------
# verification
# ---------------------------------------------------------------------------------------------

def verification(vectors: np.ndarray, labels: list, groups: list, genuine: str = "all") -> dict:
    """Pair statistics. genuine: "all" pairs of a person, or "cross" (different group: file or sequence)."""
    d = np.sqrt(np.maximum(0.0, 2.0 - 2.0 * vectors @ vectors.T))
    iu = np.triu_indices(len(labels), 1)
    lab = np.asarray(labels, dtype=object)
    grp = np.asarray(groups, dtype=object)
    same = lab[iu[0]] == lab[iu[1]]
    cross = grp[iu[0]] != grp[iu[1]]
    gen = d[iu][same & (cross if genuine == "cross" else True)]
    imp = d[iu][~same]
    thr = float(np.quantile(imp, 0.001)) if len(imp) else float("nan")
    thr1 = float(np.quantile(imp, 0.01)) if len(imp) else float("nan")
    return {
        "genuine": len(gen), "impostor": len(imp),
        "thr@0.1%": thr, "TPR@0.1%": float((gen < thr).mean()) if len(gen) else float("nan"),
        "thr@1%": thr1, "TPR@1%": float((gen < thr1).mean()) if len(gen) else float("nan"),
        "gen_p50": float(np.median(gen)) if len(gen) else float("nan"),
        "gen_p99": float(np.quantile(gen, 0.99)) if len(gen) else float("nan"),
        "imp_min": float(imp.min()) if len(imp) else float("nan"),
        "TPR@eps": float((gen < DEFAULT_EPS).mean()) if len(gen) else float("nan"),
        "FPR@eps": float((imp < DEFAULT_EPS).mean()) if len(imp) else float("nan"),
    }


def print_verification(rows: list[tuple[str, dict]]) -> None:
    head = (f"{'set':38s} {'genuine':>8s} {'impostor':>9s} {'thr@0.1%':>8s} {'TPR@0.1%':>8s} {'TPR@1%':>7s} "
            f"{'gen p50':>7s} {'gen p99':>7s} {'imp min':>7s} {'TPR@eps':>7s} {'FPR@eps':>8s}")
    print(head)
    print("-" * len(head))
    for name, r in rows:
        print(f"{name:38s} {r['genuine']:8d} {r['impostor']:9d} {r['thr@0.1%']:8.3f} {r['TPR@0.1%']:8.1%} "
              f"{r['TPR@1%']:7.1%} {r['gen_p50']:7.3f} {r['gen_p99']:7.3f} {r['imp_min']:7.3f} {r['TPR@eps']:7.1%} "
              f"{r['FPR@eps']:8.3%}")


# ---------------------------------------------------------------------------------------------
# recordings with cuts
# ---------------------------------------------------------------------------------------------

def _frames(name: str, a: int, b: int, step: int = 1):
    with open_source(DATA / "videos" / name) as src:
        for frame in src:
            if frame.index >= b:
                break
            if frame.index >= a and (frame.index - a) % step == 0:
                yield frame.rgb


def _fit(rgb: np.ndarray, w: int, h: int) -> np.ndarray:
    """Letterbox `rgb` into a black w x h canvas (aspect kept)."""
    import cv2

    s = min(w / rgb.shape[1], h / rgb.shape[0])
    nw, nh = int(round(rgb.shape[1] * s)), int(round(rgb.shape[0] * s))
    out = np.zeros((h, w, 3), np.uint8)
    x, y = (w - nw) // 2, (h - nh) // 2
    out[y:y + nh, x:x + nw] = cv2.resize(rgb, (nw, nh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC)
    return out


def recording_cuts(step: int = 1, w: int = 640, h: int = 360):
    """(rgb, truth_fn) pairs: man A | Jet Li | nobody | man A | both | man A. truth_fn(face) -> label or None."""
    def one(label):
        return lambda face: label

    def two(face):  # side by side: man A left, Jet Li right
        return "man_a" if (face.box_px[0] + face.box_px[2]) / 2 < w / 2 else "jet_li"

    parts = [
        (("single_face.mp4", 0, 72), one("man_a")),
        (("1034_03_006_jet_li.avi", 0, 152), one("jet_li")),
        (("no_face.mp4", 0, 30), one(None)),
        (("face_noface.mov", 0, 72), one("man_a")),
        ("both", two),
        (("noface_face.mov", 96, 168), one("man_a")),
    ]
    for spec, truth in parts:
        if spec == "both":
            left = _frames("single_face.mp4", 0, 72, step)
            right = _frames("1034_03_006_jet_li.avi", 40, 112, step)
            for a, b in zip(left, right):
                yield np.concatenate([_fit(a, w // 2, h), _fit(b, w // 2, h)], axis=1), truth
        else:
            for rgb in _frames(*spec, step):
                yield _fit(rgb, w, h), truth


def recording_interview(step: int = 1, w: int = 320, h: int = 240):
    """Putin (interviewee, longer) and Gloria Estefan alternating, both centred, hard cuts between them."""
    order = [("1878_01_002_vladimir_putin.avi", 0, 60, "putin"), ("0686_02_003_gloria_estefan.avi", 0, 40, "gloria"),
             ("1878_01_002_vladimir_putin.avi", 60, 120, "putin"), ("0686_02_003_gloria_estefan.avi", 40, 80, "gloria"),
             ("1878_01_002_vladimir_putin.avi", 120, 182, "putin"),
             ("0686_02_003_gloria_estefan.avi", 80, 125, "gloria")]
    for name, a, b, label in order:
        for rgb in _frames(name, a, b, step):
            yield _fit(rgb, w, h), (lambda face, label=label: label)


def recording_multi_face(step: int = 2):
    for rgb in _frames("multi_face.avi", 0, 702, step):
        yield rgb, _multi_face_label


def run_recording(frames, embedder, max_faces: int, fps: float = 25.0):
    """Full chain on generated frames; returns (score, result, seconds, frames, cuts, rows)."""
    resolver = IdentityResolver(embedder, IdentityOptions())
    tracker = IouTracker()
    rows = []  # (frame, face_id, truth)
    t0 = time.perf_counter()
    n = 0
    with FaceFrontEnd(FrontEndOptions(max_faces=max_faces)) as fe:
        for i, (rgb, truth) in enumerate(frames):
            faces = fe.detect(rgb, int(round(i * 1000 / fps)))
            ids = tracker.update([f.box_px for f in faces])
            resolver.observe(i, rgb, faces, ids, i / fps)
            rows += [(i, fid, truth(f)) for f, fid in zip(faces, ids)]
            n += 1
    result = resolver.resolve()
    seconds = time.perf_counter() - t0
    rows = [r for r in rows if r[2] is not None]
    fr = [r[0] for r in rows]
    pred = result.person_ids(fr, [r[1] for r in rows])
    score = score_identities(fr, [r[2] for r in rows], pred)
    return score, result, seconds, n, resolver, rows, pred


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer frames; no CK+; MediaPipe 5 points only")
    ap.add_argument("--skip-ckplus", action="store_true")
    ap.add_argument("--skip-verification", action="store_true")
    ap.add_argument("--skip-recordings", action="store_true")
    args = ap.parse_args()
    quiet_native_logs()
    if not DATA.is_dir():
        print(f"bench/identity.py: {DATA} not found; this benchmark needs the shared data", file=sys.stderr)
        return 1
    modes = ["mediapipe"] if args.quick else ["mediapipe", "dlib5"]
    embedders = {m: DlibEmbedder(landmarks=m) for m in modes}

    if not args.skip_verification:
        t0 = time.perf_counter()
        faces = video_faces(embedders, args.quick)
        print(f"\nvideos: {len(faces)} faces of {len({f[0] for f in faces})} people "
              f"({time.perf_counter() - t0:.0f} s incl. detection, {len(modes)} embedding mode(s))")
        counts = {}
        for f in faces:
            counts[f[0]] = counts.get(f[0], 0) + 1
        print("  " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
        rows = []
        for m in modes:
            V = np.stack([f[3][m] for f in faces])
            labels, files = [f[0] for f in faces], [f[1] for f in faces]
            rows.append((f"videos, all genuine pairs [{m}]", verification(V, labels, files, "all")))
            rows.append((f"videos, cross-recording genuine [{m}]", verification(V, labels, files, "cross")))
        if not (args.quick or args.skip_ckplus):
            t0 = time.perf_counter()
            ck, missed, total = ckplus_faces(embedders)
            print(f"ckplus48: {len(ck)} of {total} faces found ({missed} missed), {len({c[0] for c in ck})} subjects "
                  f"({time.perf_counter() - t0:.0f} s)")
            for m in modes:
                V = np.stack([c[3][m] for c in ck])
                rows.append((f"ckplus48, cross-sequence genuine [{m}]",
                             verification(V, [c[0] for c in ck], [c[1] for c in ck], "cross")))
        print()
        print_verification(rows)
        print(f"(distances: euclidean between unit vectors; DEFAULT_EPS = {DEFAULT_EPS}; "
              f"TPR/FPR@eps: share of genuine / impostor pairs closer than eps)")

    if not args.skip_recordings:
        emb = embedders["mediapipe"]
        step = 2 if args.quick else 1
        print(f"\nrecordings (full chain, every {step} frame(s)):")
        head = (f"{'recording':12s} {'frames':>6s} {'rows':>5s} {'truth':>5s} {'persons':>7s} {'shots':>5s} "
                f"{'tracks':>6s} {'IDsw':>4s} {'frag':>4s} {'extra':>5s} {'flagged':>7s} {'ID acc':>7s} "
                f"{'embeds':>6s} {'s':>5s}  main person = truth")
        print(head)
        print("-" * len(head))
        for name, frames, max_faces, fps, main in [
            ("cuts", recording_cuts(step), 2, 30.0, "man_a"),
            ("interview", recording_interview(step), 1, 25.0, "putin"),
            ("multi_face", recording_multi_face(2 * step), 4, 30.0, "tadas"),
        ]:
            score, result, seconds, n, resolver, rows, pred = run_recording(frames, emb, max_faces, fps)
            truth_of_main = {r[2] for r, p in zip(rows, pred) if p == 0}
            print(f"{name:12s} {n:6d} {score.rows:5d} {len({r[2] for r in rows}):5d} {len(result.persons):7d} "
                  f"{len(result.shot_starts):5d} {len(result.tracklets):6d} {score.id_switches:4d} "
                  f"{score.fragmentations:4d} {score.extra_persons:5d} {score.flagged_rows:7d} "
                  f"{score.id_accuracy:7.1%} {resolver.embeddings_computed:6d} {seconds:5.0f}  "
                  f"{'/'.join(sorted(map(str, truth_of_main)))} ({'ok' if truth_of_main == {main} else 'WRONG'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
