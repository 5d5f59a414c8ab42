"""Export: a results CSV -> timed segments -> an ELAN `.eaf` and a plain events CSV (`libreface elan`).

Steps: `table` (the per-person view of a CSV read by `libreface.outputs.reader`), `segments` (dominant expression
with hysteresis, AU activations), `elan` (the ELAN 3.0 document), `events` (person, tier, label, onset_s, offset_s),
`command` (the CLI).
"""

from __future__ import annotations

from .segments import Segment, SegmentOptions, au_segments, expression_segments, hysteresis, segments
from .table import FrameTable, frame_table, read_table

__all__ = ["FrameTable", "Segment", "SegmentOptions", "au_segments", "expression_segments", "frame_table",
           "hysteresis", "read_table", "segments"]
