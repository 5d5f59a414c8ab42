"""Identity step, per recording: sample and embed faces per tracklet while frames run, then name the persons."""

from __future__ import annotations

import logging
import math
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .clustering import DEFAULT_EPS, _unit, cluster_tracklets
from .embedder import DlibEmbedder, FaceEmbedder
from .quality import face_quality
from .result import IdentityResult, Person, Tracklet

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentityOptions:
    """Options of `IdentityResolver`.

    Attributes:
        eps: DBSCAN radius, euclidean distance between unit vectors (0..2); see `DEFAULT_EPS`.
        min_samples: DBSCAN core weight: each tracklet mean weighs its number of embeddings, so with 2 any
            reliable tracklet (two agreeing faces or more) can be a person on its own; see `cluster_tracklets`.
        sample_every: window, in analysed frames of one tracklet; the best face of each window is embedded.
        max_per_track: most embeddings per tracklet (a tracklet is a track id within one shot).
        max_embeds_per_frame: most embeddings computed during one `observe` call (the rest wait for the next ones,
            or for `resolve`); this bounds the worst-case time per frame.
        max_faces_per_frame: candidate cap: only the largest faces of a frame are considered for embedding.
        min_face_px: faces whose landmark box is smaller (larger side, pixels) are never embedded.
        cut_threshold: mean absolute difference (0..1) between the 32 x 32 grey thumbnails of two consecutive analysed
            frames above which a shot cut is declared and every track is split there. Measured on the shared
            videos: at most 0.045 within a shot (hand-held TV clips), 0.35 median between two different clips. A
            false cut only splits tracklets, which clustering joins again; a missed cut can join two people.
    """

    eps: float = DEFAULT_EPS
    min_samples: int = 2
    sample_every: int = 10
    max_per_track: int = 8
    max_embeds_per_frame: int = 1
    max_faces_per_frame: int = 10
    min_face_px: float = 24.0
    cut_threshold: float = 0.08


@dataclass
class _Candidate:
    quality: float
    frame: int
    image: np.ndarray  # a region of the frame around the face
    landmarks_px: np.ndarray  # in `image` pixels
    box_px: tuple[float, float, float, float]  # in `image` pixels


@dataclass
class _TrackState:
    face_id: int
    shot: int
    frames: array = field(default_factory=lambda: array("q"))
    in_window: int = 0
    best: _Candidate | None = None
    queued: int = 0  # embeddings queued or done
    vectors: list = field(default_factory=list)
    thumb: _Candidate | None = None  # best face ever, for thumbnails


