"""FER+ (Microsoft relabelling of FER2013, 10 annotators over 8 emotions + unknown + not-a-face).

Two layouts are read:

* `generate_training_data.py` output: `FER2013Train/`, `FER2013Valid/`, `FER2013Test/`, each with
  48x48 PNGs and a header-less `label.csv` (`name, box, 10 vote counts`). These votes are used
  when present (they are what Microsoft's own training code reads).
* `fer2013new.csv` (votes per FER2013 row) next to the Kaggle `fer2013.csv` (pixels as text).

Images whose top vote is "unknown" or "not a face" are dropped (Microsoft's "majority" mode).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

import numpy as np

from .records import Record, read_image

_SPLITS = {"FER2013Train": "train", "FER2013Valid": "valid", "FER2013Test": "test"}
_USAGE = {"Training": "train", "PublicTest": "valid", "PrivateTest": "test"}


def _keep(votes10: np.ndarray) -> bool:
    return int(np.argmax(votes10)) < 8 and votes10[:8].sum() > 0


def load_ferplus(root: Path) -> Iterator[Record]:
    """Records from a FER+ folder in either layout (see the module docstring)."""
    root = Path(root)
    if any((root / d / "label.csv").exists() for d in _SPLITS):
        for folder, split in _SPLITS.items():
            label = root / folder / "label.csv"
            if not label.exists():
                continue
            with open(label, newline="") as f:
                for row in csv.reader(f):
                    if not row:
                        continue
                    votes = np.array([float(v) for v in row[2:12]], np.float32)
                    if not _keep(votes):
                        continue
                    path = root / folder / row[0]
                    yield Record(key=row[0], split=split, load=lambda p=path: read_image(p), expression_votes=votes[:8])
        return
    new = root / "fer2013new.csv"
    old = root / "fer2013.csv"
    if not (new.exists() and old.exists()):
        raise FileNotFoundError(f"{root}: neither FER2013Train/label.csv nor fer2013new.csv + fer2013.csv found")
    with open(new, newline="") as fn, open(old, newline="") as fo:
        for i, (rn, ro) in enumerate(zip(csv.DictReader(fn), csv.DictReader(fo))):
            if not rn["Image name"].strip():
                continue
            votes = np.array([float(rn[k]) for k in ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF")], np.float32)
            if not _keep(votes):
                continue
            pixels = np.array(ro["pixels"].split(), np.uint8).reshape(48, 48)
            yield Record(
                key=rn["Image name"].strip(),
                split=_USAGE[rn["Usage"]],
                load=lambda px=pixels: np.repeat(px[..., None], 3, axis=2),
                expression_votes=votes[:8],
            )
