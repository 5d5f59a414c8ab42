"""Output step, read back: a results CSV of either layout -> `Results` in native column names (the writer's inverse).

The one reader of results CSVs for the tools that work on them (`libreface report`, `libreface elan`). Column
names, their order and the OpenFace <-> native mapping all come from `schema`: the expression classes are the
columns the native layout writes just before `expression` (the model card's classes, whatever they are), the AU
lists are the `<AU>_intensity` / `<AU>_presence` columns the CSV has.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..errors import InputError
from .schema import (
    AU_INTENSITY_SUFFIX,
    AU_PRESENCE_SUFFIX,
    AU_PROBABILITY_SUFFIX,
    BOX_COLUMNS,
    EXPRESSION_LABEL_COLUMN,
    GAZE_ANGLE_COLUMNS,
    GAZE_VECTOR_COLUMNS,
    ID_COLUMNS,
    POSE_COLUMNS,
    TRANSLATION_COLUMNS,
    native_from_openface,
)

if TYPE_CHECKING:
    import pandas as pd

_AU_SUFFIXES = (AU_INTENSITY_SUFFIX, AU_PRESENCE_SUFFIX, AU_PROBABILITY_SUFFIX)
_NATIVE_SCALARS = frozenset((*ID_COLUMNS, *BOX_COLUMNS, *POSE_COLUMNS, *TRANSLATION_COLUMNS, *GAZE_VECTOR_COLUMNS,
                             *GAZE_ANGLE_COLUMNS, EXPRESSION_LABEL_COLUMN))
"""Native columns that are neither AU nor expression probability columns (landmarks and blendshapes aside)."""
_RADIANS = (*POSE_COLUMNS, *GAZE_ANGLE_COLUMNS)
"""Native (degree) names of the columns the OpenFace layout writes in radians."""


@dataclass
class Results:
    """One recording's results in canonical (native) column names.

    Attributes:
        path: the CSV that was read.
        fmt: "native" or "openface" (the layout the CSV was written in).
        rows: one row per face per analysed frame (and one per faceless frame) with the columns of `schema` the CSV
            has, under their native names: `frame` (0-based, int), `face_id` (-1 on a faceless frame, int),
            `person_id` (-1 unassigned, int), `timestamp` (s), `confidence` (0..1), `success` (0/1, int), box,
            `pose_pitch/yaw/roll` (degrees), translation (mm), gaze, `<AU>_intensity` (0..5), `<AU>_presence`
            (0/1), `<AU>_probability` (0..1), the expression probabilities (0..1) and `expression`. Landmark and
            blendshape columns are not read.
        au_intensity: AUs with an intensity column, in CSV order, e.g. ["AU01", "AU02", ...].
        au_presence: AUs with a presence (occurrence) column, in CSV order.
        expressions: expression probability columns, in CSV order (empty for the OpenFace layout).
    """

    path: Path
    fmt: str
    rows: pd.DataFrame
    au_intensity: list[str] = field(default_factory=list)
    au_presence: list[str] = field(default_factory=list)
    expressions: list[str] = field(default_factory=list)

    @property
    def aus(self) -> list[str]:
        """Every AU with an intensity or presence column, intensity ones first (CSV order)."""
        return self.au_intensity + [a for a in self.au_presence if a not in self.au_intensity]


def frame_ends(timestamps: np.ndarray) -> np.ndarray:
    """(n,) sorted frame times (s) -> (n,) end time of each frame (s): the next frame's time, and for the last one
    its time plus the median interval, so durations add up right with `--every` / `--fps` subsampling too."""
    t = np.asarray(timestamps, dtype=np.float64)
    if t.size == 0:
        return t
    step = float(np.median(np.diff(t))) if t.size > 1 else 0.0
    return np.append(t[1:], t[-1] + step)


def read_header(path: str | Path) -> list[str]:
    """The column names of a CSV's first line, stripped (OpenFace writes ", "); InputError naming `path` if not."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8", newline="") as f:
            header = next(csv.reader(f, skipinitialspace=True), [])
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder; expected a libreface results CSV") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: cannot read it as a CSV ({getattr(e, 'strerror', None) or e})") from None
    return [c.strip() for c in header]


def is_openface(columns: Sequence[str]) -> bool:
    """True when `columns` are of the OpenFace layout (an OpenFace-only name such as `pose_Rx` or `AU12_r`)."""
    mapping = native_from_openface()
    return any(mapping.get(c, c) != c for c in columns)


def au_columns(columns: Sequence[str], suffix: str) -> list[str]:
    """The AU names of the native columns `<AU><suffix>` among `columns`, in their order (suffix from `schema`)."""
    return [c[: -len(suffix)] for c in columns if c.endswith(suffix) and len(c) > len(suffix)]