class IdentityResolver:
    """Collects a bounded sample of face embeddings per track during a run; `resolve()` names the persons.

    Args:
        embedder: a `FaceEmbedder`; default `DlibEmbedder()`. An embedder with `chip()` and `embed_chips()` (as
            `DlibEmbedder`) is batched; any other is called once per face through `embed()`.
        options: `IdentityOptions`.

    >>> resolver = IdentityResolver()
    >>> for frame in frames:                                   # every analysed frame, faces or not
    ...     resolver.observe(frame.index, frame.rgb, faces, face_ids, frame.timestamp_s)
    >>> result = resolver.resolve()
    >>> result.person_of(frame_index, face_id)                  # -> person_id, -1 when flagged
    """

    def __init__(self, embedder: FaceEmbedder | None = None, options: IdentityOptions | None = None) -> None:
        self.options = options or IdentityOptions()
        o = self.options
        if not 0 < o.eps < 2:
            raise ValueError(f"eps must be in (0, 2) (euclidean distance of unit vectors), got {o.eps}")
        for name in ("min_samples", "sample_every", "max_per_track", "max_embeds_per_frame", "max_faces_per_frame"):
            if getattr(o, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(o, name)}")
        self.embedder = embedder if embedder is not None else DlibEmbedder()
        self._tracks: dict[tuple[int, int], _TrackState] = {}
        self._queue: deque[tuple[_TrackState, _Candidate]] = deque()
        self._frames = array("q")
        self._times = array("d")
        self._shot_starts: list[int] = []
        self._thumb_prev: np.ndarray | None = None
        self._shot = -1
        self.embeddings_computed = 0

    # -- per frame ------------------------------------------------------------------------------
    def observe(self, frame_index: int, rgb: np.ndarray, faces: Sequence, face_ids: Sequence[int],
                timestamp_s: float | None = None) -> None:
        """Record one analysed frame.

        Args:
            frame_index: 0-based decode index; increasing from call to call.
            rgb: (H, W, 3) uint8 RGB frame.
            faces: this frame's faces, objects with `box_px` (x0, y0, x1, y1), `landmarks_px` (478, 3) in `rgb`
                pixels and `confidence` 0..1 (`libreface.landmarks.FaceLandmarks` or `FaceResult`).
            face_ids: the tracker's id of each face, same order.
            timestamp_s: presentation time in seconds (for screen time); None leaves screen time NaN.
        """
        if len(faces) != len(face_ids):
            raise ValueError(f"faces and face_ids must have the same length, got {len(faces)} and {len(face_ids)}")
        o = self.options
        self._frames.append(int(frame_index))
        self._times.append(float("nan") if timestamp_s is None else float(timestamp_s))
        self._check_cut(int(frame_index), rgb)
        order = sorted(range(len(faces)), key=lambda i: -_box_side(faces[i].box_px))
        candidates = set(order[: o.max_faces_per_frame])
        for i, (face, fid) in enumerate(zip(faces, face_ids)):
            key = (int(fid), self._shot)
            t = self._tracks.get(key)
            if t is None:
                t = self._tracks[key] = _TrackState(int(fid), self._shot)
            t.frames.append(int(frame_index))
            if i not in candidates or t.queued >= o.max_per_track:
                continue
            if t.in_window >= o.sample_every:
                self._close_window(t)
            t.in_window += 1
            if _box_side(face.box_px) < o.min_face_px:
                continue
            q = face_quality(rgb, face.landmarks_px, getattr(face, "confidence", 1.0))
            if t.best is None or q > t.best.quality:
                t.best = _region(rgb, face, q, int(frame_index))
        self._embed_queued(o.max_embeds_per_frame)

    def _check_cut(self, frame_index: int, rgb: np.ndarray) -> None:
        import cv2

        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY) if rgb.ndim == 3 else rgb
        thumb = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        prev, self._thumb_prev = self._thumb_prev, thumb
        if prev is None or float(np.abs(thumb - prev).mean()) > self.options.cut_threshold:
            self._shot += 1
            self._shot_starts.append(frame_index)
            for t in self._tracks.values():  # the previous shot's windows will get no more faces
                if t.shot < self._shot and t.best is not None:
                    self._close_window(t)

    def _close_window(self, t: _TrackState) -> None:
        if t.best is not None and t.queued < self.options.max_per_track:
            self._queue.append((t, t.best))
            t.queued += 1
            if t.thumb is None or t.best.quality > t.thumb.quality:
                t.thumb = _small_copy(t.best)
        t.best = None
        t.in_window = 0

    def _embed_queued(self, limit: int | None) -> None:
        batch = []
        while self._queue and (limit is None or len(batch) < limit):
            batch.append(self._queue.popleft())
        if not batch:
            return
        vecs = _embed_many(self.embedder, [c for _, c in batch])
        for (t, _), v in zip(batch, vecs):
            if v is not None:
                t.vectors.append(v)
        self.embeddings_computed += len(batch)
        for _, c in batch:  # the region is no longer needed (thumbnails are separate small copies)
            c.image = c.image[:0]

    # -- end of recording ---------------------------------------------------------------------
    def resolve(self) -> IdentityResult:
        """Embed what is still queued, cluster, and name the persons. May be called again after more frames."""
        for t in self._tracks.values():
            if t.best is not None:
                self._close_window(t)
        self._embed_queued(None)
        o = self.options
        tracks = list(self._tracks.values())
        with_vec = [ti for ti, t in enumerate(tracks) if t.vectors]
        labels = cluster_tracklets([np.asarray(tracks[ti].vectors) for ti in with_vec],
                                   [tracks[ti].frames for ti in with_vec], o.eps, o.min_samples)
        track_cluster = [-1] * len(tracks)
        for ti, c in zip(with_vec, labels.tolist()):
            track_cluster[ti] = int(c)

        # clusters -> persons, by decreasing frames (ties: first appearance)
        frames_of: dict[int, set[int]] = {}
        for t, c in zip(tracks, track_cluster):
            if c >= 0:
                frames_of.setdefault(c, set()).update(t.frames)
        order = sorted(frames_of, key=lambda c: (-len(frames_of[c]), min(frames_of[c])))
        person_of_cluster = {c: p for p, c in enumerate(order)}
        durations = self._durations()
        persons = []
        for c in order:
            members = [t for t, tc in zip(tracks, track_cluster) if tc == c]
            mean = _unit(np.concatenate([np.asarray(t.vectors) for t in members if t.vectors]).mean(0))
            fr = frames_of[c]
            persons.append(Person(
                person_id=person_of_cluster[c], n_frames=len(fr),
                screen_time_s=float(sum(durations.get(f, float("nan")) for f in fr)),
                face_ids=tuple(sorted({t.face_id for t in members})), first_frame=min(fr), last_frame=max(fr),
                mean_embedding=mean,
            ))

        tracklets, by_key, thumbs = [], {}, {}
        votes_by_face: dict[int, Counter] = {}
        for t, c in zip(tracks, track_cluster):
            pid = person_of_cluster.get(c, -1)
            flag = "" if pid >= 0 else ("noise" if t.vectors else "no usable face")
            tracklets.append(Tracklet(t.face_id, t.shot, t.frames[0], t.frames[-1], len(t.frames), len(t.vectors),
                                      pid, flag))
            by_key[(t.face_id, t.shot)] = pid
            votes_by_face.setdefault(t.face_id, Counter())[pid] += len(t.frames)
            if pid >= 0 and t.thumb is not None and t.thumb.image.size:
                if pid not in thumbs or t.thumb.quality > thumbs[pid][0]:
                    thumbs[pid] = (t.thumb.quality, t.thumb.image, t.thumb.box_px)
        track_to_person = {}
        for fid, votes in votes_by_face.items():
            named = Counter({p: n for p, n in votes.items() if p >= 0})
            track_to_person[fid] = min(named, key=lambda p: (-named[p], p)) if named else -1
        flagged = frozenset(fid for fid, p in track_to_person.items() if p < 0)
        if flagged:
            log.info("identity: %d track(s) fit no person and are flagged (person_id -1)", len(flagged))
        return IdentityResult(
            persons=persons, track_to_person=track_to_person, flagged=flagged, tracklets=tracklets,
            shot_starts=tuple(self._shot_starts), eps=o.eps, embedder=getattr(self.embedder, "name", "custom"),
            _by_key=by_key, _thumbs={p: (img, box) for p, (_, img, box) in thumbs.items()},
        )

    def _durations(self) -> dict[int, float]:
        """frame index -> seconds until the next analysed frame (the median step for the last one)."""
        f = np.frombuffer(self._frames, np.int64) if len(self._frames) else np.zeros(0, np.int64)
        ts = np.frombuffer(self._times, np.float64) if len(self._times) else np.zeros(0)
        if len(ts) == 0 or np.isnan(ts).any():
            return {}
        steps = np.diff(ts)
        last = float(np.median(steps)) if len(steps) else 0.0
        return dict(zip(f.tolist(), np.append(steps, last).tolist()))


