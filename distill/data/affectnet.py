"""AffectNet (Mollahosseini et al., IEEE TAC 2017): in-the-wild faces with manual expression, valence and arousal.

AffectNet is licensed by its authors (University of Denver, mohammadmahoor.com/affectnet) for non-commercial
research only, on request; users bring their own copy, and nothing of it is redistributed here. Two layouts are read:

* The official manual annotations:
  `Manually_Annotated_file_lists/training.csv` and `validation.csv` (or the two CSVs directly under the root), with
  columns `subDirectory_filePath,face_x,face_y,face_width,face_height,facial_landmarks,expression,valence,arousal`,
  and the images under `Manually_Annotated_Images/<subDirectory_filePath>`. The face box is in pixels of the full
  image (x, y = top-left corner); a record's `load` returns the box grown by `FACE_MARGIN` (20 %) of its width on
  the left and right and of its height above and below, clamped to the image. Rows whose image is missing from the
  copy, or whose box is empty, are skipped (one warning with the count).
* The "AffectNet-8" folder copy: `train_set/images/<n>.jpg` with `train_set/annotations/<n>_exp.npy` (the class
  code as a 0-d string or int array), and the same under `val_set/`. These images are already 224x224 face crops
  and are returned as they are.

Expression codes: 0 neutral, 1 happy, 2 sad, 3 surprise, 4 fear, 5 disgust, 6 anger, 7 contempt are kept, as one-hot
votes over `EXPRESSIONS`; 8 none, 9 uncertain and 10 no-face are dropped. Valence and arousal are not carried
(`Record` has no field for them).

Splits: training -> "train", validation -> "test". AffectNet's own test set was never released, so its validation
set is the test set every paper reports on; carve a "valid" split out of "train" for model selection.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from .records import EXPRESSIONS, Record, expression_index, read_image

logger = logging.getLogger(__name__)

AFFECTNET_EXPRESSIONS: tuple[str, ...] = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
"""AffectNet expression codes 0..7, in code order (8 none, 9 uncertain and 10 no-face are dropped)."""

FACE_MARGIN = 0.2
"""Margin added on each side of the annotated face box, as a fraction of the box's width (left, right) or height."""

_LISTS = {"training.csv": "train", "validation.csv": "test"}
_FOLDERS = {"train_set": "train", "val_set": "test"}
_IMAGES = "Manually_Annotated_Images"
_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}
_CODE_TO_CLASS = {code: expression_index(name) for code, name in enumerate(AFFECTNET_EXPRESSIONS)}


def _one_hot(code: int) -> np.ndarray:
    votes = np.zeros(len(EXPRESSIONS), np.float32)
    votes[_CODE_TO_CLASS[code]] = 1.0
    return votes


def face_crop(image: np.ndarray, x: float, y: float, width: float, height: float,
              margin: float = FACE_MARGIN) -> np.ndarray:
    """The face box grown by `margin` on each side and clamped to the image.

    Args:
        image: (H, W, 3) uint8 RGB.
        x, y: top-left corner of the box, in pixels of `image`.
        width, height: box size in pixels.
        margin: fraction of `width` added left and right, and of `height` added above and below.

    Returns:
        (h, w, 3) uint8 RGB view of `image`, h <= (1 + 2 * margin) * height, w likewise.
    """
    h, w = image.shape[:2]
    x0 = max(0, int(round(x - margin * width)))
    y0 = max(0, int(round(y - margin * height)))
    x1 = min(w, int(round(x + (1 + margin) * width)))
    y1 = min(h, int(round(y + (1 + margin) * height)))
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"face box x={x} y={y} w={width} h={height} lies outside the {w}x{h} image")
    return image[y0:y1, x0:x1]


def load_affectnet(root: Path) -> Iterator[Record]:
    """Records from an AffectNet folder in either layout (see the module docstring).

    Raises:
        FileNotFoundError: when neither layout is found under `root`, or the CSVs are there without the images.
    """
    root = Path(root)
    for lists in (root / "Manually_Annotated_file_lists", root):
        tables = [(lists / name, split) for name, split in _LISTS.items() if (lists / name).is_file()]
        if tables:
            if not (root / _IMAGES).is_dir():
                raise FileNotFoundError(f"{root / _IMAGES}: not found; expected the images of {tables[0][0].name} "
                                        f"under {_IMAGES}/<subDirectory_filePath>")
            return _from_lists(root / _IMAGES, tables)
    folders = [(root / name, split) for name, split in _FOLDERS.items()
               if (root / name / "images").is_dir() and (root / name / "annotations").is_dir()]
    if folders:
        return _from_folders(folders)
    raise FileNotFoundError(f"{root}: no AffectNet layout found; expected Manually_Annotated_file_lists/training.csv "
                            f"(+ validation.csv) with {_IMAGES}/, or train_set/ + val_set/ with images/ and "
                            "annotations/")


def _from_lists(images: Path, tables: list[tuple[Path, str]]) -> Iterator[Record]:
    n_missing, n_empty_box = 0, 0
    for table, split in tables:
        with open(table, newline="") as f:
            for row in csv.DictReader(f):
                code = int(row["expression"])
                if code not in _CODE_TO_CLASS:
                    continue
                box = tuple(float(row[k]) for k in ("face_x", "face_y", "face_width", "face_height"))
                if box[2] <= 0 or box[3] <= 0:
                    n_empty_box += 1
                    continue
                path = images / row["subDirectory_filePath"]
                if not path.is_file():
                    n_missing += 1
                    continue
                yield Record(
                    key=row["subDirectory_filePath"],
                    split=split,
                    load=lambda p=path, b=box: np.ascontiguousarray(face_crop(read_image(p), *b)),
                    expression_votes=_one_hot(code),
                )
    if n_missing or n_empty_box:
        logger.warning("%s: skipped %d rows whose image is missing and %d with an empty face box",
                       images.parent, n_missing, n_empty_box)


def _read_code(path: Path) -> int:
    """The class code in `<n>_exp.npy`: a 0-d (or 1-element) array of str or int."""
    return int(np.load(path, allow_pickle=False).reshape(-1)[0])


def _from_folders(folders: list[tuple[Path, str]]) -> Iterator[Record]:
    n_missing = 0
    for folder, split in folders:
        images = folder / "images"
        paths = sorted((p for p in images.iterdir() if p.suffix.lower() in _IMAGE_EXT),
                       key=lambda p: (0, int(p.stem), "") if p.stem.isdigit() else (1, 0, p.stem))
        for path in paths:
            exp = folder / "annotations" / f"{path.stem}_exp.npy"
            if not exp.is_file():
                n_missing += 1
                continue
            code = _read_code(exp)
            if code not in _CODE_TO_CLASS:
                continue
            yield Record(
                key=f"{folder.name}/{path.name}",
                split=split,
                load=lambda p=path: read_image(p),
                expression_votes=_one_hot(code),
            )
    if n_missing:
        logger.warning("%s: skipped %d images without an annotations/<n>_exp.npy", folders[0][0].parent, n_missing)
