"""Output step: the column schema and crash-safe streaming writers.

This module is the one place that defines output columns. `native_columns` and `openface_columns`
name them, `frame_rows` fills them from a `FrameResult`, and `to_dataframe`, `CsvSink` and the GUI
all go through these two, so a column cannot drift between the DataFrame and the CSV.

Native layout (`fmt="native"`), one row per face per analysed frame:

=====================================  =========================================================  =========
column(s)                              meaning                                                    written
=====================================  =========================================================  =========
frame                                  0-based index in decode order                              int
face_id                                track id within a shot; -1 on the row of a faceless frame  int
person_id                              identity across the recording; -1 unassigned, empty       int
                                       on a faceless frame
timestamp                              presentation time, seconds                                 6 dec.
confidence                             face detector score, 0..1                                  4 dec.
success                                1 if the face was analysed, else 0                         int
box_x0, box_y0, box_x1, box_y1         landmark bounding box, frame pixels                        2 dec.
pose_pitch, pose_yaw, pose_roll        head pose, degrees (see `landmarks.pose_from_matrix`)      3 dec.
<AU>_intensity                         AU intensity, 0..5 (DISFA scale)                           4 dec.
<AU>_presence                          1 if <AU>_probability >= the model's threshold, else 0     int
<AU>_probability                       AU occurrence probability, 0..1                            4 dec.
neutral, happiness, ...                expression class probabilities, 0..1, summing to 1         4 dec.
expression                             name of the most probable class                            text
lm_x_0..477, lm_y_0..477, lm_z_0..477  (optional) MediaPipe landmarks, frame pixels; z is         2 dec.
                                       relative depth in the same scale, smaller = closer
bs__neutral, bs_browDownLeft, ...      (optional) the 52 MediaPipe blendshapes, 0..1              4 dec.
=====================================  =========================================================  =========

All `<AU>_presence` columns come first, then all `<AU>_probability` columns. The AU lists, the
threshold and the class names come from the model card (`OutputLabels`), never from constants here.

A frame without a face still gets one row: `success=0`, `face_id=-1`, its frame and timestamp,
and every other field empty. A face that was found but could not be analysed (`success=False`,
e.g. alignment failed) keeps its box, pose, confidence and landmarks; its model outputs are empty.

OpenFace layout (`fmt="openface"`): OpenFace 2.0's names and order for the columns both tools
share, so that scripts written for OpenFace's `FeatureExtraction` CSVs keep working:
`frame` (1-based), `face_id` (0 on a faceless frame), `timestamp`, `confidence`, `success`,
`pose_Rx, pose_Ry, pose_Rz` (radians: Rx = pitch, Ry = yaw, Rz = roll, signs as libreface's
`pose_deg`), optional `x_0..x_67, y_0..y_67` (iBUG-68 points taken from the MediaPipe mesh, see
`IBUG68_FROM_MEDIAPIPE`), `AUxx_r` then `AUxx_c` (0/1) for the AUs of OpenFace's lists that the
model has. OpenFace separates fields with ", " (comma and space) in its header and rows, and so do
we in this layout: read it with `pd.read_csv(path, skipinitialspace=True)`.

Files are written crash-safe: rows go to `<path>.partial`, flushed and fsync'ed every couple of
seconds, and the file is renamed to `<path>` only when the run ends normally. A `.partial` CSV
always starts with its header and (unless the machine lost power mid-write) holds whole lines only;
`CsvSink(..., resume=True)` continues it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from .errors import OutputError
from .landmarks import BLENDSHAPE_NAMES, N_LANDMARKS
from .results import FaceResult, FrameResult, OutputLabels

log = logging.getLogger(__name__)

FORMATS: tuple[str, ...] = ("native", "openface")
"""CSV layouts accepted by `fmt=`."""

# ---------------------------------------------------------------------------------------------
# Column schema
# ---------------------------------------------------------------------------------------------

ID_COLUMNS: tuple[str, ...] = ("frame", "face_id", "person_id", "timestamp", "confidence", "success")
BOX_COLUMNS: tuple[str, ...] = ("box_x0", "box_y0", "box_x1", "box_y1")
POSE_COLUMNS: tuple[str, ...] = ("pose_pitch", "pose_yaw", "pose_roll")
EXPRESSION_LABEL_COLUMN = "expression"
LANDMARK_COLUMNS: tuple[str, ...] = tuple(
    f"lm_{axis}_{i}" for axis in ("x", "y", "z") for i in range(N_LANDMARKS)
)
"""All x first, then all y, then all z."""
BLENDSHAPE_COLUMNS: tuple[str, ...] = tuple(f"bs_{name}" for name in BLENDSHAPE_NAMES)

OPENFACE_ID_COLUMNS: tuple[str, ...] = ("frame", "face_id", "timestamp", "confidence", "success")
OPENFACE_POSE_COLUMNS: tuple[str, ...] = ("pose_Rx", "pose_Ry", "pose_Rz")
OPENFACE_LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"x_{i}" for i in range(68)) + tuple(f"y_{i}" for i in range(68))
OPENFACE_AU_INTENSITY: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU45",
)
"""AUs for which OpenFace 2.0 writes `AUxx_r`, in its column order."""
OPENFACE_AU_OCCURRENCE: tuple[str, ...] = (
    "AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12",
    "AU14", "AU15", "AU17", "AU20", "AU23", "AU25", "AU26", "AU28", "AU45",
)
"""AUs for which OpenFace 2.0 writes `AUxx_c`, in its column order."""

IBUG68_FROM_MEDIAPIPE: tuple[int, ...] = (
    # jaw 0-16, from the subject's right ear (image left) round the chin to the left ear
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,
    # right brow 17-21 (outer -> inner), left brow 22-26 (inner -> outer)
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,
    # nose ridge 27-30 (top -> tip), nostril base 31-35 (right -> left)
    168, 197, 5, 4, 98, 97, 2, 326, 327,
    # right eye 36-41, left eye 42-47 (from the outer corner for the right eye, inner for the left, clockwise)
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,
    # outer lip 48-59 (right corner, over the top, back along the bottom)
    61, 39, 37, 0, 267, 269, 291, 321, 314, 17, 84, 91,
    # inner lip 60-67
    78, 82, 13, 312, 308, 317, 14, 87,
)
"""MediaPipe face-mesh vertex for each of the 68 iBUG/dlib points (OpenFace's `x_i, y_i`).

A geometric correspondence, not a learned one: for each iBUG-68 point, the mesh vertex at the same
anatomical place on MediaPipe's canonical face. It follows the widely used MediaPipe->dlib-68
tables (e.g. github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks, which averages two vertices for a
few jaw and nose points; here every point is a single vertex). On the canonical mesh shipped in
`face_landmarker.task` the table is exactly mirror-symmetric (point i and its iBUG mirror map to
vertices with opposite x) and each contour runs in iBUG order. The jaw line of the mesh follows
the face outline rather than the mandible, so x_0..x_16 sit slightly outside dlib's on turned heads.
"""


def au_intensity_columns(labels: OutputLabels) -> list[str]:
    """`<AU>_intensity` for each AU of `labels.au_intensity`, e.g. "AU01_intensity"."""
    return [f"{au}_intensity" for au in labels.au_intensity]


def au_presence_columns(labels: OutputLabels) -> list[str]:
    """`<AU>_presence` (0/1) for each AU of `labels.au_occurrence`."""
    return [f"{au}_presence" for au in labels.au_occurrence]


def au_probability_columns(labels: OutputLabels) -> list[str]:
    """`<AU>_probability` (0..1) for each AU of `labels.au_occurrence`."""
    return [f"{au}_probability" for au in labels.au_occurrence]


def expression_columns(labels: OutputLabels) -> list[str]:
    """The expression class probability columns, named by the classes (without `expression`)."""
    return list(labels.expressions)


def feature_columns(labels: OutputLabels) -> list[str]:
    """`f0 .. f{D-1}`, the feature columns of a features file (`FeatureSink`)."""
    return [f"f{i}" for i in range(labels.feature_dim)]


def openface_au_intensity_columns(labels: OutputLabels) -> list[str]:
    """`AUxx_r` for the AUs of `OPENFACE_AU_INTENSITY` that `labels.au_intensity` has, in OpenFace's order."""
    return [f"{au}_r" for au in OPENFACE_AU_INTENSITY if au in labels.au_intensity]


def openface_au_occurrence_columns(labels: OutputLabels) -> list[str]:
    """`AUxx_c` for the AUs of `OPENFACE_AU_OCCURRENCE` that `labels.au_occurrence` has, in OpenFace's order."""
    return [f"{au}_c" for au in OPENFACE_AU_OCCURRENCE if au in labels.au_occurrence]


def native_columns(labels: OutputLabels, landmarks: bool = False, blendshapes: bool = False) -> list[str]:
    """Column names of the native layout, in order (see the module docstring for units)."""
    return list(_layout(labels, "native", landmarks, blendshapes).names)


def openface_columns(labels: OutputLabels, landmarks: bool = False) -> list[str]:
    """Column names of the OpenFace 2.0 layout, in OpenFace's order, for the columns both tools have."""
    return list(_layout(labels, "openface", landmarks, False).names)


def columns(
    labels: OutputLabels, *, fmt: str = "native", landmarks: bool = False, blendshapes: bool = False
) -> list[str]:
    """Column names of either layout; `fmt` is one of `FORMATS`."""
    return list(_layout(labels, fmt, landmarks, blendshapes).names)


# Kinds of column, each with its written precision: "int" never empty; "Int" may be empty
# (pandas Int64); "fN" float written with N decimals; "str" text.
_KIND_DECIMALS = {"f2": 2, "f3": 3, "f4": 4, "f6": 6}


@dataclass(frozen=True)
class _Layout:
    fmt: str
    landmarks: bool
    blendshapes: bool
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    of_r: tuple[int, ...] = ()  # openface: index into au_intensity of each AUxx_r
    of_c: tuple[int, ...] = ()  # openface: index into au_occurrence of each AUxx_c


@lru_cache(maxsize=32)
def _layout(labels: OutputLabels, fmt: str, landmarks: bool, blendshapes: bool) -> _Layout:
    cols: list[tuple[str, str]] = []
    if fmt == "native":
        cols += zip(ID_COLUMNS, ("int", "int", "Int", "f6", "f4", "int"))
        cols += [(c, "f2") for c in BOX_COLUMNS]
        cols += [(c, "f3") for c in POSE_COLUMNS]
        cols += [(c, "f4") for c in au_intensity_columns(labels)]
        cols += [(c, "Int") for c in au_presence_columns(labels)]
        cols += [(c, "f4") for c in au_probability_columns(labels)]
        cols += [(c, "f4") for c in expression_columns(labels)]
        cols += [(EXPRESSION_LABEL_COLUMN, "str")]
        if landmarks:
            cols += [(c, "f2") for c in LANDMARK_COLUMNS]
        if blendshapes:
            cols += [(c, "f4") for c in BLENDSHAPE_COLUMNS]
        of_r = of_c = ()
    elif fmt == "openface":
        if blendshapes:
            raise ValueError("blendshapes are not part of the OpenFace layout; use fmt='native' for them")
        cols += zip(OPENFACE_ID_COLUMNS, ("int", "int", "f6", "f4", "int"))
        cols += [(c, "f4") for c in OPENFACE_POSE_COLUMNS]
        if landmarks:
            cols += [(c, "f2") for c in OPENFACE_LANDMARK_COLUMNS]
        cols += [(c, "f4") for c in openface_au_intensity_columns(labels)]
        cols += [(c, "Int") for c in openface_au_occurrence_columns(labels)]
        of_r = tuple(labels.au_intensity.index(au) for au in OPENFACE_AU_INTENSITY if au in labels.au_intensity)
        of_c = tuple(labels.au_occurrence.index(au) for au in OPENFACE_AU_OCCURRENCE if au in labels.au_occurrence)
    else:
        raise ValueError(f"unknown output format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    names = tuple(name for name, _ in cols)
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"model {labels.model!r}: output names collide with other columns: {', '.join(dup)}")
    return _Layout(fmt, landmarks, blendshapes, names, tuple(kind for _, kind in cols), of_r, of_c)


# ---------------------------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------------------------

_NAN = float("nan")


def frame_rows(
    result: FrameResult,
    labels: OutputLabels,
    *,
    landmarks: bool = False,
    blendshapes: bool = False,
    fmt: str = "native",
) -> list[list]:
    """The rows of one analysed frame, in the order of `columns(labels, fmt=...)`.

    Args:
        result: one frame's results.
        labels: names of the model outputs (from the model card).
        landmarks: add the landmark columns (478x3 native, 68x2 OpenFace).
        blendshapes: add the 52 blendshape columns (native only).
        fmt: "native" or "openface".

    Returns:
        One row per face, or one `success=0` row when `result.faces` is empty. Values are Python
        ints, floats and strs; a missing value is float NaN (written as an empty field).
    """
    return _rows(result, labels, _layout(labels, fmt, landmarks, blendshapes))


def _rows(result: FrameResult, labels: OutputLabels, layout: _Layout) -> list[list]:
    n = len(layout.names)
    ts = float(result.timestamp_s)
    if not result.faces:
        if layout.fmt == "native":
            head = [int(result.frame), -1, _NAN, ts, _NAN, 0]
        else:
            head = [int(result.frame) + 1, 0, ts, _NAN, 0]
        return [head + [_NAN] * (n - len(head))]
    build = _native_row if layout.fmt == "native" else _openface_row
    rows = [build(result, face, labels, layout) for face in result.faces]
    for row in rows:
        if len(row) != n:  # a bug here would shift every column after it
            raise AssertionError(f"row has {len(row)} values for {n} columns")
    return rows


def _vec(values, n: int, what: str, result: FrameResult, face: FaceResult) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size != n:
        raise ValueError(f"frame {result.frame}, face {face.face_id}: {what} has {arr.size} values, expected {n}")
    return arr


def _outputs(result: FrameResult, face: FaceResult, labels: OutputLabels):
    """(intensity, occurrence probability, expression) as float64 arrays, all NaN when not analysed."""
    na, no, ne = len(labels.au_intensity), len(labels.au_occurrence), len(labels.expressions)
    if not face.success:
        return np.full(na, np.nan), np.full(no, np.nan), np.full(ne, np.nan)
    return (
        _vec(face.au_intensity, na, "au_intensity", result, face),
        _vec(face.au_occurrence, no, "au_occurrence", result, face),
        _vec(face.expression, ne, "expression", result, face),
    )


def _presence(probs: Iterable[float], threshold: float) -> list:
    return [_NAN if math.isnan(p) else int(p >= threshold) for p in probs]


def _landmarks(result: FrameResult, face: FaceResult) -> np.ndarray:
    lm = np.asarray(face.landmarks_px, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[0] != N_LANDMARKS or lm.shape[1] < 2:
        raise ValueError(f"frame {result.frame}, face {face.face_id}: landmarks_px has shape {lm.shape}, "
                         f"expected ({N_LANDMARKS}, 3)")
    return lm


def _native_row(result: FrameResult, face: FaceResult, labels: OutputLabels, layout: _Layout) -> list:
    intensity, occurrence, expression = _outputs(result, face, labels)
    analysed = expression.size > 0 and bool(np.isfinite(expression).all())
    label = labels.expressions[int(np.argmax(expression))] if analysed else _NAN
    row = [int(result.frame), int(face.face_id), int(face.person_id), float(result.timestamp_s),
           float(face.confidence), int(bool(face.success))]
    row += [float(v) for v in face.box_px]
    row += [float(v) for v in face.pose_deg]
    row += intensity.tolist()
    row += _presence(occurrence.tolist(), labels.occurrence_threshold)
    row += occurrence.tolist()
    row += expression.tolist()
    row.append(label)
    if layout.landmarks:
        lm = _landmarks(result, face)
        z = lm[:, 2] if lm.shape[1] > 2 else np.full(N_LANDMARKS, np.nan)
        row += lm[:, 0].tolist() + lm[:, 1].tolist() + z.tolist()
    if layout.blendshapes:
        row += _vec(face.blendshapes, len(BLENDSHAPE_NAMES), "blendshapes", result, face).tolist()
    return row


def _openface_row(result: FrameResult, face: FaceResult, labels: OutputLabels, layout: _Layout) -> list:
    intensity, occurrence, _ = _outputs(result, face, labels)
    row = [int(result.frame) + 1, int(face.face_id), float(result.timestamp_s), float(face.confidence),
           int(bool(face.success))]
    row += [math.radians(float(v)) for v in face.pose_deg]
    if layout.landmarks:
        lm68 = _landmarks(result, face)[list(IBUG68_FROM_MEDIAPIPE)]
        row += lm68[:, 0].tolist() + lm68[:, 1].tolist()
    row += [float(intensity[i]) for i in layout.of_r]
    row += _presence([float(occurrence[i]) for i in layout.of_c], labels.occurrence_threshold)
    return row


# ---------------------------------------------------------------------------------------------
# DataFrame
# ---------------------------------------------------------------------------------------------


def _provenance(labels: OutputLabels, fmt: str) -> dict:
    from . import __version__

    return {
        "model": labels.model,
        "mirror": labels.mirror,
        "format": fmt,
        "libreface_version": __version__,
        "au_intensity": list(labels.au_intensity),
        "au_occurrence": list(labels.au_occurrence),
        "occurrence_threshold": labels.occurrence_threshold,
        "expressions": list(labels.expressions),
        "feature_dim": labels.feature_dim,
    }


def to_dataframe(
    results: Iterable[FrameResult],
    labels: OutputLabels,
    *,
    landmarks: bool = False,
    blendshapes: bool = False,
    fmt: str = "native",
):
    """One row per face per frame (one `success=0` row per faceless frame), as a pandas DataFrame.

    Columns are `columns(labels, fmt=fmt, ...)`. Dtypes: `frame`, `face_id`, `success` int64;
    `person_id`, `<AU>_presence` / `AUxx_c` nullable Int64; `expression` text; every other column
    float64, at full precision (the CSV rounds). `df.attrs["libreface"]` holds the provenance:
    model name, layout, libreface version, AU lists, threshold, class names.
    """
    import pandas as pd

    layout = _layout(labels, fmt, landmarks, blendshapes)
    rows = [row for result in results for row in _rows(result, labels, layout)]
    cols = list(zip(*rows)) if rows else [()] * len(layout.names)
    str_dtype = "str" if int(pd.__version__.split(".")[0]) >= 3 else object
    data = {}
    for name, kind, col in zip(layout.names, layout.kinds, cols):
        if kind == "int":
            data[name] = np.array(col, dtype=np.int64)
        elif kind == "Int":
            data[name] = pd.array(np.array(col, dtype=np.float64), dtype="Int64")
        elif kind == "str":
            data[name] = pd.Series(list(col), dtype=object).astype(str_dtype) if col else pd.Series([], dtype=str_dtype)
        else:
            data[name] = np.array(col, dtype=np.float64)
    df = pd.DataFrame(data, columns=list(layout.names))
    df.attrs["libreface"] = _provenance(labels, fmt)
    return df


# ---------------------------------------------------------------------------------------------
# CSV text
# ---------------------------------------------------------------------------------------------


def _format_float(v: float, decimals: int) -> str:
    if v != v:  # NaN
        return ""
    s = f"{v:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _quote(s: str) -> str:
    if any(c in s for c in ',"\n\r') or s != s.strip():
        return '"' + s.replace('"', '""') + '"'
    return s


def _format_row(row: list, kinds: tuple[str, ...]) -> list[str]:
    out = []
    for v, kind in zip(row, kinds):
        if kind in _KIND_DECIMALS:
            out.append(_format_float(float(v), _KIND_DECIMALS[kind]))
        elif isinstance(v, float) and v != v:
            out.append("")
        elif kind == "str":
            out.append(_quote(str(v)))
        else:
            out.append(str(int(v)))
    return out


# ---------------------------------------------------------------------------------------------
# Crash-safe files
# ---------------------------------------------------------------------------------------------


def partial_path(path: str | os.PathLike) -> Path:
    """Where a sink writes until it succeeds: `<path>.partial`, e.g. `out.csv.partial`."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def _check_output_path(path: Path) -> None:
    """Raise OutputError, one line naming `path`, when it cannot become a file."""
    if path.is_dir():
        example = path / ("out" + (path.suffix or ".csv"))
        raise OutputError(f"{path}: is a folder; expected a file path such as {example}")
    parent = path.parent
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{path}: cannot create the folder {parent} ({e.strerror or e}); "
                              "choose another output path") from None
    if partial_path(path).is_dir():
        raise OutputError(f"{path}: {partial_path(path)} is a folder; remove it or choose another output path")


def _open_error(path: Path, e: OSError) -> OutputError:
    return OutputError(f"{path}: cannot write {partial_path(path).name} ({e.strerror or e}); "
                       "choose a writable output folder")


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _commit(tmp: Path, final: Path) -> None:
    """Atomically move a complete, fsync'ed file to its final name."""
    try:
        os.replace(tmp, final)
    except OSError as e:
        raise OutputError(f"{final}: cannot rename {tmp.name} to it ({e.strerror or e}); "
                          f"the complete results are in {tmp}") from None
    _fsync_dir(final.parent)


def _rfind_newline_end(f, lo: int, hi: int, chunk: int = 1 << 20) -> int:
    """Offset just past the last b"\\n" in f[lo:hi], or `lo` when there is none."""
    pos = hi
    while pos > lo:
        n = min(chunk, pos - lo)
        pos -= n
        f.seek(pos)
        i = f.read(n).rfind(b"\n")
        if i >= 0:
            return pos + i + 1
    return lo


def _lines_backward(f, lo: int, hi: int, chunk: int = 1 << 16):
    """Yield (offset, line) for the lines of f[lo:hi], last line first; f[hi-1] is b"\\n"."""
    buf, pos = b"", hi
    while True:
        i = buf.rfind(b"\n", 0, len(buf) - 1) if buf else -1
        if i >= 0:
            yield pos + i + 1, buf[i + 1:]
            buf = buf[: i + 1]
            continue
        if pos == lo:
            if buf:
                yield pos, buf
            return
        n = min(chunk, pos - lo)
        pos -= n
        f.seek(pos)
        buf = f.read(n) + buf


class CsvSink:
    """Streams results to a CSV that survives crashes; a context manager.

    Rows go to `<path>.partial`, which always starts with the header. They are written and
    fsync'ed at least every `flush_every_s` seconds (checked on each `append`), always at a frame
    boundary. On a normal exit the file is renamed atomically to `path`, so `path` never holds a
    half-written file; on an exception (including KeyboardInterrupt) the rows so far are flushed and
    the `.partial` file stays, a valid CSV.

    Args:
        path: final CSV path; its folder is created if needed.
        labels: names of the model outputs (from the model card).
        fmt: "native" or "openface" (see the module docstring).
        landmarks, blendshapes: add those column groups.
        flush_every_s: longest time rows wait in memory; 0 writes every frame.
        resume: continue an existing `<path>.partial` of the same columns. Its last frame is dropped
            (it may lack faces), as is a trailing incomplete line; `resume_from_frame` tells where
            to restart, and results for frames already in the file are ignored by `append`.

    Attributes:
        columns: the header.
        resume_after_frame: last 0-based frame kept from the `.partial`, -1 when none.
        resume_from_frame: 0-based frame to restart the analysis from (0 when nothing was resumed).
        rows_written: rows appended by this sink (not counting resumed rows).

    Raises:
        OutputError: `path` cannot be written, or (resume) the `.partial` has other columns.

    Example:
        >>> with CsvSink("out.csv", labels) as sink:          # doctest: +SKIP
        ...     for result in analyzer.process(source):
        ...         sink.append(result)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        labels: OutputLabels,
        *,
        fmt: str = "native",
        landmarks: bool = False,
        blendshapes: bool = False,
        flush_every_s: float = 2.0,
        resume: bool = False,
    ):
        self.path = Path(path)
        self.partial_path = partial_path(self.path)
        self.labels = labels
        self.fmt = fmt
        self._layout = _layout(labels, fmt, landmarks, blendshapes)
        self.columns = list(self._layout.names)
        self._sep = ", " if fmt == "openface" else ","
        self._header = (self._sep.join(_quote(c) for c in self.columns) + "\n").encode("utf-8")
        self.flush_every_s = float(flush_every_s)
        self.resume_after_frame = -1
        self.resume_from_frame = 0
        self.rows_written = 0
        self._pending: list[bytes] = []
        self._file = None
        _check_output_path(self.path)
        try:
            if resume and self.partial_path.is_file():
                self._file = self._reopen()
            else:
                self._file = open(self.partial_path, "wb", buffering=0)
                self._write_all(self._header)
                os.fsync(self._file.fileno())
        except OSError as e:
            if self._file is not None:
                self._file.close()
            raise _open_error(self.path, e) from None
        self._size = self._file.tell()  # bytes known to be whole lines
        self._last_flush = time.monotonic()

    # -- resume ---------------------------------------------------------------------------------

    def _reopen(self):
        f = open(self.partial_path, "r+b", buffering=0)
        try:
            size = os.fstat(f.fileno()).st_size
            head = f.read(len(self._header))
            if head != self._header:
                if len(head) < len(self._header) and self._header.startswith(head):  # died writing the header
                    f.seek(0)
                    f.truncate(0)
                    f.write(self._header)
                    os.fsync(f.fileno())
                    return f
                raise OutputError(f"{self.partial_path}: this partial has different columns (other model, "
                                  "format or options?); delete it or drop --resume")
            lo = len(self._header)
            end = _rfind_newline_end(f, lo, size)
            last = None
            cut = end
            for offset, line in _lines_backward(f, lo, end):
                frame = self._frame_of(line, offset)
                if last is None or frame == last:
                    last, cut = frame, offset
                else:
                    self.resume_after_frame = frame
                    break
            if last is not None:
                self.resume_from_frame = last
            f.truncate(cut)
            f.seek(cut)
            os.fsync(f.fileno())
            log.info("%s: resuming after frame %d (%d bytes kept)", self.partial_path, self.resume_after_frame, cut)
            return f
        except BaseException:
            f.close()
            raise

    def _frame_of(self, line: bytes, offset: int) -> int:
        try:
            value = int(line.split(b",", 1)[0].strip())
        except ValueError:
            raise OutputError(f"{self.partial_path}: the line at byte {offset} does not start with a frame "
                              "number; delete the file or drop --resume") from None
        return value - 1 if self.fmt == "openface" else value

    # -- writing --------------------------------------------------------------------------------

    def append(self, result: FrameResult) -> None:
        """Add one frame's rows (one per face, or one `success=0` row)."""
        if self._file is None:
            raise ValueError(f"{self.path}: append() after close()")
        if result.frame <= self.resume_after_frame:
            return
        rows = _rows(result, self.labels, self._layout)
        kinds = self._layout.kinds
        text = "".join(self._sep.join(_format_row(row, kinds)) + "\n" for row in rows)
        self._pending.append(text.encode("utf-8"))
        self.rows_written += len(rows)
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = self._file.write(view)
            view = view[n:]

    def flush(self) -> None:
        """Write the rows waiting in memory and fsync them."""
        if self._file is None:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        try:
            if data:
                self._write_all(data)
            os.fsync(self._file.fileno())
        except OSError as e:
            try:  # keep the partial file whole lines only
                self._file.truncate(self._size)
                self._file.seek(self._size)
            except OSError:
                pass
            raise OutputError(f"{self.partial_path}: cannot write ({e.strerror or e}); free some disk space "
                              "and resume with --resume") from None
        self._size += len(data)
        self._last_flush = time.monotonic()

    def close(self, person_of=None, subject: int | None = None) -> None:
        """Flush, then rename `<path>.partial` to `path`. Idempotent.

        Args:
            person_of: optional `(frame, face_id) -> person_id` (0-based frame; `libreface.identity`
                resolves identities only at the end of a recording): the `.partial` is rewritten with it,
                streaming, before the rename.
            subject: with `person_of`, keep only this person's rows; a frame left without a row gets a
                faceless `success=0` row, so every analysed frame still has one.
        """
        if self._file is None:
            return
        try:
            self.flush()
        finally:
            self._file.close()
            self._file = None
        if person_of is not None:
            self._rewrite_persons(person_of, subject)
        _commit(self.partial_path, self.path)

    def _rewrite_persons(self, person_of, subject: int | None) -> None:
        cols = self.columns
        i_frame, i_face = cols.index("frame"), cols.index("face_id")
        i_person = cols.index("person_id") if "person_id" in cols else None
        i_success = cols.index("success")
        keep_always = {i_frame, cols.index("timestamp")}
        first = 1 if self.fmt == "openface" else 0
        no_face_id = "0" if self.fmt == "openface" else "-1"
        sep = self._sep
        tmp = self.partial_path.with_name(self.partial_path.name + ".rewrite")

        def faceless(fields: list[str]) -> str:
            out = [f if i in keep_always else "" for i, f in enumerate(fields)]
            out[i_face], out[i_success] = no_face_id, "0"
            return sep.join(out)

        try:
            with open(self.partial_path, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
                dst.write(src.readline())
                frame_rows: list[str] = []
                dropped: list[str] | None = None
                current = None

                def emit() -> None:
                    if frame_rows:
                        dst.write("\n".join(frame_rows) + "\n")
                    elif dropped is not None:
                        dst.write(faceless(dropped) + "\n")

                for line in src:
                    fields = line.rstrip("\n").split(sep)
                    frame = int(fields[i_frame]) - first
                    if frame != current:
                        emit()
                        frame_rows, dropped, current = [], None, frame
                    face_id = int(fields[i_face]) if fields[i_face] else -1
                    has_face = face_id >= 0 if self.fmt == "native" else fields[i_success].strip() == "1"
                    if has_face:
                        pid = int(person_of(frame, face_id))
                        if i_person is not None:
                            fields[i_person] = str(pid)
                        if subject is not None and pid != subject:
                            dropped = fields
                            continue
                    frame_rows.append(sep.join(fields))
                emit()
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, self.partial_path)
        except OSError as e:
            raise OutputError(f"{self.partial_path}: cannot rewrite with person ids ({e.strerror or e})") from None

    def abort(self) -> None:
        """Flush what can be flushed and leave `<path>.partial` in place (no rename). Idempotent."""
        if self._file is None:
            return
        try:
            self.flush()
        except OutputError as e:
            log.warning("%s", e)
        finally:
            self._file.close()
            self._file = None

    def __enter__(self) -> CsvSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


# ---------------------------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------------------------

FEATURE_FORMATS: tuple[str, ...] = (".npz", ".parquet")
"""File suffixes `FeatureSink` understands."""
FEATURE_KEY_COLUMNS: tuple[str, ...] = ("frame", "face_id", "person_id", "timestamp")


def _feature_format(path: Path) -> str:
    name = path.name[: -len(".partial")] if path.name.endswith(".partial") else path.name
    suffix = Path(name).suffix.lower()
    if suffix not in FEATURE_FORMATS:
        raise ValueError(f"{path}: unknown features format {suffix or '(no suffix)'!r}; "
                         f"choose one of: {', '.join(FEATURE_FORMATS)}")
    return suffix


def _import_pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise ImportError("writing .parquet features needs pyarrow: pip install 'libreface-cpu[parquet]' "
                          "(or write .npz)") from e
    return pa, pq


class FeatureSink:
    """Writes each analysed face's feature vector to its own file; a context manager.

    One row per face with `success=True` (faceless frames and failed faces have no features),
    keyed by (`frame`, `face_id`) as in the native CSV: `frame` is the 0-based decode index (the
    OpenFace CSV's `frame` is this plus 1). The format follows the suffix:

    * `.npz`: arrays `frame`, `face_id`, `person_id` (int64, (N,)), `timestamp` (float64 seconds,
      (N,)), `features` (float32, (N, D)) and `libreface` (JSON provenance, 0-d str). Kept in memory
      and written at close, so prefer Parquet for hours of video.
    * `.parquet`: columns `frame, face_id, person_id` (int64), `timestamp` (float64) and
      `features` (fixed-size list of D float32), streamed in row groups of `row_group_rows` rows;
      `read_features` expands it to `f0 .. f{D-1}`, and with plain pandas
      `np.stack(pd.read_parquet(path)["features"])` gives the (N, D) matrix. One list column, not D
      plain ones: a Parquet writer keeps the metadata of every column chunk until the footer is
      written, so D columns would make memory grow with the video's length (~0.4 MB per row group).
      Provenance in the schema metadata key `libreface`.

    Like `CsvSink`, it writes `<path>.partial` and renames it to `path` on a normal exit; on an
    exception the `.partial` is completed into a readable file and left in place. With
    `resume_before_frame=N`, the rows of frames before N are carried over from an existing
    `.partial` (the companion of `CsvSink(resume=True)`, whose `resume_from_frame` gives N).

    Raises:
        ValueError: unknown suffix, or the model has no features output.
        OutputError: `path` cannot be written.
    """

    def __init__(self, path: str | os.PathLike, labels: OutputLabels, *, row_group_rows: int = 1000,
                 resume_before_frame: int | None = None):
        self.path = Path(path)
        self.format = _feature_format(self.path)
        if labels.feature_dim <= 0:
            raise ValueError(f"model {labels.model!r} has no features output (feature_dim={labels.feature_dim})")
        self.partial_path = partial_path(self.path)
        self.labels = labels
        self.row_group_rows = max(1, int(row_group_rows))
        self.rows_written = 0
        self._keys: dict[str, list] = {k: [] for k in FEATURE_KEY_COLUMNS}
        self._features: list[np.ndarray] = []
        self._chunks: list[tuple[dict[str, np.ndarray], np.ndarray]] = []  # npz: flushed buffers
        self._writer = None
        self._open = True
        meta = json.dumps(_provenance(labels, "features"))
        _check_output_path(self.path)
        carried = None
        if resume_before_frame is not None and self.partial_path.is_file():
            try:
                carried = read_features(self.partial_path)
                carried = carried[carried["frame"] < resume_before_frame]
            except Exception as e:  # an unreadable partial (killed mid-write): start over, say so
                log.warning("%s: cannot carry over earlier features (%s); they restart at frame %d",
                            self.partial_path, e, resume_before_frame)
        try:
            if self.format == ".parquet":
                pa, pq = _import_pyarrow()
                fields = [pa.field("frame", pa.int64()), pa.field("face_id", pa.int64()),
                          pa.field("person_id", pa.int64()), pa.field("timestamp", pa.float64())]
                fields.append(pa.field("features", pa.list_(pa.float32(), labels.feature_dim)))
                self._schema = pa.schema(fields, metadata={"libreface": meta})
                self._writer = pq.ParquetWriter(str(self.partial_path), self._schema)
            else:
                self._meta = meta
                with open(self.partial_path, "wb"):  # claim the name now, so errors show up early
                    pass
        except OSError as e:
            raise _open_error(self.path, e) from None
        if carried is not None and len(carried):
            for k in FEATURE_KEY_COLUMNS:
                self._keys[k].extend(carried[k].tolist())
            self._features.extend(carried[feature_columns(labels)].to_numpy(np.float32))
            self._flush_buffer()

    def append(self, result: FrameResult) -> None:
        """Add the features of every analysed face of one frame."""
        if not self._open:
            raise ValueError(f"{self.path}: append() after close()")
        d = self.labels.feature_dim
        for face in result.faces:
            if not face.success:
                continue
            feats = np.asarray(face.features, dtype=np.float32).ravel()
            if feats.size != d:
                raise ValueError(f"frame {result.frame}, face {face.face_id}: features has {feats.size} values, "
                                 f"expected {d}")
            self._keys["frame"].append(int(result.frame))
            self._keys["face_id"].append(int(face.face_id))
            self._keys["person_id"].append(int(face.person_id))
            self._keys["timestamp"].append(float(result.timestamp_s))
            self._features.append(feats)
        if len(self._features) >= self.row_group_rows:
            self._flush_buffer()

    def _take_buffer(self) -> tuple[dict[str, np.ndarray], np.ndarray]:
        keys = {k: np.asarray(v, dtype=np.float64 if k == "timestamp" else np.int64) for k, v in self._keys.items()}
        feats = np.stack(self._features) if self._features else np.zeros((0, self.labels.feature_dim), np.float32)
        for v in self._keys.values():
            v.clear()
        self._features.clear()
        return keys, feats

    def _flush_buffer(self) -> None:
        keys, feats = self._take_buffer()
        if not len(feats):
            return
        self.rows_written += len(feats)
        if self._writer is None:
            self._chunks.append((keys, feats))
            return
        pa, _ = _import_pyarrow()
        arrays = [pa.array(keys[k]) for k in FEATURE_KEY_COLUMNS]
        arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(feats.ravel()), feats.shape[1]))
        try:
            self._writer.write_table(pa.Table.from_arrays(arrays, schema=self._schema))
        except OSError as e:
            raise OutputError(f"{self.partial_path}: cannot write ({e.strerror or e}); free some disk space") from None

    def _finish_partial(self) -> None:
        """Turn everything appended into a complete, fsync'ed `<path>.partial`."""
        self._open = False
        self._flush_buffer()
        try:
            if self._writer is not None:
                writer, self._writer = self._writer, None
                writer.close()
                with open(self.partial_path, "rb") as f:
                    os.fsync(f.fileno())
            else:
                chunks, self._chunks = self._chunks, []
                keys = {k: np.concatenate([c[0][k] for c in chunks]) if chunks
                        else np.zeros(0, np.float64 if k == "timestamp" else np.int64) for k in FEATURE_KEY_COLUMNS}
                feats = (np.concatenate([c[1] for c in chunks]) if chunks
                         else np.zeros((0, self.labels.feature_dim), np.float32))
                with open(self.partial_path, "wb") as f:
                    np.savez(f, **keys, features=feats, libreface=np.array(self._meta))
                    f.flush()
                    os.fsync(f.fileno())
        except OSError as e:
            raise OutputError(f"{self.partial_path}: cannot write ({e.strerror or e}); free some disk space") from None

    def close(self) -> None:
        """Complete the file and rename it to `path`. Idempotent."""
        if not self._open:
            return
        self._finish_partial()
        _commit(self.partial_path, self.path)

    def abort(self) -> None:
        """Complete `<path>.partial` with what was appended and leave it there. Idempotent."""
        if not self._open:
            return
        try:
            self._finish_partial()
        except OutputError as e:
            log.warning("%s", e)

    def __enter__(self) -> FeatureSink:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False


