"""FER2013 (Goodfellow et al., ICML 2013 representation-learning challenge): 35,887 48x48 grey faces, 7 emotions.

Two layouts are read (users bring their own copy: the data is distributed by Kaggle for research use under the
challenge's terms, and is not redistributed here):

* Kaggle's `fer2013.csv` (challenges-in-representation-learning-facial-expression-recognition-challenge), columns
  `emotion,pixels,Usage`: `emotion` 0=Angry 1=Disgust 2=Fear 3=Happy 4=Sad 5=Surprise 6=Neutral, `pixels` 2304
  space-separated 0..255 ints (48x48, row-major), `Usage` Training / PublicTest / PrivateTest -> split
  "train" / "valid" / "test". Keys are `fer0000000.png`, the row names FER+ uses, so the two can be joined.
* The image-folder copy (e.g. Kaggle's "msambare/fer2013"): `train/<emotion>/*.png|jpg` and `test/<emotion>/*`,
  emotion folders named angry, disgust, fear, happy, neutral, sad, surprise (any name `expression_index` knows).
  `train` -> "train", `val` / `valid` / `validation` -> "valid", `test` -> "test" (in that copy `test` holds
  PublicTest and PrivateTest together). Keys are `<split folder>/<emotion>/<file name>`.

When `fer2013.csv` is present the folders are ignored. FER2013 has no contempt class. The votes of a record are
one-hot over `EXPRESSIONS` (a single label per image; use `ferplus` for the 10-annotator votes).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterator

import numpy as np

from .records import EXPRESSIONS, Record, expression_index, read_image

FER2013_EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013 emotion codes 0..6, in code order."""

_USAGE = {"Training": "train", "PublicTest": "valid", "PrivateTest": "test"}
_SPLIT_DIRS = {"train": "train", "val": "valid", "valid": "valid", "validation": "valid", "test": "test"}
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp"}
_SIDE_PX = 48


def _one_hot(index: int) -> np.ndarray:
    votes = np.zeros(len(EXPRESSIONS), np.float32)
    votes[index] = 1.0
    return votes


def load_fer2013(root: Path) -> Iterator[Record]:
    """Records from a FER2013 folder holding `fer2013.csv` or `train/` + `test/` emotion folders.

    Raises:
        FileNotFoundError: when neither layout is found under `root`.
    """
    root = Path(root)
    table = root / "fer2013.csv"
    if table.is_file():
        return _from_csv(table)
    listing = sorted(root.iterdir()) if root.is_dir() else []
    splits = [d for d in listing if d.is_dir() and d.name.lower() in _SPLIT_DIRS]
    if not splits:
        raise FileNotFoundError(f"{root}: neither fer2013.csv nor train/<emotion>/ + test/<emotion>/ image folders "
                                "found; expected Kaggle's fer2013.csv or its image-folder copy")
    return _from_folders(splits)


def _from_csv(path: Path) -> Iterator[Record]:
    codes = {i: expression_index(name) for i, name in enumerate(FER2013_EMOTIONS)}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        reader.fieldnames = [name.strip() for name in reader.fieldnames or []]  # icml_face_data.csv has " Usage"
        missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames)
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(sorted(missing))}; expected emotion,pixels,Usage")
        for i, row in enumerate(reader):
            pixels = np.array(row["pixels"].split(), np.uint8)  # parsed now: 2.3 kB per image instead of ~8 kB of text
            if pixels.size != _SIDE_PX * _SIDE_PX:
                raise ValueError(f"{path}: data row {i + 1} has {pixels.size} pixels; expected {_SIDE_PX * _SIDE_PX} "
                                 f"({_SIDE_PX}x{_SIDE_PX})")
            usage = row["Usage"].strip()
            if usage not in _USAGE:
                raise ValueError(f"{path}: data row {i + 1} has Usage {usage!r}; expected one of {', '.join(_USAGE)}")
            yield Record(
                key=f"fer{i:07d}.png",
                split=_USAGE[usage],
                load=lambda px=pixels.reshape(_SIDE_PX, _SIDE_PX): np.repeat(px[..., None], 3, axis=2),
                expression_votes=_one_hot(codes[int(row["emotion"])]),
            )


def _from_folders(splits: list[Path]) -> Iterator[Record]:
    for split_dir in splits:
        for emotion_dir in sorted(d for d in split_dir.iterdir() if d.is_dir()):
            try:
                emotion = expression_index(emotion_dir.name)
            except ValueError as e:
                raise ValueError(f"{emotion_dir}: {e}") from None
            for path in sorted(emotion_dir.iterdir()):
                if path.suffix.lower() not in _IMAGE_EXT:
                    continue
                yield Record(
                    key=f"{split_dir.name}/{emotion_dir.name}/{path.name}",
                    split=_SPLIT_DIRS[split_dir.name.lower()],
                    load=lambda p=path: read_image(p),
                    expression_votes=_one_hot(emotion),
                )
