"""Output step: the column schema and the crash-safe writers of analysis results (CSV, DataFrame, features).

One module per step:

* `schema`: column names and kinds of the native and OpenFace layouts (documented there), provenance.
* `rows`: the values of one analysed frame in a layout's column order (`frame_rows`).
* `dataframe`: `to_dataframe`, the rows as one pandas table at full precision.
* `csv_writer`: `CsvSink`, number formatting and resuming a `.partial` CSV.
* `features`: `FeatureSink` and `read_features` (Parquet / NPZ feature vectors).
* `reader`: `read_results`, a results CSV of either layout read back as `Results` in native names (the
  report and `libreface elan` read with it; `collect` and the identity summary use `expression_columns_in`).
  Import it from `libreface.outputs.reader`.
* `names`: one unique, file-system-safe output name per input file (equal file names from different folders get
  the folder in front), for the `libreface` command, `libreface batch` and the desktop app.
* `atomic`: the crash-safe file protocol every writer shares: `<out>.lock` (one writer per output),
  `<out>.partial`, fsync and rename.

Every name below is importable from `libreface.outputs`, as before the split.
"""

from __future__ import annotations

from .atomic import partial_path
from .csv_writer import CsvSink
from .dataframe import to_dataframe
from .features import FEATURE_FORMATS, FEATURE_KEY_COLUMNS, FeatureSink, read_features
from .rows import frame_rows
from .schema import (
    BLENDSHAPE_COLUMNS,
    BOX_COLUMNS,
    EXPRESSION_LABEL_COLUMN,
    FORMATS,
    GAZE_ANGLE_COLUMNS,
    GAZE_VECTOR_COLUMNS,
    IBUG68_FROM_MEDIAPIPE,
    ID_COLUMNS,
    LANDMARK_COLUMNS,
    OPENFACE_AU_INTENSITY,
    OPENFACE_AU_OCCURRENCE,
    OPENFACE_ID_COLUMNS,
    OPENFACE_LANDMARK_3D_COLUMNS,
    OPENFACE_LANDMARK_COLUMNS,
    OPENFACE_OMITTED,
    OPENFACE_POSE_COLUMNS,
    POSE_COLUMNS,
    TRANSLATION_COLUMNS,
    au_intensity_columns,
    au_presence_columns,
    au_probability_columns,
    columns,
    expression_columns,
    feature_columns,
    native_columns,
    openface_au_intensity_columns,
    openface_au_occurrence_columns,
    openface_columns,
)

__all__ = [
    "BLENDSHAPE_COLUMNS",
    "BOX_COLUMNS",
    "EXPRESSION_LABEL_COLUMN",
    "FEATURE_FORMATS",
    "FEATURE_KEY_COLUMNS",
    "FORMATS",
    "GAZE_ANGLE_COLUMNS",
    "GAZE_VECTOR_COLUMNS",
    "IBUG68_FROM_MEDIAPIPE",
    "ID_COLUMNS",
    "LANDMARK_COLUMNS",
    "OPENFACE_AU_INTENSITY",
    "OPENFACE_AU_OCCURRENCE",
    "OPENFACE_ID_COLUMNS",
    "OPENFACE_LANDMARK_3D_COLUMNS",
    "OPENFACE_LANDMARK_COLUMNS",
    "OPENFACE_OMITTED",
    "OPENFACE_POSE_COLUMNS",
    "POSE_COLUMNS",
    "TRANSLATION_COLUMNS",
    "CsvSink",
    "FeatureSink",
    "au_intensity_columns",
    "au_presence_columns",
    "au_probability_columns",
    "columns",
    "expression_columns",
    "feature_columns",
    "frame_rows",
    "native_columns",
    "openface_au_intensity_columns",
    "openface_au_occurrence_columns",
    "openface_columns",
    "partial_path",
    "read_features",
    "to_dataframe",
]