def expression_columns_in(columns: Sequence[str]) -> list[str]:
    """The expression probability columns of a native header: those the schema writes just before `expression`.

    Walks back from `expression` to the first AU or other known column, so the class names are whatever the model
    card had; [] when there is no `expression` column (OpenFace layout).
    """
    columns = list(columns)
    if EXPRESSION_LABEL_COLUMN not in columns:
        return []
    out: list[str] = []
    for c in reversed(columns[: columns.index(EXPRESSION_LABEL_COLUMN)]):
        if c in _NATIVE_SCALARS or c.endswith(_AU_SUFFIXES):
            break
        out.insert(0, c)
    return out


def read_results(path: str | Path) -> Results:
    """Read a libreface results CSV of either layout into `Results` (OpenFace names and units mapped to native ones).

    OpenFace layout: `frame` becomes 0-based, pose and gaze angles (radians) become degrees under their native
    names (`schema.native_from_openface`), `AUxx_r` / `AUxx_c` become `AUxx_intensity` / `AUxx_presence`, a
    faceless frame (`success` 0, no AU values, no confidence) gets `face_id` -1 as in the native layout, and
    `person_id` is -1 throughout. A CSV without `success` counts the rows with `face_id` >= 0 as analysed.

    Raises:
        InputError: one line naming the file when it is missing, empty or not a libreface results CSV.
    """
    import pandas as pd

    path = Path(path)
    cols = read_header(path)
    if not cols or cols == [""]:
        raise InputError(f"{path}: the file is empty; expected a libreface results CSV")
    missing = [c for c in ("frame", "timestamp") if c not in cols]
    if missing:
        raise InputError(f"{path}: not a libreface results CSV (no {', '.join(missing)} column); "
                         "expected the output of `libreface VIDEO -o out.csv`")
    openface = is_openface(cols)
    if openface:
        mapping = native_from_openface()
        wanted = {c for c in cols if c in mapping}
    else:
        wanted = {c for c in cols if c in _NATIVE_SCALARS or c.endswith(_AU_SUFFIXES)}
        wanted |= set(expression_columns_in(cols))
    dtypes = {EXPRESSION_LABEL_COLUMN: "string"} if EXPRESSION_LABEL_COLUMN in wanted else None
    try:
        df = pd.read_csv(path, skipinitialspace=True, dtype=dtypes, low_memory=False,
                         usecols=lambda c: c.strip() in wanted)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"{path}: cannot parse the CSV ({(str(e) or type(e).__name__).splitlines()[0]})") from None
    df.columns = [c.strip() for c in df.columns]
    if openface:
        df = _from_openface(df)
    if "face_id" not in df.columns:
        df["face_id"] = 0
    df["face_id"] = pd.to_numeric(df["face_id"], errors="coerce").fillna(-1).astype(np.int64)
    df["success"] = (pd.to_numeric(df["success"], errors="coerce").fillna(0).astype(np.int64)
                     if "success" in df.columns else (df["face_id"] >= 0).astype(np.int64))
    df["person_id"] = (pd.to_numeric(df["person_id"], errors="coerce").fillna(-1).astype(np.int64)
                       if "person_id" in df.columns else np.int64(-1))
    df["frame"] = pd.to_numeric(df["frame"], errors="coerce").fillna(0).astype(np.int64)
    df["timestamp"] = pd.to_numeric(df["timestamp"], errors="coerce").astype(np.float64)
    if len(df) and df["timestamp"].isna().all():
        raise InputError(f"{path}: the timestamp column is empty; expected seconds from the start of the recording")
    names = list(df.columns)
    return Results(path, "openface" if openface else "native", df, au_columns(names, AU_INTENSITY_SUFFIX),
                   au_columns(names, AU_PRESENCE_SUFFIX), [] if openface else expression_columns_in(names))


def _from_openface(df: pd.DataFrame) -> pd.DataFrame:
    """OpenFace-layout names and units -> native ones (see `read_results`)."""
    import pandas as pd

    df = df.rename(columns=native_from_openface())
    for c in _RADIANS:
        if c in df.columns:
            df[c] = np.degrees(pd.to_numeric(df[c], errors="coerce"))
    df["frame"] = pd.to_numeric(df["frame"], errors="coerce") - 1
    if "success" in df.columns and "face_id" in df.columns:
        au_cols = [c for c in df.columns if c.endswith(_AU_SUFFIXES)]
        faceless = (df["success"] == 0) & (df[au_cols].isna().all(axis=1) if au_cols else True)
        if "confidence" in df.columns:
            faceless &= df["confidence"].isna() | (df["confidence"] == 0)
        df.loc[faceless, "face_id"] = -1
    return df
