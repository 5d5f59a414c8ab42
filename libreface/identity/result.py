"""Identity step, results: the tracklets and persons of one recording and who each face row is."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

@dataclass(frozen=True)
class Tracklet:
    """One track id within one shot.

    Attributes:
        face_id: the tracker's id. shot: 0-based shot number (see `IdentityResult.shot_starts`).
        first_frame, last_frame: first and last frame index seen; n_frames: analysed frames with this face.
        n_embedded: sampled embeddings. person_id: the person it was merged into, -1 when flagged.
        flag: why it is flagged ("noise": its faces fit no cluster; "no usable face": none was large and clear
            enough to embed), "" when it has a person.
    """

    face_id: int
    shot: int
    first_frame: int
    last_frame: int
    n_frames: int
    n_embedded: int
    person_id: int
    flag: str = ""


@dataclass(frozen=True)
class Person:
    """One person of a recording.

    Attributes:
        person_id: 0 is the main subject (most frames), then 1, 2, ... by decreasing frames.
        n_frames: analysed frames in which the person appears.
        screen_time_s: seconds on screen (sum of the durations of those frames; NaN without timestamps).
        face_ids: tracker ids merged into this person.
        first_frame, last_frame: first and last frame index.
        mean_embedding: (D,) float32 unit vector, the normalised mean of the person's clustered embeddings.
    """

    person_id: int
    n_frames: int
    screen_time_s: float
    face_ids: tuple[int, ...]
    first_frame: int
    last_frame: int
    mean_embedding: np.ndarray = field(repr=False)


@dataclass(frozen=True)
class IdentityResult:
    """Who is who in one recording.

    Attributes:
        persons: sorted by `person_id`; persons[0] is the main subject. Empty when no face was clustered.
        track_to_person: face_id -> person_id, -1 when flagged. A track that a shot cut splits between two persons maps
            to the one it shows longest: use `person_of(frame, face_id)` to label rows exactly.
        flagged: face_ids whose every tracklet is flagged (person -1): faces that fit no cluster.
        tracklets: every (face_id, shot), in order of first appearance.
        shot_starts: first frame index of each shot (shot_starts[0] is the first analysed frame).
        eps: the DBSCAN radius used. embedder: the embedder's name.
    """

    persons: list[Person]
    track_to_person: dict[int, int]
    flagged: frozenset[int]
    tracklets: list[Tracklet]
    shot_starts: tuple[int, ...]
    eps: float
    embedder: str
    _by_key: dict = field(default_factory=dict, repr=False)
    _thumbs: dict = field(default_factory=dict, repr=False)

    @property
    def main_person(self) -> int:
        """person_id of the main subject (0), or -1 when there is no person."""
        return 0 if self.persons else -1

    def person_of(self, frame: int, face_id: int) -> int:
        """person_id of the face `face_id` in `frame` (-1: flagged, faceless row, or never observed)."""
        import bisect

        if face_id < 0 or not self.shot_starts:
            return -1
        shot = max(0, bisect.bisect_right(self.shot_starts, frame) - 1)
        return self._by_key.get((int(face_id), shot), -1)

    def person_ids(self, frames: Sequence[int], face_ids: Sequence[int]) -> np.ndarray:
        """Vectorised `person_of`: (N,) frame indices and face ids -> (N,) int64 person ids."""
        frames = np.asarray(frames, np.int64)
        face_ids = np.asarray(face_ids, np.int64)
        shots = np.maximum(np.searchsorted(np.asarray(self.shot_starts, np.int64), frames, side="right") - 1, 0)
        return np.array([self._by_key.get((int(f), int(s)), -1) if f >= 0 else -1 for f, s in zip(face_ids, shots)],
                        np.int64)

    def thumbnail(self, person_id: int, size: tuple[int, int] = (96, 96), zoom: float = 0.6) -> np.ndarray:
        """(H, W, 3) uint8 RGB picture of the person (their best sampled face, focal-point cropped), for the GUI.

        Nothing is written to disk. Raises ValueError for an unknown person."""
        from ..crop import focal_crop

        if person_id not in self._thumbs:
            known = ", ".join(str(p.person_id) for p in self.persons) or "none"
            raise ValueError(f"unknown person_id {person_id}; persons: {known}")
        image, box = self._thumbs[person_id]
        return focal_crop(image, [box], zoom=zoom, size=size).image

    def to_dict(self) -> dict:
        """A JSON-ready summary (no embeddings): persons, flagged tracks, shots, eps."""
        return {
            "embedder": self.embedder,
            "eps": self.eps,
            "shots": len(self.shot_starts),
            "persons": [
                {"person_id": p.person_id, "main": p.person_id == 0, "frames": p.n_frames,
                 "screen_time_s": None if math.isnan(p.screen_time_s) else round(p.screen_time_s, 3),
                 "face_ids": list(p.face_ids), "first_frame": p.first_frame, "last_frame": p.last_frame}
                for p in self.persons
            ],
            "flagged_face_ids": sorted(self.flagged),
            "flagged_tracklets": [{"face_id": t.face_id, "shot": t.shot, "frames": t.n_frames, "reason": t.flag}
                                  for t in self.tracklets if t.person_id < 0],
        }
