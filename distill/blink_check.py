"""AU45 (blink) without human codes: score a student's AU45 and the eyeBlink blendshapes against an eye-aspect-ratio
reference computed from the runtime landmarker's 478 points on real videos.

Reference: per eye, EAR = (|p2 - p6| + |p3 - p5|) / (2 |p1 - p4|) on MediaPipe's eye-contour points (Soukupova &
Cech 2016); a frame is "closed" when the mean EAR of the two eyes is below `CLOSED_FRACTION` x the median EAR of that
face in that video (a relative rule, so eye shape and camera distance cancel). Caveat: MediaPipe derives its
eyeBlink blendshapes from the same face mesh, so this reference favours the blendshape mapping; it measures
eye closure, not FACS-coded blinks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

EYES = ((33, 160, 158, 133, 153, 144), (362, 385, 387, 263, 373, 380))
"""MediaPipe face-mesh indices (p1 corner, p2, p3 upper lid, p4 corner, p5, p6 lower lid) of the two eyes."""
CLOSED_FRACTION = 0.6


def eye_aspect_ratio(landmarks: np.ndarray) -> float:
    """(478, 2+) landmarks (px) -> mean EAR of the two eyes (about 0.25-0.35 open, near 0 closed)."""
    lm = np.asarray(landmarks, np.float64)[:, :2]
    ears = []
    for p1, p2, p3, p4, p5, p6 in EYES:
        d = np.linalg.norm
        ears.append((d(lm[p2] - lm[p6]) + d(lm[p3] - lm[p5])) / (2 * max(d(lm[p1] - lm[p4]), 1e-6)))
    return float(np.mean(ears))


def blink_reference(model: Path, videos: list[Path], threads: int = 2, au: str = "AU45") -> dict:
    """AUC of the model's `au` occurrence (mirror view, no `blendshape_aus` overrides expected in its card) and of the
    mean eyeBlink blendshape score against the EAR "closed" reference, over every analysed face of `videos`."""
    from libreface.landmarks import BLENDSHAPE_NAMES
    from libreface.pipeline import Analyzer, AnalyzerOptions

    from .metrics import _auc

    blink_cols = [BLENDSHAPE_NAMES.index(n) for n in ("eyeBlinkLeft", "eyeBlinkRight")]
    closed, head, shapes, n_videos = [], [], [], 0
    with Analyzer(AnalyzerOptions(model=str(model), threads=threads, max_faces=1)) as analyzer:
        col = analyzer.labels.au_occurrence.index(au)
        for video in videos:
            ear, h, s = [], [], []
            for frame in analyzer.process(str(video)):
                for f in frame.faces:
                    if f.success:
                        ear.append(eye_aspect_ratio(f.landmarks_px))
                        h.append(float(f.au_occurrence[col]))
                        s.append(float(np.mean(f.blendshapes[blink_cols])))
            if ear:
                n_videos += 1
                ear_a = np.array(ear)
                closed.append(ear_a < CLOSED_FRACTION * np.median(ear_a))
                head.append(h)
                shapes.append(s)
    if not closed:
        return {"videos": [Path(v).name for v in videos], "frames": 0}
    y = np.concatenate(closed).astype(int)
    return {"videos": [Path(v).name for v in videos], "frames": int(len(y)), "closed_frames": int(y.sum()),
            "auc_head": _auc(y, np.concatenate(head)), "auc_blendshapes": _auc(y, np.concatenate(shapes)),
            "reference": f"mean EAR < {CLOSED_FRACTION} x the face's median EAR in its video"}
