"""The common record every dataset loader yields, and the label vocabularies."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..labels import DISFA_AUS  # noqa: F401 - re-exported for the loaders

EXPRESSIONS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
"""The 8 expression classes of the model contract, in output order (FER+ order)."""


EXPRESSION_ALIASES = {
    "neutral": "neutral", "happy": "happiness", "happiness": "happiness", "surprise": "surprise",
    "sad": "sadness", "sadness": "sadness", "anger": "anger", "angry": "anger", "disgust": "disgust",
    "fear": "fear", "contempt": "contempt",
    "surprised": "surprise", "fearful": "fear", "disgusted": "disgust",  # FER2013 folder copies with adjectives
}


def expression_index(name: str) -> int:
    """Index in `EXPRESSIONS` of a dataset's emotion name (e.g. "happy" -> 1)."""
    key = name.strip().lower()
    if key not in EXPRESSION_ALIASES:
        raise ValueError(f"unknown expression {name!r}; known: {', '.join(sorted(EXPRESSION_ALIASES))}")
    return EXPRESSIONS.index(EXPRESSION_ALIASES[key])


def read_image(path: Path) -> np.ndarray:
    """(H, W, 3) uint8 RGB from any image file OpenCV reads (grey is replicated)."""
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: cannot decode image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


@dataclass
class Record:
    """One labelled face image.

    Attributes:
        key: unique id within the dataset (usually the file name).
        split: "train", "valid" or "test" (loader's split, or "train" when the dataset has none).
        load: returns the image, (H, W, 3) uint8 RGB.
        subject: person id when the dataset has one (for subject-wise splits).
        expression_votes: (8,) float vote counts / probabilities in `EXPRESSIONS` order.
        au_occurrence: AU number -> 0/1 (human FACS codes).
        au_intensity: AU number -> 0..5 (human FACS intensity codes).
    """

    key: str
    split: str
    load: Callable[[], np.ndarray]
    subject: str | None = None
    expression_votes: np.ndarray | None = None
    au_occurrence: dict[int, int] = field(default_factory=dict)
    au_intensity: dict[int, float] = field(default_factory=dict)

    @property
    def expression(self) -> int | None:
        """Majority class (first maximum), or None without expression labels."""
        if self.expression_votes is None or not np.any(self.expression_votes > 0):
            return None
        return int(np.argmax(self.expression_votes))
