"""Landmark-geometry AU scores (AU4, AU9, AU26) and their measurement against the CK+ FACS codes.

The blendshape teacher signal (`distill.labels`) is weakest on AU4 (brow lowerer), AU26 (jaw drop) and AU9 (nose
wrinkler, only a proxy there). Here each of them gets a score from distances between MediaPipe face-mesh landmarks
(478 points, `PreparedSplit.landmarks`), divided by the inter-ocular distance (outer eye corners) so that the face's
size and distance to the camera drop out. Distances are 3-D (x, y and MediaPipe's relative depth z, in the same px
scale) so a turned head shortens them less than 2-D ones would.

Every score is the mean of two features (`FEATURES`), each z-scored with the mean / standard deviation of the CK+
*training* subjects and signed so that larger = stronger action (the sign is fixed by anatomy, not fitted).
`distill.au_geometry_report` (`distill au-geometry`) measures them against the CK+ FACS codes;
`distill.dataset.build_tables(au_sources=...)` can use the chosen source per AU for a new student's AU teacher signal
(off by default).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# --- MediaPipe face-mesh indices ("right" / "left" are the subject's; the right eye is on the image's left)
EYE_OUTER = (33, 263)  # outer eye corners: the inter-ocular distance (face size)
EYE_INNER = (133, 362)  # inner eye corners (medial canthi)
BROW_INNER = (55, 285)  # inner end of each brow's lower edge (moves down and in for AU4)
NOSE_WING = (129, 358)  # lateral ala of the nose (pulled up for AU9)
NOSE_BASE = 2  # subnasale, the nose's base above the upper lip
LIP_UPPER_TOP = 0  # top of the upper lip on the midline (raised by AU9 / AU10)
LIP_INNER_UPPER = 13  # inner edge of the upper lip, midline
LIP_INNER_LOWER = 14  # inner edge of the lower lip, midline
CHIN = 152  # lowest chin point (drops with the jaw, AU26)

GEOMETRY_AUS: tuple[int, ...] = (4, 9, 26)

FEATURES: dict[int, tuple[tuple[str, int], ...]] = {
    4: (("inner brow to inner eye corner", -1), ("inner brow to inner brow", -1)),
    9: (("nose wing to inner eye corner", -1), ("upper lip to inner-eye midpoint", -1)),
    26: (("inner lip opening", +1), ("nose base to chin", +1)),
}
"""AU -> its features (name, sign: +1 larger distance = stronger action, -1 smaller = stronger)."""


def _d(lm: np.ndarray, a, b) -> np.ndarray:
    pa = lm[:, a] if isinstance(a, int) else a
    pb = lm[:, b] if isinstance(b, int) else b
    return np.linalg.norm(pa - pb, axis=-1)


def geometry_features(landmarks: np.ndarray) -> dict[int, np.ndarray]:
    """Face-size-normalised distances.

    Args:
        landmarks: (N, 478, 3) float landmarks (px; NaN rows for missed faces).

    Returns:
        AU -> (N, 2) float32 distances / inter-ocular distance, in `FEATURES` order (unsigned).
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.ndim != 3 or lm.shape[1:] != (478, 3):
        raise ValueError(f"landmarks must be (N, 478, 3), got {lm.shape}")
    iod = np.maximum(_d(lm, *EYE_OUTER), 1e-6)
    eye_mid = (lm[:, EYE_INNER[0]] + lm[:, EYE_INNER[1]]) / 2
    side = lambda a, b: (_d(lm, a[0], b[0]) + _d(lm, a[1], b[1])) / 2  # noqa: E731  mean of both sides
    feats = {
        4: (side(BROW_INNER, EYE_INNER), _d(lm, *BROW_INNER)),
        9: (side(NOSE_WING, EYE_INNER), _d(lm, LIP_UPPER_TOP, eye_mid)),
        26: (_d(lm, LIP_INNER_UPPER, LIP_INNER_LOWER), _d(lm, NOSE_BASE, CHIN)),
    }
    return {au: (np.stack(f, 1) / iod[:, None]).astype(np.float32) for au, f in feats.items()}


def feature_array(landmarks: np.ndarray) -> np.ndarray:
    """(N, 478, 3) landmarks -> (N, 3, 2) float32 features (`GEOMETRY_AUS` x `FEATURES`, unsigned; NaN when missed)."""
    f = geometry_features(landmarks)
    return np.stack([f[a] for a in GEOMETRY_AUS], 1)


@dataclass
class GeometryScaler:
    """Per AU, the training mean / std of each feature (lists in `GEOMETRY_AUS` order, 2 values each)."""

    mean: list[list[float]]
    std: list[list[float]]

    @classmethod
    def fit(cls, features: np.ndarray) -> "GeometryScaler":
        """Fit on (N, 3, 2) training features (`feature_array`; NaN rows ignored)."""
        return cls(np.nanmean(features, 0).tolist(), np.maximum(np.nanstd(features, 0), 1e-6).tolist())

    def scores(self, features: np.ndarray) -> np.ndarray:
        """(N, 3, 2) features -> (N, 3) float32 scores in `GEOMETRY_AUS` order (larger = stronger, ~z units;
        NaN for missed faces)."""
        signs = np.array([[s for _, s in FEATURES[a]] for a in GEOMETRY_AUS], np.float32)
        z = (features - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
        return (z * signs).mean(2).astype(np.float32)


def percentile_rank(reference: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Mid-rank of each `x` among the 1-D `reference` scores, in 0..1 (NaN stays NaN; ties count half)."""
    ref = np.sort(reference[~np.isnan(reference)])
    r = (np.searchsorted(ref, x, "left") + np.searchsorted(ref, x, "right")) / (2.0 * max(1, len(ref)))
    return np.where(np.isnan(x), np.nan, r).astype(np.float32)
