"""AUs computed from MediaPipe blendshapes instead of the student's heads, as the model card's `blendshape_aus` says.

`distill add-aus` chooses, per added AU, between a new student head and a calibrated blendshape mapping by
measurement; for the AUs where the mapping won, the card carries an entry such as

    "blendshape_aus": {"AU45": {"blendshapes": ["eyeBlinkLeft", "eyeBlinkRight"],
                                "anchors": [0.05, 0.4, 0.9],
                                "probability": {"slope": 4.0, "intercept": -4.0}}}

and the analyzer overwrites that AU's intensity and occurrence with

    score = mean of the named blendshapes (0..1)
    intensity = piecewise-linear map of score through anchors (neutral, trace, top) -> (0, 1, 5), clipped to 0..5
    occurrence = 1 / (1 + exp(-(slope * intensity + intercept)))

A card without the entry (every 12-AU student) leaves the model's outputs untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..landmarks import BLENDSHAPE_NAMES

CARD_ENTRY = "blendshape_aus"
CALIBRATED_LEVELS = (0.0, 1.0, 5.0)
"""Intensities the three calibration anchors (neutral, trace, top) map to."""


def calibrated_intensity(scores: np.ndarray, anchors: tuple[float, float, float]) -> np.ndarray:
    """Raw blendshape scores (any shape, 0..1) -> AU intensity 0..5, piecewise linear through `anchors`
    (neutral -> 0, trace -> 1, top -> 5) and clipped at both ends; NaN stays NaN. The one map training's teacher
    signal (`distill.labels.Calibration`) and the runtime's blendshape AUs both use."""
    s = np.asarray(scores)
    out = np.interp(s, anchors, CALIBRATED_LEVELS)
    return np.where(np.isnan(s), np.nan, out)


@dataclass(frozen=True)
class _Rule:
    columns: tuple[int, ...]  # blendshape indices in `BLENDSHAPE_NAMES`
    anchors: tuple[float, float, float]  # raw score mapped to intensity 0, 1, 5
    slope: float
    intercept: float
    intensity_col: int | None  # column in the model's au_intensity output, None when not reported
    occurrence_col: int | None  # column in the model's au_occurrence output


class BlendshapeAUs:
    """The `blendshape_aus` rules of one model card, ready to apply to each face.

    >>> rules = BlendshapeAUs.from_card(model.card)        # None when the card has no entry
    >>> vals = rules.apply(face.blendshapes, {"au_intensity": ..., "au_occurrence": ...})
    """

    def __init__(self, rules: dict[str, _Rule]) -> None:
        self.rules = rules

    @classmethod
    def from_card(cls, card) -> "BlendshapeAUs | None":
        """Rules from a `ModelCard` (its `extra[CARD_ENTRY]`); None when the card has none.

        Raises:
            ModelError: one line naming the model and the malformed entry.
        """
        entry = card.extra.get(CARD_ENTRY)
        if not entry:
            return None
        rules = {}
        for au, spec in entry.items():
            try:
                cols = tuple(BLENDSHAPE_NAMES.index(n) for n in spec["blendshapes"])
                anchors = tuple(float(a) for a in spec["anchors"])
                slope, intercept = float(spec["probability"]["slope"]), float(spec["probability"]["intercept"])
                if len(anchors) != 3 or not anchors[0] < anchors[1] < anchors[2] or not cols:
                    raise ValueError("anchors must be 3 increasing scores and blendshapes non-empty")
            except (KeyError, TypeError, ValueError) as e:
                raise ModelError(f"{card.name}: card entry {CARD_ENTRY}[{au!r}] is malformed ({e})") from None
            i_col = card.au_intensity.index(au) if au in card.au_intensity else None
            o_col = card.au_occurrence.index(au) if au in card.au_occurrence else None
            if i_col is None and o_col is None:
                raise ModelError(f"{card.name}: card entry {CARD_ENTRY}[{au!r}] names an AU the model does not report")
            rules[au] = _Rule(cols, anchors, slope, intercept, i_col, o_col)
        return cls(rules)

    def values(self, blendshapes: np.ndarray) -> dict[str, tuple[float, float]]:
        """(52,) blendshape scores 0..1 -> {AU name: (intensity 0..5, occurrence probability 0..1)}; NaN in, NaN out."""
        bs = np.asarray(blendshapes, np.float64)
        out = {}
        for au, r in self.rules.items():
            score = float(bs[list(r.columns)].mean())
            inten = float(calibrated_intensity(score, r.anchors))
            prob = float(1.0 / (1.0 + np.exp(-(r.slope * inten + r.intercept)))) if np.isfinite(inten) else float("nan")
            out[au] = (inten, prob)
        return out

    def apply(self, blendshapes: np.ndarray, vals: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One face's model outputs with the rules' AUs overwritten (copies; the inputs are not changed).

        Args:
            blendshapes: (52,) float32 scores 0..1 of the face.
            vals: {"au_intensity": (A,), "au_occurrence": (K,), ...} the model's outputs for the face.
        """
        inten, occ = vals["au_intensity"].copy(), vals["au_occurrence"].copy()
        for au, (i, p) in self.values(blendshapes).items():
            r = self.rules[au]
            if r.intensity_col is not None:
                inten[r.intensity_col] = i
            if r.occurrence_col is not None:
                occ[r.occurrence_col] = p
        return {**vals, "au_intensity": inten, "au_occurrence": occ}
