"""DataFrame output: analysed frames as one pandas table, at full precision, with provenance."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..results import FrameResult, OutputLabels
from .rows import layout_rows
from .schema import layout_for, provenance


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

    layout = layout_for(labels, fmt, landmarks, blendshapes)
    rows = [row for result in results for row in layout_rows(result, labels, layout)]
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
    df.attrs["libreface"] = provenance(labels, fmt)
    return df
