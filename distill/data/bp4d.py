"""BP4D-Spontaneous and BP4D+ (Zhang et al., 2014 / 2016): spontaneous expression tasks with frame-level FACS codes.

Both are licensed by Binghamton University (contact through cs.binghamton.edu/~lijun/Research/3DFE) for
non-commercial research only, under a signed agreement; users bring their own copy, and nothing of it is
redistributed here. Layout, as distributed:

    <root>/2D+3D/F001/T1/<frame>.jpg        2D texture frames per subject and task (`Sequences/` or the subject
                                            folders directly under the root are accepted too)
    <root>/AUCoding/AU_OCC/F001_T1.csv      AU occurrence, one row per coded frame (`AU_OCC/` under the root too)

Each occurrence CSV has a header row whose first cell names the frame column (`Frame`, or `0` in some copies) and
whose other cells are AU numbers (`1,2,4,...`, an `AU` prefix is allowed); each cell is 0 (absent), 1 (present) or
9 (not coded). Any value other than 0/1 leaves that AU out of the frame's `au_occurrence`; frames with no coded AU
and coded frames without an image are skipped. Image names are matched to the frame column by their trailing
number (`0042.jpg` and `42.jpg` are frame 42).

Each record: key `F001_T1_<frame>`, `subject` "F001" (F = female, M = male), `au_occurrence` {AU: 0/1}, split
"train" (neither dataset has an official split; split by `subject`, usually 3-fold).
"""

from __future__ import annotations

import csv
import logging
import re
from pathlib import Path
from typing import Iterator

from .records import Record, read_image

logger = logging.getLogger(__name__)

_OCC_DIRS = ("AUCoding/AU_OCC", "AU_OCC")
_IMAGE_DIRS = ("2D+3D", "Sequences", "")  # "": subject folders directly under the root
_SEQUENCE = re.compile(r"([FM]\d{3})_(T\d+)")
_TRAILING_NUMBER = re.compile(r"(\d+)$")
_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}


def read_occurrence(path: Path) -> dict[int, dict[int, int]]:
    """frame number -> {AU number: 0/1} from one `F001_T1.csv`; codes other than 0/1 (9 = not coded) left out."""
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if not header:
            raise ValueError(f"{path}: empty file; expected a header row 'Frame,1,2,4,...'")
        try:
            aus = [int(cell.strip().upper().removeprefix("AU")) for cell in header[1:]]
        except ValueError:
            raise ValueError(f"{path}: header {','.join(header)[:60]!r} is not 'Frame,<AU numbers>'") from None
        frames: dict[int, dict[int, int]] = {}
        for row in rows:
            if not row or not row[0].strip():
                continue
            codes = {au: int(v) for au, v in zip(aus, (c.strip() for c in row[1:])) if v in ("0", "1")}
            if codes:
                frames[int(float(row[0]))] = codes
    return frames


def load_bp4d(root: Path) -> Iterator[Record]:
    """Records of every coded BP4D(+) frame that has an image (see the module docstring for the layout).

    Raises:
        FileNotFoundError: when the occurrence CSVs or the image folders are not found under `root`.
    """
    root = Path(root)
    occ = next((root / d for d in _OCC_DIRS if (root / d).is_dir()), None)
    if occ is None:
        raise FileNotFoundError(f"{root}: AUCoding/AU_OCC/ not found; expected AUCoding/AU_OCC/F001_T1.csv "
                                "and 2D+3D/F001/T1/<frame>.jpg")
    tables = sorted(p for p in occ.iterdir() if p.suffix.lower() == ".csv" and _SEQUENCE.fullmatch(p.stem))
    if not tables:
        raise FileNotFoundError(f"{occ}: no F001_T1.csv-style occurrence files found; expected one per subject "
                                "and task")
    subject = _SEQUENCE.fullmatch(tables[0].stem).group(1)
    images = next((root / d for d in _IMAGE_DIRS if (root / d / subject).is_dir()), None)
    if images is None:
        raise FileNotFoundError(f"{root}: no image folder for {subject} found; expected 2D+3D/{subject}/T1/<frame>.jpg "
                                f"(or Sequences/{subject}/...)")
    return _records(tables, images)


def _records(tables: list[Path], images: Path) -> Iterator[Record]:
    n_without_image = 0
    for table in tables:
        subject, task = _SEQUENCE.fullmatch(table.stem).groups()
        folder = images / subject / task
        listing = folder.iterdir() if folder.is_dir() else ()
        files = {int(m.group(1)): p for p in listing
                 if p.suffix.lower() in _IMAGE_EXT and (m := _TRAILING_NUMBER.search(p.stem))}
        for frame, codes in sorted(read_occurrence(table).items()):
            if frame not in files:
                n_without_image += 1
                continue
            yield Record(
                key=f"{subject}_{task}_{frame}",
                split="train",
                load=lambda p=files[frame]: read_image(p),
                subject=subject,
                au_occurrence=codes,
            )
    if n_without_image:
        logger.warning("%s: skipped %d coded frames without an image", images, n_without_image)
