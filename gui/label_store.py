"""Human labels for analysed faces, stored next to their feature vectors (label correction).

For a features file `F.parquet` (or `F.npz`) the labels go to `F.labels.csv`, one row per labelled
face, keyed like the features and the native CSV:

==========  ===============================================================================
column      meaning
==========  ===============================================================================
frame       0-based decode index (the native CSV's `frame`)
face_id     track id (the native CSV's `face_id`)
expression  the right expression class (one of the model's `expressions`), empty if not marked
<AU>        one column per AU of the model's `au_occurrence` (e.g. AU01): 1 present, 0 absent,
            empty if not marked
==========  ===============================================================================

`python -m distill finetune-heads --features F.parquet --labels F.labels.csv --out heads.onnx`
trains new heads on these rows without the video. The file is rewritten atomically on `save()`.
"""

from __future__ import annotations

import csv
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

from libreface.results import OutputLabels

LABELS_SUFFIX = ".labels.csv"
KEY_COLUMNS: tuple[str, ...] = ("frame", "face_id", "expression")


def labels_path_for(features_path: str | Path) -> Path:
    """`F.parquet` -> `F.labels.csv`, in the same folder."""
    return Path(features_path).with_suffix(LABELS_SUFFIX)


@dataclass
class FaceLabel:
    """What the user said about one face in one frame.

    Attributes:
        expression: the right class name, or None when not marked.
        aus: AU name -> True (present) / False (absent); AUs not marked are absent from the dict.
    """

    expression: str | None = None
    aus: dict[str, bool] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return self.expression is None and not self.aus


class LabelStore:
    """Expression and AU-presence labels keyed by (frame, face_id), saved as `<features stem>.labels.csv`.

    Args:
        path: the labels CSV (see `labels_path_for`).
        labels: the model's output names; expression classes and AU columns come from them.
    """

    def __init__(self, path: str | Path, labels: OutputLabels) -> None:
        self.path = Path(path)
        self.labels = labels
        self._rows: dict[tuple[int, int], FaceLabel] = {}
        self.dirty = False

    @property
    def columns(self) -> list[str]:
        """The header: frame, face_id, expression, then the model's occurrence AUs."""
        return [*KEY_COLUMNS, *self.labels.au_occurrence]

    @classmethod
    def load(cls, path: str | Path, labels: OutputLabels) -> "LabelStore":
        """Read `path` if it exists (else an empty store).

        Raises:
            ValueError: one line naming the file, for columns or values the model does not know.
        """
        store = cls(path, labels)
        if not store.path.exists():
            return store
        with open(store.path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if list(header[:3]) != list(KEY_COLUMNS):
                raise ValueError(f"{store.path}: not a labels file (header starts {header[:3]}, expected "
                                 f"{list(KEY_COLUMNS)})")
            unknown = [c for c in header[3:] if c not in labels.au_occurrence]
            if unknown:
                raise ValueError(f"{store.path}: AU columns {unknown} are not outputs of model {labels.model!r} "
                                 f"(it has {', '.join(labels.au_occurrence)})")
            for line, row in enumerate(reader, start=2):
                key = (int(row["frame"]), int(row["face_id"]))
                expression = row["expression"] or None
                if expression is not None and expression not in labels.expressions:
                    raise ValueError(f"{store.path}, line {line}: unknown expression {expression!r}; "
                                     f"expected one of: {', '.join(labels.expressions)}")
                aus = {au: row[au] == "1" for au in header[3:] if row.get(au) in ("0", "1")}
                label = FaceLabel(expression, aus)
                if not label.is_empty():
                    store._rows[key] = label
        return store

    def __len__(self) -> int:
        """Number of labelled faces."""
        return len(self._rows)

    def get(self, frame: int, face_id: int) -> FaceLabel | None:
        return self._rows.get((int(frame), int(face_id)))

    def items(self) -> list[tuple[tuple[int, int], FaceLabel]]:
        """((frame, face_id), label) pairs sorted by frame, then face."""
        return sorted(self._rows.items())

    def set_expression(self, frame: int, face_id: int, expression: str | None) -> None:
        """Mark (or with None, unmark) the right expression of a face."""
        if expression is not None and expression not in self.labels.expressions:
            raise ValueError(f"unknown expression {expression!r}; expected one of: {', '.join(self.labels.expressions)}")
        label = self._rows.setdefault((int(frame), int(face_id)), FaceLabel())
        label.expression = expression
        self._tidy(frame, face_id)

    def set_au(self, frame: int, face_id: int, au: str, present: bool | None) -> None:
        """Mark an AU present (True) or absent (False), or unmark it (None)."""
        if au not in self.labels.au_occurrence:
            raise ValueError(f"unknown AU {au!r}; expected one of: {', '.join(self.labels.au_occurrence)}")
        label = self._rows.setdefault((int(frame), int(face_id)), FaceLabel())
        if present is None:
            label.aus.pop(au, None)
        else:
            label.aus[au] = bool(present)
        self._tidy(frame, face_id)

    def _tidy(self, frame: int, face_id: int) -> None:
        key = (int(frame), int(face_id))
        if self._rows[key].is_empty():
            del self._rows[key]
        self.dirty = True

    def save(self) -> Path:
        """Write the CSV atomically (a temporary file renamed over it); returns its path."""
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(self.columns)
        for (frame, face_id), label in self.items():
            aus = ["" if au not in label.aus else int(label.aus[au]) for au in self.labels.au_occurrence]
            w.writerow([frame, face_id, label.expression or "", *aus])
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(buf.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self.dirty = False
        return self.path
