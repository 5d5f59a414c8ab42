"""DISFA (Mavadati et al., IEEE TAC 2013): 27 adults watching video clips, AU intensity coded on every frame.

DISFA is licensed by its authors (University of Denver, mohammadmahoor.com/disfa) for non-commercial research only,
on request; users bring their own copy, and nothing of it is redistributed here. Layout, as distributed:

    <root>/ActionUnit_Labels/SN001/SN001_au1.txt     lines "frame,intensity": 1-based frame, intensity 0..5
                                                     (one file per AU: 1 2 4 5 6 9 12 15 17 20 25 26)
    <root>/Videos_LeftCamera/LeftVideoSN001_comp.avi the left-camera video (4,845 frames at 20 fps)

and, optionally, frames already extracted from the left video, one folder per subject:

    <root>/Frames/SN001/<n>.jpg                       (`Images/` or `img/` are accepted instead of `Frames/`)

where `<n>` is the frame number, plain (`1.jpg`), zero-padded (`00001.jpg`) or after a prefix (`frame_00001.png`).
Numbers are 1-based like the labels; a folder that contains frame 0 is taken as 0-based (ffmpeg `-start_number 0`,
OpenCV dumps) and shifted by one. Only labelled frames that have an image are yielded.

When a subject has no frame folder, its frames are read straight from the video with PyAV (the runtime's own
`libreface.sources.VideoSource`). Records are yielded in frame order and share one lazy decoder per subject, so a
`load` decodes forward from the previous one: a pass over the records in order decodes each video once. Loading an
earlier frame again reopens the video and decodes from the start, so random access is slow; extract the frames
(`ffmpeg -i LeftVideoSN001_comp.avi Frames/SN001/%05d.jpg`) for shuffled access. Labelled frames past the frame
count in the video's header are dropped with a warning.

Each record: `subject` "SN001", `au_intensity` {AU: 0..5}, `au_occurrence` {AU: 0/1} with occurrence meaning
intensity >= 2 (`OCCURRENCE_MIN_INTENSITY`, the rule of most DISFA AU-detection papers: intensity 1 is a trace),
split "train" (DISFA has no official split; split by `subject`, usually 3-fold).
"""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Iterator

import numpy as np

from .records import Record, read_image

logger = logging.getLogger(__name__)

OCCURRENCE_MIN_INTENSITY = 2
"""An AU occurs on a frame when its DISFA intensity is at least this (0..5 scale)."""

_LABELS = "ActionUnit_Labels"
_VIDEOS = "Videos_LeftCamera"
_FRAME_DIRS = ("Frames", "Images", "img")
_SUBJECT = re.compile(r"SN\d{3}")
_AU_FILE = re.compile(r"_au(\d+)\.txt$", re.IGNORECASE)
_TRAILING_NUMBER = re.compile(r"(\d+)$")
_IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp"}


def read_labels(subject_dir: Path) -> dict[int, dict[int, float]]:
    """1-based frame number -> {AU number: intensity 0..5} from the `<subject>_au<n>.txt` files of one subject."""
    frames: dict[int, dict[int, float]] = {}
    for path in sorted(subject_dir.iterdir()):
        m = _AU_FILE.search(path.name)
        if not m:
            continue
        au = int(m.group(1))
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                frame, intensity = line.split(",")[:2]
                frames.setdefault(int(frame), {})[au] = float(intensity)
            except ValueError:
                raise ValueError(f"{path}: line {line_no} is {line.strip()!r}; expected 'frame,intensity'") from None
    return frames


def numbered_frames(folder: Path) -> dict[int, Path]:
    """1-based frame number -> image file, from the trailing number of each file name (0-based folders shifted)."""
    frames = {int(m.group(1)): p for p in folder.iterdir()
              if p.suffix.lower() in _IMAGE_EXT and (m := _TRAILING_NUMBER.search(p.stem))}
    if 0 in frames:
        frames = {n + 1: p for n, p in frames.items()}
    return frames