def read_features(path: str | os.PathLike):
    """Read a features file written by `FeatureSink` (also its `.partial`) into a DataFrame.

    Returns:
        Columns `frame, face_id, person_id` (int64), `timestamp` (float64 s), `f0 .. f{D-1}`
        (float32); `df.attrs["libreface"]` holds the provenance.
    """
    import pandas as pd

    path = Path(path)
    fmt = _feature_format(path)
    if fmt == ".npz":
        with np.load(path, allow_pickle=False) as z:
            feats = z["features"]
            data = {k: z[k] for k in FEATURE_KEY_COLUMNS}
            meta = json.loads(str(z["libreface"])) if "libreface" in z.files else {}
        data.update({f"f{i}": feats[:, i] for i in range(feats.shape[1])})
        df = pd.DataFrame(data)
    else:
        _, pq = _import_pyarrow()
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(b"libreface")
        meta = json.loads(raw) if raw else {}
        if "features" in table.column_names:  # the list column -> f0 .. f{D-1}
            col = table.column("features").combine_chunks()
            dim = col.type.list_size
            feats = col.flatten().to_numpy().reshape(-1, dim)  # (0, dim) float32 for an empty file too
            df = table.drop_columns(["features"]).to_pandas()
            df = pd.concat([df, pd.DataFrame(feats, columns=[f"f{i}" for i in range(dim)])], axis=1)
        else:  # files written before the list column: one column per dimension
            df = table.to_pandas()
    df.attrs["libreface"] = meta
    return df
