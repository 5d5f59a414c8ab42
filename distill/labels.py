"""The AU teacher signal: MediaPipe blendshapes mapped to FACS AUs, calibrated to the 0-5 scale.

No data available offline has AU *intensity* labels. The signal the students learn AU intensity
from is built here, in three documented steps:

1. **Mapping.** Each of the 12 DISFA AUs gets a score in 0..1 from the ARKit-style blendshapes
   that describe the same muscle movement (`AU_BLENDSHAPES`, averaged).
   This is a geometric correspondence of the two coding schemes, not learned.
2. **Calibration to 0-5.** Per AU, a piecewise-linear map with three anchors fitted on the
   training split only: the median score over FER+ faces whose majority vote is *neutral*
   (-> 0), the score threshold that best separates human-coded present / absent on the CK+
   training subjects (F1-optimal; -> 1, FACS "trace"), and the 99.5th percentile over all
   training faces (-> 5). AUs with fewer than 5 CK+ positives on the training subjects use the
   90th percentile over FER+ faces as their trace anchor.
3. **Occurrence.** Human CK+ FACS codes where they exist (training subjects only); elsewhere the
   calibrated intensity >= 1 is a weak pseudo-label with a smaller loss weight.

`distill add-aus` extends the same three steps to OpenFace's set (`OPENFACE_AU_INTENSITY`, `OPENFACE_AU_OCCURRENCE`):
the new AUs' mappings are in `AU_BLENDSHAPES` too, and `au_scores` / `fit_calibration` take the AU list. The 12
DISFA AUs' signal is unchanged, so the shipped students' heads stay valid.

So every AU intensity a student outputs is measured against this calibrated blendshape signal,
and every AU occurrence against the human CK+ codes of subjects it never saw (`distill evaluate`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

import numpy as np

from libreface.landmarks import BLENDSHAPE_NAMES
from libreface.models.blendshape_aus import calibrated_intensity
from libreface.outputs import schema

DISFA_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
"""The AUs of the `au_intensity` and `au_occurrence` outputs (DISFA's set)."""

AU_NAMES: tuple[str, ...] = tuple(f"AU{a:02d}" for a in DISFA_AUS)

OPENFACE_AU_INTENSITY: tuple[int, ...] = tuple(int(a[2:]) for a in schema.OPENFACE_AU_INTENSITY)
"""The 17 AU intensities OpenFace 2.2 reports (`AUxx_r`), in its column order (from the output schema)."""

OPENFACE_AU_OCCURRENCE: tuple[int, ...] = tuple(int(a[2:]) for a in schema.OPENFACE_AU_OCCURRENCE)
"""The 18 AU occurrences OpenFace 2.2 reports (`AUxx_c`): the intensities plus AU28 (from the output schema)."""


def au_name(au: int) -> str:
    """7 -> "AU07" (the names of the model cards and the CSV columns)."""
    return f"AU{au:02d}"


@dataclass(frozen=True)
class AUSet:
    """The AUs a network learns: `occurrence` is the column order of the training tables and of the occurrence head;
    `intensity` (a subset, same relative order) is the intensity head's.

    Attributes:
        name: "disfa" (12 AUs, intensity = occurrence) or "openface" (OpenFace 2.2's 17 intensities, 18 occurrences,
            in its column order: what the runtime writes).
        occurrence: AU numbers of the occurrence head / table columns.
        intensity: AU numbers of the intensity head.
    """

    name: str
    occurrence: tuple[int, ...]
    intensity: tuple[int, ...]

    @property
    def intensity_cols(self) -> list[int]:
        """Table columns of the intensity AUs (len(intensity) indices into `occurrence`)."""
        return [self.occurrence.index(a) for a in self.intensity]

    @property
    def occurrence_names(self) -> tuple[str, ...]:
        return tuple(au_name(a) for a in self.occurrence)

    @property
    def intensity_names(self) -> tuple[str, ...]:
        return tuple(au_name(a) for a in self.intensity)


AU_SETS: dict[str, AUSet] = {
    "disfa": AUSet("disfa", DISFA_AUS, DISFA_AUS),
    "openface": AUSet("openface", OPENFACE_AU_OCCURRENCE, OPENFACE_AU_INTENSITY),
}
"""The AU sets a training run may name (`TrainConfig.aus`); "disfa" is what every student up to v7's trunk learned."""


def shared_au_columns(student: AUSet, teacher: AUSet) -> dict[str, list[int]]:
    """Columns of the AUs two networks share, for soft AU targets across AU sets (e.g. an OpenFace student taught by
    DISFA teachers learns its 12 DISFA columns from them).

    Returns:
        {"s_int", "t_int"}: matching column indices into the student's / teacher's intensity head; {"s_occ", "t_occ"}:
        the same for the occurrence heads (lists of equal length, student order).
    """
    s_int = [j for j, a in enumerate(student.intensity) if a in teacher.intensity]
    s_occ = [j for j, a in enumerate(student.occurrence) if a in teacher.occurrence]
    return {"s_int": s_int, "t_int": [teacher.intensity.index(student.intensity[j]) for j in s_int],
            "s_occ": s_occ, "t_occ": [teacher.occurrence.index(student.occurrence[j]) for j in s_occ]}


def au_set(name: str) -> AUSet:
    """"disfa" / "openface" -> its `AUSet` (one clear error for anything else)."""
    if name not in AU_SETS:
        raise ValueError(f"aus must be one of {sorted(AU_SETS)}, not {name!r}")
    return AU_SETS[name]

AU_BLENDSHAPES: dict[int, tuple[str, ...]] = {
    1: ("browInnerUp",),  # inner brow raiser
    2: ("browOuterUpLeft", "browOuterUpRight"),  # outer brow raiser
    4: ("browDownLeft", "browDownRight"),  # brow lowerer
    5: ("eyeWideLeft", "eyeWideRight"),  # upper lid raiser
    # cheek raiser: MediaPipe's cheekSquint stays near 0 (99.5th percentile 0.002 on FER+), so AU6 is
    # proxied by the eye narrowing it causes plus the smile it almost always comes with (AU6+12)
    6: ("eyeSquintLeft", "eyeSquintRight", "mouthSmileLeft", "mouthSmileRight"),
    # nose wrinkler: noseSneer stays near 0 too; proxied by the brow lowering and eye narrowing it causes
    9: ("browDownLeft", "browDownRight", "eyeSquintLeft", "eyeSquintRight"),
    12: ("mouthSmileLeft", "mouthSmileRight"),  # lip corner puller
    15: ("mouthFrownLeft", "mouthFrownRight"),  # lip corner depressor
    17: ("mouthShrugLower",),  # chin raiser
    20: ("mouthStretchLeft", "mouthStretchRight"),  # lip stretcher
    25: ("mouthLowerDownLeft", "mouthLowerDownRight"),  # lips part
    26: ("jawOpen",),  # jaw drop
    # --- OpenFace's remaining AUs (`distill add-aus`); CK+ codes exist for 7, 10, 14 and 23
    7: ("eyeSquintLeft", "eyeSquintRight"),  # lid tightener: the lids narrow the eye from below
    10: ("mouthUpperUpLeft", "mouthUpperUpRight"),  # upper lip raiser
    14: ("mouthDimpleLeft", "mouthDimpleRight"),  # dimpler: lip corners pulled back and in
    # lip tightener: a PROXY; ARKit has no lip-narrowing shape, mouthPress (lips pressed together) is the nearest
    23: ("mouthPressLeft", "mouthPressRight"),
    28: ("mouthRollLower", "mouthRollUpper"),  # lip suck: the lips rolled in over the teeth (occurrence only)
    45: ("eyeBlinkLeft", "eyeBlinkRight"),  # blink: both lids closed
}
"""AU -> blendshapes whose mean is the AU's raw score (geometric correspondence of ARKit shapes and FACS).
Measured against CK+ FACS codes by `distill evaluate` (the "blendshape baseline") and `distill add-aus`."""


def au_scores(blendshapes: np.ndarray, aus: tuple[int, ...] = DISFA_AUS) -> np.ndarray:
    """Raw AU scores from blendshapes.

    Args:
        blendshapes: (N, 52) float scores 0..1 in `BLENDSHAPE_NAMES` order (NaN rows stay NaN).
        aus: AU numbers, keys of `AU_BLENDSHAPES` (default DISFA's 12).

    Returns:
        (N, len(aus)) float32 scores 0..1 in `aus` order.
    """
    bs = np.asarray(blendshapes, np.float32)
    out = np.empty((len(bs), len(aus)), np.float32)
    for j, au in enumerate(aus):
        cols = [BLENDSHAPE_NAMES.index(n) for n in AU_BLENDSHAPES[au]]
        out[:, j] = bs[:, cols].mean(axis=1)
    return out


@dataclass
class Calibration:
    """Per-AU anchors of the piecewise-linear score -> intensity map (lists in the order of the AUs it was fitted on,
    `DISFA_AUS` for the students' signal)."""

    neutral: list[float]  # score mapped to 0
    trace: list[float]  # score mapped to 1 (presence threshold)
    top: list[float]  # score mapped to 5
    trace_source: list[str]  # "ck+ f1" or "fer+ p90"

    def intensity(self, scores: np.ndarray) -> np.ndarray:
        """(N, A) raw scores -> (N, A) float32 intensities on 0..5 (NaN stays NaN)."""
        s = np.asarray(scores, np.float32)
        out = np.empty_like(s)
        for j in range(s.shape[1]):
            out[:, j] = calibrated_intensity(s[:, j], (self.neutral[j], self.trace[j], self.top[j]))
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Calibration":
        return cls(**json.loads(text))


def _f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    best_t, best_f1 = float(np.median(scores)), -1.0
    for t in np.unique(np.quantile(scores, np.linspace(0.02, 0.98, 97))):
        pred = scores >= t
        tp = float((pred & (labels == 1)).sum())
        f1 = 2 * tp / max(1.0, pred.sum() + (labels == 1).sum())
        if f1 > best_f1:
            best_t, best_f1 = float(t), f1
    return best_t


def fit_calibration(
    fer_scores: np.ndarray, fer_neutral: np.ndarray, ck_scores: np.ndarray, ck_occurrence: np.ndarray
) -> Calibration:
    """Fit the anchors on training data only.

    Args:
        fer_scores: (N, A) raw AU scores of detected FER+ training faces (A = 12 DISFA AUs, or any AU list).
        fer_neutral: (N,) bool, majority vote is neutral.
        ck_scores: (M, A) raw AU scores of detected CK+ training-subject faces.
        ck_occurrence: (M, A) int 0/1 human FACS codes (-1 unknown).
    """
    neutral, trace, top, source = [], [], [], []
    for j in range(fer_scores.shape[1]):
        n = float(np.nanmedian(fer_scores[fer_neutral, j]))
        hi = float(np.nanquantile(np.concatenate([fer_scores[:, j], ck_scores[:, j]]), 0.995))
        known = ck_occurrence[:, j] >= 0
        pos = int((ck_occurrence[known, j] == 1).sum())
        if pos >= 5:
            t = _f1_threshold(ck_scores[known, j], ck_occurrence[known, j])
            src = "ck+ f1"
        else:
            t = float(np.nanquantile(fer_scores[:, j], 0.90))
            src = "fer+ p90"
        t = max(t, n + 1e-3)
        hi = max(hi, t + 1e-3)
        neutral.append(n)
        trace.append(t)
        top.append(hi)
        source.append(src)
    return Calibration(neutral, trace, top, source)
