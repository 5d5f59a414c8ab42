"""Export step 3b: segments -> a plain events CSV (`person, tier, label, onset_s, offset_s`) for BORIS, R and pandas."""

from __future__ import annotations

import csv
import io
from typing import Iterable

from .segments import Segment

EVENT_COLUMNS: tuple[str, ...] = ("person", "tier", "label", "onset_s", "offset_s")


def events_bytes(segments: Iterable[Segment]) -> bytes:
    """UTF-8 CSV, one row per segment, times in seconds with millisecond precision (the `.eaf`'s resolution)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(EVENT_COLUMNS)
    for s in segments:
        on, off = int(round(s.onset_s * 1000)), int(round(s.offset_s * 1000))
        if off > on:  # the same segments and milliseconds as the .eaf
            w.writerow((s.person, s.tier, s.label, f"{on / 1000:.3f}", f"{off / 1000:.3f}"))
    return buf.getvalue().encode("utf-8")
