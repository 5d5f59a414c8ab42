"""Unlabelled frames sampled from video files at a fixed rate, for the label-free MAE pretraining.

Every video in a folder (or one video file) is decoded with the runtime's own reader
(`libreface.sources.VideoSource`: PyAV, presentation timestamps, display rotation applied), and one
frame is kept per tick of `fps` ticks per second of container time: the first frame at or after
each tick `t0 + k / fps` (t0 = the first frame's timestamp). The choice depends only on the file, so
it is deterministic.

Records carry no expression votes and no AU codes; `key` is "<video stem>@<frame index>" (0-based
decode order, the analyzer's `frame` numbering), `subject` is the video stem and `split` is "train".
Frames are not held in memory: `Record.load` decodes the file forward to the requested frame
(`_FrameReader`, one file open at a time), so memory stays flat whatever the length of the videos.

Faces the landmarker misses give nothing useful to an unlabelled dataset: prepare it with
`on_miss="drop"` (the `distill prepare` rule for this dataset, `distill.data.ON_MISS`), so face-free frames
and face-free videos yield no rows.
"""

from __future__ import annotations

import atexit
import math
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from libreface.sources import VIDEO_SUFFIXES, Frame, VideoSource

from .records import Record

DEFAULT_FPS = 2.0
"""Frames sampled per second of container time."""


def video_files(root: Path) -> list[Path]:
    """The video files of `root` (a folder, not recursive, sorted by name; or one video file)."""
    root = Path(root)
    if root.is_file():
        if root.suffix.lower() not in VIDEO_SUFFIXES:
            raise ValueError(f"{root}: not a video file (expected one of {', '.join(VIDEO_SUFFIXES)})")
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder or video file")
    files = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not files:
        raise FileNotFoundError(f"{root}: no video files ({', '.join(VIDEO_SUFFIXES)})")
    stems: dict[str, Path] = {}
    for p in files:
        if p.stem in stems:
            raise ValueError(f"{root}: {stems[p.stem].name} and {p.name} share the stem {p.stem!r} (keys would clash)")
        stems[p.stem] = p
    return files


def sample_indices(timestamps_s: list[float] | np.ndarray, fps: float = DEFAULT_FPS) -> list[int]:
    """Indices of the frames kept at `fps` samples per second.

    Args:
        timestamps_s: (N,) presentation times in seconds, in frame order.
        fps: samples per second (> 0); a rate above the video's keeps every frame once.

    Returns:
        Sorted indices: for each tick t0 + k / fps (k = 0, 1, ...), the first frame at or after it (1 us tolerance).
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    out: list[int] = []
    if len(timestamps_s) == 0:
        return out
    t0 = float(timestamps_s[0])
    next_tick = t0
    for i, t in enumerate(timestamps_s):
        if t >= next_tick - 1e-6:
            out.append(i)
            next_tick = t0 + (math.floor((t - t0) * fps + 1e-6) + 1) / fps
    return out


def _timestamps(path: Path) -> list[float]:
    with VideoSource(path) as src:
        return [f.timestamp_s for f in src]


class _FrameReader:
    """Frame `index` of a video, decoding forward from the last frame read; a backward request or another file reopens.

    Module-wide and locked: one file is open at a time and one decoded frame is kept, whatever the number of records.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._source: VideoSource | None = None
        self._frames: Iterator[Frame] | None = None
        self._last: Frame | None = None

    def _open(self, path: Path) -> None:
        self.close()
        self._source = VideoSource(path)
        self._frames, self._path = iter(self._source), path

    def read(self, path: Path, index: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB of frame `index` (0-based decode order) of `path`."""
        with self._lock:
            if self._path != path or self._last is None or self._last.index > index:
                self._open(path)
            while self._last is None or self._last.index < index:
                self._last = next(self._frames, None)
                if self._last is None:
                    self.close()
                    raise ValueError(f"{path}: frame {index} not found (the file has fewer frames than when listed)")
            return self._last.rgb

    def close(self) -> None:
        """Close the open file (the next `read` reopens it)."""
        if self._frames is not None:
            self._frames.close()  # type: ignore[attr-defined]  # a generator: runs VideoSource's own cleanup
        if self._source is not None:
            self._source.close()
        self._path = self._source = self._frames = self._last = None


_READER = _FrameReader()
atexit.register(_READER.close)  # close the last file while the interpreter can still clean up after PyAV


def load_videos(root: Path, fps: float = DEFAULT_FPS) -> Iterator[Record]:
    """Unlabelled records of the frames sampled at `fps` per second from every video of `root` (see the module
    docstring); each video is decoded once here to read its timestamps, and again by `Record.load`."""
    for path in video_files(root):
        for i in sample_indices(_timestamps(path), fps):
            yield Record(key=f"{path.stem}@{i}", split="train", load=lambda p=path, i=i: _READER.read(p, i),
                         subject=path.stem)
