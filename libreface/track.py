"""Per-shot tracking: give each face a `face_id` that stays the same from frame to frame.

Greedy matching of landmark boxes by IoU between consecutive analysed frames (most overlapping pairs
first). A face that matches no live track opens a new id; a track unseen for `max_age` analysed
frames is closed. Ids are 0, 1, 2, ... in order of first appearance and are never reused within a
recording, so a person who leaves and comes back gets a new `face_id` (`libreface.identity` joins
those into one `person_id`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .landmarks import box_iou


@dataclass
class _Track:
    face_id: int
    box_px: tuple[float, float, float, float]
    age: int = 0


@dataclass
class IouTracker:
    """Greedy IoU tracker.

    Attributes:
        min_iou: least overlap (0..1) for a face to continue a track.
        max_age: analysed frames a track survives without a match.
    """

    min_iou: float = 0.3
    max_age: int = 15
    _tracks: list[_Track] = field(default_factory=list)
    _next_id: int = 0

    def update(self, boxes: list[tuple[float, float, float, float]]) -> list[int]:
        """Assign ids to this frame's boxes ((x0, y0, x1, y1) in pixels); returns one id per box, in order."""
        pairs = sorted(
            ((box_iou(t.box_px, b), ti, bi) for ti, t in enumerate(self._tracks) for bi, b in enumerate(boxes)),
            reverse=True,
        )
        ids: list[int | None] = [None] * len(boxes)
        used_tracks: set[int] = set()
        for iou, ti, bi in pairs:
            if iou < self.min_iou:
                break
            if ti in used_tracks or ids[bi] is not None:
                continue
            used_tracks.add(ti)
            ids[bi] = self._tracks[ti].face_id
            self._tracks[ti].box_px = boxes[bi]
            self._tracks[ti].age = 0
        for ti, t in enumerate(self._tracks):
            if ti not in used_tracks:
                t.age += 1
        self._tracks = [t for t in self._tracks if t.age <= self.max_age]
        for bi, b in enumerate(boxes):
            if ids[bi] is None:
                ids[bi] = self._next_id
                self._tracks.append(_Track(self._next_id, b))
                self._next_id += 1
        return [int(i) for i in ids]