def _box_side(box) -> float:
    return float(max(box[2] - box[0], box[3] - box[1]))


def _region(rgb: np.ndarray, face, quality: float, frame: int) -> _Candidate:
    """Copy a region around the face (its box grown by 60% each side), big enough for any chip of it."""
    h, w = rgb.shape[:2]
    x0, y0, x1, y1 = face.box_px
    m = 0.6 * max(x1 - x0, y1 - y0)
    rx0, ry0 = max(0, int(math.floor(x0 - m))), max(0, int(math.floor(y0 - m)))
    rx1, ry1 = min(w, int(math.ceil(x1 + m))), min(h, int(math.ceil(y1 + m)))
    lm = np.array(face.landmarks_px, np.float32, copy=True)
    lm[:, 0] -= rx0
    lm[:, 1] -= ry0
    box = (x0 - rx0, y0 - ry0, x1 - rx0, y1 - ry0)
    return _Candidate(quality, frame, rgb[ry0:ry1, rx0:rx1].copy(), lm, box)


def _small_copy(c: _Candidate, max_side: int = 160) -> _Candidate:
    """A copy of a candidate whose region is at most `max_side` pixels on its longer side (for thumbnails)."""
    import cv2

    h, w = c.image.shape[:2]
    s = min(1.0, max_side / max(h, w, 1))
    if s >= 1.0:
        return _Candidate(c.quality, c.frame, c.image.copy(), c.landmarks_px, c.box_px)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    image = cv2.resize(c.image, size, interpolation=cv2.INTER_AREA)
    return _Candidate(c.quality, c.frame, image, c.landmarks_px * s, tuple(v * s for v in c.box_px))


def _embed_many(embedder, cands: list[_Candidate]) -> list[np.ndarray | None]:
    if hasattr(embedder, "chip") and hasattr(embedder, "embed_chips"):
        chips = [embedder.chip(c.image, c.landmarks_px) for c in cands]
        ok = [i for i, ch in enumerate(chips) if ch is not None]
        vecs = embedder.embed_chips([chips[i] for i in ok])
        out: list[np.ndarray | None] = [None] * len(cands)
        for i, v in zip(ok, vecs):
            out[i] = v
        return out
    out = []
    for c in cands:
        try:
            out.append(np.asarray(embedder.embed(c.image, c.landmarks_px), np.float32))
        except ValueError:
            out.append(None)
    return out
