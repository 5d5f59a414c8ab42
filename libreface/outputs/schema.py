"""Output schema: the column names, kinds and precisions of both CSV layouts, and the run provenance.


This module is the one place that defines output columns. `native_columns` and `openface_columns`
name them, `rows.frame_rows` fills them from a `FrameResult`, and `to_dataframe`, `CsvSink` and the GUI
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
pose_Tx_mm, pose_Ty_mm, pose_Tz_mm     head position, mm; camera axes x right, y down, z forward  2 dec.
                                       (Tz = distance); see `libreface.geometry`
gaze_0_x .. gaze_0_z, gaze_1_x .. _z   unit gaze vector of eye 0 (leftmost in the image) and      4 dec.
                                       eye 1, same axes (z < 0 toward the camera); `libreface.gaze`
gaze_angle_x_deg, gaze_angle_y_deg     OpenFace's gaze_angle_x/y, in degrees (x > 0: toward the   3 dec.
                                       image's right, y > 0: down)
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
`gaze_0_x .. gaze_1_z` (unit vectors), `gaze_angle_x, gaze_angle_y` (radians), `pose_Tx, pose_Ty, pose_Tz`
(mm), `pose_Rx, pose_Ry, pose_Rz` (radians: Rx = pitch, Ry = yaw, Rz = roll, signs as libreface's
`pose_deg`), optional `x_0..x_67, y_0..y_67` (iBUG-68 points taken from the MediaPipe mesh, see
`IBUG68_FROM_MEDIAPIPE`) and `X_0..X_67, Y_0..Y_67, Z_0..Z_67` (the same points in mm, camera axes),
`AUxx_r` then `AUxx_c` (0/1) for the AUs of OpenFace's lists that the model has. The columns of OpenFace 2.2's
FeatureExtraction CSV that are not written are listed, with the reason, in `OPENFACE_OMITTED`. OpenFace separates fields with ", " (comma and space) in its header and rows, and so do
we in this layout: read it with `pd.read_csv(path, skipinitialspace=True)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..landmarks import BLENDSHAPE_NAMES, N_LANDMARKS
from ..results import OutputLabels

FORMATS: tuple[str, ...] = ("native", "openface")
"""CSV layouts accepted by `fmt=`."""

ID_COLUMNS: tuple[str, ...] = ("frame", "face_id", "person_id", "timestamp", "confidence", "success")
BOX_COLUMNS: tuple[str, ...] = ("box_x0", "box_y0", "box_x1", "box_y1")
POSE_COLUMNS: tuple[str, ...] = ("pose_pitch", "pose_yaw", "pose_roll")
TRANSLATION_COLUMNS: tuple[str, ...] = ("pose_Tx_mm", "pose_Ty_mm", "pose_Tz_mm")
GAZE_VECTOR_COLUMNS: tuple[str, ...] = tuple(f"gaze_{eye}_{axis}" for eye in (0, 1) for axis in "xyz")
"""Both layouts: OpenFace's names; eye 0 is the leftmost eye in the image."""
GAZE_ANGLE_COLUMNS: tuple[str, ...] = ("gaze_angle_x_deg", "gaze_angle_y_deg")
"""Native: OpenFace's gaze_angle_x/y in degrees."""
EXPRESSION_LABEL_COLUMN = "expression"
LANDMARK_COLUMNS: tuple[str, ...] = tuple(
    f"lm_{axis}_{i}" for axis in ("x", "y", "z") for i in range(N_LANDMARKS)
)
"""All x first, then all y, then all z."""
BLENDSHAPE_COLUMNS: tuple[str, ...] = tuple(f"bs_{name}" for name in BLENDSHAPE_NAMES)

OPENFACE_ID_COLUMNS: tuple[str, ...] = ("frame", "face_id", "timestamp", "confidence", "success")
OPENFACE_POSE_COLUMNS: tuple[str, ...] = ("pose_Rx", "pose_Ry", "pose_Rz")
OPENFACE_LANDMARK_COLUMNS: tuple[str, ...] = tuple(f"x_{i}" for i in range(68)) + tuple(f"y_{i}" for i in range(68))
OPENFACE_LANDMARK_3D_COLUMNS: tuple[str, ...] = tuple(f"{axis}_{i}" for axis in "XYZ" for i in range(68))
OPENFACE_GAZE_ANGLE_COLUMNS: tuple[str, ...] = ("gaze_angle_x", "gaze_angle_y")
OPENFACE_TRANSLATION_COLUMNS: tuple[str, ...] = ("pose_Tx", "pose_Ty", "pose_Tz")
OPENFACE_OMITTED: tuple[str, ...] = (
    ("p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty") + tuple(f"p_{i}" for i in range(34))
    + tuple(f"eye_lmk_{axis}_{i}" for axis in "xyXYZ" for i in range(56))
)
"""Columns of OpenFace 2.2's FeatureExtraction CSV that the OpenFace layout does not write, on purpose.

* `p_scale, p_rx, p_ry, p_rz, p_tx, p_ty, p_0..p_33`: the rigid and non-rigid parameters of OpenFace's own
  point distribution model (PDM), coordinates in that model's shape basis. MediaPipe fits another model (a
  478-point mesh without a PCA shape basis), so there is no equivalent, and numbers written in their place
  would be silently wrong for any script that uses them.
* `eye_lmk_x_0..55, eye_lmk_y_*, eye_lmk_X_*, eye_lmk_Y_*, eye_lmk_Z_*`: OpenFace's 56 eye-region points come
  from its own eye model (per eye: 8 iris, 8 pupil and 12 lid points in a fixed order); MediaPipe's eye and iris
  points follow other contours and cannot be mapped one to one.
"""
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


