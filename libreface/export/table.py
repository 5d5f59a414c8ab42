"""Export step 1: the per-frame, per-person view of a results CSV that the segmenters take (from `outputs.reader`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..outputs.reader import Results, read_results
from ..outputs.schema import AU_PRESENCE_SUFFIX


@dataclass
class FrameTable:
    """One recording's per-frame results, in the columns the segmenters read.

    Attributes:
        path: the CSV that was read.
        fmt: "native" or "openface".
        frames: every analysed frame once, sorted by time: `frame`, `timestamp` (seconds), shape (n_frames, 2).
        faces: the analysed faces (`success == 1`): `frame`, `timestamp` (s), `person` ("P0", "P1", ...: the
            `person_id` when the CSV has identities, else the `face_id`), the presence columns renamed to the bare
            AU name (0/1) and the expression probabilities (0..1).
        aus: AUs with an occurrence column, in CSV order, e.g. ["AU01", "AU02", ...].
        expressions: expression probability columns, in CSV order (empty for the OpenFace layout).
    """

    path: Path
    fmt: str
    frames: pd.DataFrame
    faces: pd.DataFrame
    aus: list[str] = field(default_factory=list)
    expressions: list[str] = field(default_factory=list)


def frame_table(res: Results) -> FrameTable:
    """The segmenters' view of `res`: rows without a timestamp dropped, faces keyed by person."""
    df = res.rows[res.rows["timestamp"].notna()]
    frames = (df.groupby("frame", sort=False)["timestamp"].first().reset_index()
              .sort_values(["timestamp", "frame"], kind="stable").reset_index(drop=True))
    faces = df[df["success"].to_numpy() == 1]
    person = faces["face_id"]
    if (faces["person_id"] >= 0).any():  # identities were resolved: -1 marks flagged faces
        person = faces["person_id"]
    keep = (person >= 0).to_numpy()
    out = pd.DataFrame({"frame": faces["frame"].to_numpy()[keep], "timestamp": faces["timestamp"].to_numpy()[keep],
                        "person": ["P" + str(p) for p in person.to_numpy()[keep]]})
    for au in res.au_presence:
        out[au] = pd.to_numeric(faces[au + AU_PRESENCE_SUFFIX], errors="coerce").to_numpy(np.float64)[keep]
    for c in res.expressions:
        out[c] = pd.to_numeric(faces[c], errors="coerce").to_numpy(np.float64)[keep]
    return FrameTable(res.path, res.fmt, frames, out, list(res.au_presence), list(res.expressions))


def read_table(path: str | Path) -> FrameTable:
    """`frame_table(read_results(path))`; InputError, one line naming `path`, when it is not a results CSV."""
    return frame_table(read_results(path))
