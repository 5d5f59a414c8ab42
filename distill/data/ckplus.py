"""CK+ (Extended Cohn-Kanade): emotion-labelled sequences with FACS AU codes at the peak frame.

Layout: `<emotion>/Sxxx_yyy_zzzzzzzz.png` image folders (CK+48 style, or full frames), and an
optional `ckplus_au_occurrence.csv` with one row per sequence (`subject, sequence, emotion,
AU1..AU27` as 0/1). The AU codes of a sequence are attached to each of its images (CK+48 keeps
the last three frames, all at or next to the coded peak). Records carry `subject`, so splits can
be made by person; `split` is "train" for every record (CK+ has no official split).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Iterator

import numpy as np

from .records import EXPRESSIONS, Record, expression_index, read_image

_NAME = re.compile(r"(S\d{3})_(\d{3})_(\d+)")
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


def read_au_table(path: Path) -> dict[str, dict[int, int]]:
    """sequence id -> {AU number: 0/1} from `ckplus_au_occurrence.csv`."""
    table: dict[str, dict[int, int]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            table[row["sequence"]] = {int(k[2:]): int(v) for k, v in row.items() if k.startswith("AU")}
    return table


def load_ckplus(root: Path) -> Iterator[Record]:
    """Records from a CK+ image-folder tree, with AU codes when the csv is present."""
    root = Path(root)
    aus = read_au_table(root / "ckplus_au_occurrence.csv") if (root / "ckplus_au_occurrence.csv").exists() else {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        emotion = expression_index(folder.name)
        for path in sorted(folder.iterdir()):
            m = _NAME.match(path.stem)
            if path.suffix.lower() not in _IMAGE_EXT or not m:
                continue
            votes = np.zeros(len(EXPRESSIONS), np.float32)
            votes[emotion] = 1.0
            seq = f"{m.group(1)}_{m.group(2)}"
            yield Record(
                key=path.name,
                split="train",
                load=lambda p=path: read_image(p),
                subject=m.group(1),
                expression_votes=votes,
                au_occurrence=dict(aus.get(seq, {})),
            )


def subject_number(subject: str) -> int:
    """S010 -> 10."""
    return int(subject.lstrip("Ss"))