AU_INTENSITY_SUFFIX = "_intensity"
AU_PRESENCE_SUFFIX = "_presence"
AU_PROBABILITY_SUFFIX = "_probability"
"""Native AU columns are `<AU><suffix>`; no other native column ends in one of these."""


def au_intensity_columns(labels: OutputLabels) -> list[str]:
    """`<AU>_intensity` for each AU of `labels.au_intensity`, e.g. "AU01_intensity"."""
    return [au + AU_INTENSITY_SUFFIX for au in labels.au_intensity]


def au_presence_columns(labels: OutputLabels) -> list[str]:
    """`<AU>_presence` (0/1) for each AU of `labels.au_occurrence`."""
    return [au + AU_PRESENCE_SUFFIX for au in labels.au_occurrence]


def au_probability_columns(labels: OutputLabels) -> list[str]:
    """`<AU>_probability` (0..1) for each AU of `labels.au_occurrence`."""
    return [au + AU_PROBABILITY_SUFFIX for au in labels.au_occurrence]


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


@lru_cache(maxsize=1)
def native_from_openface() -> dict[str, str]:
    """OpenFace-layout column name -> the native name of the same quantity (for reading a CSV back).

    Same values except: `frame` is 1-based there, pose and gaze angles are radians there (degrees in
    `POSE_COLUMNS` / `GAZE_ANGLE_COLUMNS`), `AUxx_c` is the native `AUxx_presence`. Landmark columns have no
    native equivalent (other points) and are not in the map.
    """
    every = OutputLabels(OPENFACE_AU_INTENSITY, OPENFACE_AU_OCCURRENCE, 0.5, (), 0)
    pairs = [*zip(OPENFACE_ID_COLUMNS, OPENFACE_ID_COLUMNS), *zip(GAZE_VECTOR_COLUMNS, GAZE_VECTOR_COLUMNS),
             *zip(OPENFACE_GAZE_ANGLE_COLUMNS, GAZE_ANGLE_COLUMNS),
             *zip(OPENFACE_TRANSLATION_COLUMNS, TRANSLATION_COLUMNS), *zip(OPENFACE_POSE_COLUMNS, POSE_COLUMNS),
             *zip(openface_au_intensity_columns(every), au_intensity_columns(every)),
             *zip(openface_au_occurrence_columns(every), au_presence_columns(every))]
    return dict(pairs)


def native_columns(labels: OutputLabels, landmarks: bool = False, blendshapes: bool = False) -> list[str]:
    """Column names of the native layout, in order (see the module docstring for units)."""
    return list(layout_for(labels, "native", landmarks, blendshapes).names)


def openface_columns(labels: OutputLabels, landmarks: bool = False) -> list[str]:
    """Column names of the OpenFace 2.0 layout, in OpenFace's order, for the columns both tools have."""
    return list(layout_for(labels, "openface", landmarks, False).names)


def columns(
    labels: OutputLabels, *, fmt: str = "native", landmarks: bool = False, blendshapes: bool = False
) -> list[str]:
    """Column names of either layout; `fmt` is one of `FORMATS`."""
    return list(layout_for(labels, fmt, landmarks, blendshapes).names)


KIND_DECIMALS: dict[str, int] = {"f2": 2, "f3": 3, "f4": 4, "f6": 6}
"""Decimals written for each float kind of column.

Kinds of column: "int" never empty; "Int" may be empty (pandas Int64); "fN" float written with N
decimals; "str" text."""


@dataclass(frozen=True)
class Layout:
    """One layout's columns: their names and kinds (see `KIND_DECIMALS`), in order."""

    fmt: str
    landmarks: bool
    blendshapes: bool
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    of_r: tuple[int, ...] = ()  # openface: index into au_intensity of each AUxx_r
    of_c: tuple[int, ...] = ()  # openface: index into au_occurrence of each AUxx_c


@lru_cache(maxsize=32)
def layout_for(labels: OutputLabels, fmt: str, landmarks: bool, blendshapes: bool) -> Layout:
    """The columns of layout `fmt` for the model outputs `labels`; ValueError for an unknown `fmt` or a name clash."""
    cols: list[tuple[str, str]] = []
    if fmt == "native":
        cols += zip(ID_COLUMNS, ("int", "int", "Int", "f6", "f4", "int"))
        cols += [(c, "f2") for c in BOX_COLUMNS]
        cols += [(c, "f3") for c in POSE_COLUMNS]
        cols += [(c, "f2") for c in TRANSLATION_COLUMNS]
        cols += [(c, "f4") for c in GAZE_VECTOR_COLUMNS]
        cols += [(c, "f3") for c in GAZE_ANGLE_COLUMNS]
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
        cols += [(c, "f4") for c in GAZE_VECTOR_COLUMNS]
        cols += [(c, "f4") for c in OPENFACE_GAZE_ANGLE_COLUMNS]
        cols += [(c, "f2") for c in OPENFACE_TRANSLATION_COLUMNS]
        cols += [(c, "f4") for c in OPENFACE_POSE_COLUMNS]
        if landmarks:
            cols += [(c, "f2") for c in OPENFACE_LANDMARK_COLUMNS]
            cols += [(c, "f2") for c in OPENFACE_LANDMARK_3D_COLUMNS]
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
    return Layout(fmt, landmarks, blendshapes, names, tuple(kind for _, kind in cols), of_r, of_c)


def provenance(labels: OutputLabels, fmt: str) -> dict:
    """What produced a table: model, layout `fmt`, libreface version, AU lists, threshold, class names."""
    from .. import __version__

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