class _LeftVideo:
    """Frames of one video by 1-based number, decoded lazily and forward only (reopened to go back)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # prepare() pulls images from a pool's feeder thread
        self._frames: Iterator | None = None
        self._source = None
        self._next = 1  # number of the frame the iterator yields next
        self._last: tuple[int, np.ndarray] | None = None

    def frame(self, number: int) -> np.ndarray:
        """(H, W, 3) uint8 RGB of 1-based frame `number`."""
        from libreface.sources import VideoSource

        with self._lock:
            if self._last is not None and self._last[0] == number:
                return self._last[1].copy()  # the caller may write into the array it got the first time
            if self._frames is None or number < self._next:
                self.close()
                self._source = VideoSource(self.path)
                self._frames, self._next = iter(self._source), 1
            for frame in self._frames:
                self._next += 1
                if self._next - 1 == number:
                    self._last = (number, frame.rgb)
                    return frame.rgb
            n_decoded = self._next - 1
            self.close()
            raise ValueError(f"{self.path}: frame {number} was asked but the video ends after {n_decoded} frames")

    def close(self) -> None:
        if self._source is not None:
            self._source.close()
        self._source, self._frames = None, None

    def n_frames_hint(self) -> int | None:
        """Frame count from the container header (None when the header has none or cannot be read)."""
        import av

        try:
            with av.open(str(self.path)) as container:
                return container.streams.video[0].frames or None
        except (av.error.FFmpegError, IndexError):  # `load` will report the damaged file, naming it
            return None


def load_disfa(root: Path) -> Iterator[Record]:
    """Records of every labelled DISFA frame that has an image (see the module docstring for the layout).

    Raises:
        FileNotFoundError: when the labels, or both the frame folders and the videos, are not found under `root`.
    """
    root = Path(root)
    labels = root / _LABELS
    if not labels.is_dir():
        raise FileNotFoundError(f"{labels}: not found; expected DISFA's {_LABELS}/SN001/SN001_au1.txt "
                                f"with {_VIDEOS}/ or Frames/ next to it")
    subjects = sorted(d for d in labels.iterdir() if d.is_dir() and _SUBJECT.fullmatch(d.name))
    if not subjects:
        raise FileNotFoundError(f"{labels}: no SNnnn subject folders found; expected {_LABELS}/SN001/SN001_au1.txt")
    frames = next((root / name for name in _FRAME_DIRS if (root / name).is_dir()), None)
    if frames is None and not (root / _VIDEOS).is_dir():
        raise FileNotFoundError(f"{root}: neither Frames/ nor {_VIDEOS}/ found; expected Frames/SN001/<frame>.jpg "
                                f"or {_VIDEOS}/LeftVideoSN001_comp.avi")
    return _records(subjects, frames, root / _VIDEOS)


def _records(subjects: list[Path], frames_root: Path | None, videos: Path) -> Iterator[Record]:
    n_without_image = 0
    for subject_dir in subjects:
        subject = subject_dir.name
        labels = read_labels(subject_dir)
        folder = frames_root / subject if frames_root is not None else None
        video = videos / f"LeftVideo{subject}_comp.avi"
        if folder is not None and folder.is_dir():
            images = numbered_frames(folder)
            loads = {n: (lambda p=images[n]: read_image(p)) for n in sorted(labels) if n in images}
            n_without_image += len(labels) - len(loads)
        elif video.is_file():
            decoder = _LeftVideo(video)
            n_frames = decoder.n_frames_hint()
            numbers = sorted(n for n in labels if n >= 1)
            if n_frames is not None and numbers and numbers[-1] > n_frames:
                logger.warning("%s: its header says %d frames; labels of %d later frames are dropped",
                               video, n_frames, sum(n > n_frames for n in numbers))
                numbers = [n for n in numbers if n <= n_frames]
            loads = {n: (lambda n=n, d=decoder: d.frame(n)) for n in numbers}
        else:
            logger.warning("%s: no frames (%s) and no video (%s); subject skipped", subject, folder, video)
            continue
        for n, load in loads.items():
            intensity = labels[n]
            yield Record(
                key=f"{subject}_{n:05d}",
                split="train",
                load=load,
                subject=subject,
                au_intensity=dict(intensity),
                au_occurrence={au: int(v >= OCCURRENCE_MIN_INTENSITY) for au, v in intensity.items()},
            )
    if n_without_image:
        logger.warning("%s: skipped %d labelled frames without an image in the frame folders", frames_root,
                       n_without_image)
