"""Identity step: face embeddings -> DBSCAN -> one `person_id` per person, stable across cuts and re-entries.

```
per analysed frame (pipeline's landmark stage):
  observe(frame, rgb, faces, face_ids)   shot-cut check on a 32x32 thumbnail; each (face_id, shot) is a tracklet;
                                         per tracklet keep the sharpest, most frontal face of every window of
                                         `sample_every` frames; embed at most `max_embeds_per_frame` of them
end of recording:
  resolve() -> IdentityResult            DBSCAN over the mean embeddings of reliable tracklets (euclidean on unit
                                         vectors); faces seen together in a frame are kept apart; weak tracklets
                                         (one face, or faces that disagree) join a cluster as border points or are
                                         flagged (person -1); the cluster with the most frames is person 0
```

Cost is bounded: at most `max_per_track` embeddings per tracklet, at most `max_embeds_per_frame` per frame, and
faces beyond the `max_faces_per_frame` largest of a frame are never embedded. Tracks are split at shot cuts so that
a tracker id carried over a cut (two people at the same place on either side of it) cannot join two people.

The embedder is dlib's ResNet face descriptor (`dlib_face_recognition_resnet_model_v1`, 128-D; Davis King,
released into the public domain), read from the `face_recognition_models` package and run by `dlib` (`dlib-bin`
wheel, Boost licence): `pip install 'libreface-cpu[identity]'`. Faces are aligned onto dlib's own 5-point chip
template from MediaPipe's eye corners and nose base. `bench/identity.py` measures verification (TPR at FPR=0.1%) and
the distance distributions behind `DEFAULT_EPS`.
"""

from __future__ import annotations

import hashlib
import logging
import math
from array import array
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from .align import similarity_matrix
from .errors import ModelError

log = logging.getLogger(__name__)

DEFAULT_EPS = 0.40
"""DBSCAN radius: euclidean distance between unit-length dlib descriptors (= sqrt(2 - 2 cos)), applied to tracklet
means.

Measured by `bench/identity.py` on the shared videos (540 faces, 13 people): single faces of two different people
are closer than 0.39 in 0.1 % of pairs, while 95 % of same-person pairs are (median 0.26). Tracklet means are
steadier than single faces: on multi_face.avi the three men's means are 0.47-0.53 apart and a man's good tracklets
lie within 0.29 of each other; any eps from 0.38 to 0.50 gives the same persons there. 0.40 is the FPR = 0.1 % point
of single faces, rounded up."""

DLIB5_TEMPLATE_UNIT = np.array(
    [
        (0.8595674595992, 0.2134981538014),  # image-right eye, outer corner (subject's left eye)
        (0.6460604764104, 0.2289674387677),  # image-right eye, inner corner
        (0.1205750620789, 0.2137274526848),  # image-left eye, outer corner (subject's right eye)
        (0.3340850613712, 0.2290642403242),  # image-left eye, inner corner
        (0.4901123135679, 0.6277975316475),  # base of the nose
    ],
    dtype=np.float64,
)
"""(5, 2) dlib's face-chip template (mean iBUG-68 points 45, 42, 36, 39, 33), (x, y) in units of the chip side
before padding; the same numbers as dlib's `get_face_chip_details`."""

DLIB5_FROM_MEDIAPIPE: tuple[int, ...] = (263, 362, 33, 133, 2)
"""MediaPipe mesh vertex for each `DLIB5_TEMPLATE_UNIT` point: iBUG 45, 42, 36, 39, 33 in
`libreface.outputs.IBUG68_FROM_MEDIAPIPE`."""

_MODEL_FILES = {
    "dlib_face_recognition_resnet_model_v1.dat": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "shape_predictor_5_face_landmarks.dat": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
}
"""dlib model files used from `face_recognition_models` 0.3.0, with their sha256."""

_EYE_OUTER = (33, 263)  # MediaPipe: image-left and image-right outer eye corners
_NOSE_TIP = 1


# ---------------------------------------------------------------------------------------------
# Embeddings
# ---------------------------------------------------------------------------------------------


@runtime_checkable
class FaceEmbedder(Protocol):
    """Anything that turns one face into a unit-length identity vector.

    Attributes:
        name: short model name written into summaries, e.g. "dlib_resnet_v1".
        dim: length D of the vectors.
    """

    name: str
    dim: int

    def embed(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB and its face's (478, 2 or 3) MediaPipe landmarks in pixels -> (D,) float32, norm 1."""
        ...


def _models_dir() -> Path:
    """Folder of the `face_recognition_models` package's `.dat` files, found without importing the package (its
    `__init__` needs `pkg_resources`, which recent setuptools no longer ships)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("identity needs the identity extra: pip install 'libreface-cpu[identity]' "
                          "(face_recognition_models is missing)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def _verified(folder: Path, name: str) -> str:
    path = folder / name
    if not path.is_file():
        raise ModelError(f"{path}: not found; reinstall the identity extra: pip install 'libreface-cpu[identity]'")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    got, want = h.hexdigest(), _MODEL_FILES[name]
    if got != want:
        raise ModelError(f"{path}: sha256 {got[:12]}… is not the expected {want[:12]}…; "
                         "reinstall face_recognition_models==0.3.0")
    return str(path)


class DlibEmbedder:
    """dlib's ResNet face descriptor (128-D), aligned on dlib's 5-point chip.

    Args:
        landmarks: "mediapipe" (default): the 5 chip points are MediaPipe's eye corners and nose base
            (`DLIB5_FROM_MEDIAPIPE`); "dlib5": dlib's 5-point shape predictor, run in the MediaPipe landmark box.
            `bench/identity.py` compares the two.
        model_dir: folder holding the `.dat` files; default: the installed `face_recognition_models` package.

    >>> emb = DlibEmbedder()
    >>> v = emb.embed(rgb, face.landmarks_px)     # (128,) float32, norm 1
    """

    name = "dlib_resnet_v1"
    dim = 128
    chip_px = 150
    padding = 0.25

    def __init__(self, landmarks: str = "mediapipe", model_dir: str | Path | None = None) -> None:
        if landmarks not in ("mediapipe", "dlib5"):
            raise ValueError(f"landmarks must be 'mediapipe' or 'dlib5', got {landmarks!r}")
        try:
            import dlib
        except ImportError as e:
            raise ImportError("identity needs the identity extra: pip install 'libreface-cpu[identity]' "
                              "(dlib is missing)") from e
        folder = Path(model_dir) if model_dir is not None else _models_dir()
        self._dlib = dlib
        self.landmarks = landmarks
        self._net = dlib.face_recognition_model_v1(_verified(folder, "dlib_face_recognition_resnet_model_v1.dat"))
        self._sp = (dlib.shape_predictor(_verified(folder, "shape_predictor_5_face_landmarks.dat"))
                    if landmarks == "dlib5" else None)
        # dlib's chip coordinates are half a pixel off OpenCV's (checked: this matches dlib.get_face_chip to 1.6 grey
        # levels on average, against 4.5 without the shift)
        self._dst = (DLIB5_TEMPLATE_UNIT + self.padding) / (1 + 2 * self.padding) * self.chip_px - 0.5

    def five_points(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
        """(5, 2) float64 chip points in `rgb` pixels, in `DLIB5_TEMPLATE_UNIT` order."""
        lm = np.asarray(landmarks_px, np.float64)
        if lm.ndim != 2 or lm.shape[0] < 468 or lm.shape[1] < 2:
            raise ValueError(f"landmarks_px must have shape (478, 2) or (478, 3), got {lm.shape}")
        if self._sp is None:
            return lm[list(DLIB5_FROM_MEDIAPIPE), :2]
        x0, y0 = lm[:, :2].min(0)
        x1, y1 = lm[:, :2].max(0)
        rect = self._dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1)))
        shape = self._sp(np.ascontiguousarray(rgb), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)

    def chip(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray | None:
        """The (150, 150, 3) uint8 RGB chip dlib's network expects, or None for degenerate landmarks."""
        from .imaging import pyr_down, warp_affine

        m = similarity_matrix(self.five_points(rgb, landmarks_px), self._dst)
        if m is None or not np.isfinite(m).all():
            return None
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        img = rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=2)
        while scale < 0.5 and min(img.shape[:2]) > 8:  # shrinking a lot: resample from a pyramid level (as dlib does)
            img = pyr_down(img)
            m = m.copy()
            m[:, :2] *= 2.0
            scale *= 2.0
        return warp_affine(img, m, (self.chip_px, self.chip_px))

    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 150, 150, 3) uint8 chips -> (N, 128) float32 unit rows (N may be 0)."""
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        vecs = self._net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        out = np.array([np.asarray(v) for v in vecs], np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def embed(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB and the face's (478, 2|3) landmarks in pixels -> (128,) float32, norm 1.

        Raises:
            ValueError: degenerate landmarks (all points at one place).
        """
        chip = self.chip(rgb, landmarks_px)
        if chip is None:
            raise ValueError("landmarks_px are degenerate: no chip can be aligned")
        return self.embed_chips([chip])[0]


def face_quality(rgb: np.ndarray, landmarks_px: np.ndarray, confidence: float = 1.0) -> float:
    """How useful one face is for recognition, 0..1: confidence x size x frontalness x sharpness.

    size: outer-eye distance / 40 px, capped at 1; frontalness: 1 when the nose tip is halfway between the outer eye
    corners, 0 at about 45 degrees of yaw; sharpness: v / (v + 100), v = variance of the Laplacian of the grey face box
    resized to 64 x 64. Only used to rank a track's faces, so the scale is arbitrary but monotonic.
    """
    import cv2

    lm = np.asarray(landmarks_px, np.float64)[:, :2]
    a, b = lm[_EYE_OUTER[0]], lm[_EYE_OUTER[1]]
    axis = b - a
    iod = float(np.hypot(*axis))
    if not np.isfinite(iod) or iod < 1e-6:
        return 0.0
    r = float(np.dot(lm[_NOSE_TIP] - a, axis) / iod**2)
    frontal = min(1.0, max(0.0, 1.0 - 2.5 * abs(r - 0.5)))
    size = min(1.0, iod / 40.0)
    h, w = rgb.shape[:2]
    x0, y0 = np.clip(np.floor(lm.min(0)).astype(int), 0, (w - 1, h - 1))
    x1, y1 = np.clip(np.ceil(lm.max(0)).astype(int) + 1, 1, (w, h))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    patch = rgb[y0:y1, x0:x1]
    grey = cv2.cvtColor(np.ascontiguousarray(patch), cv2.COLOR_RGB2GRAY) if patch.ndim == 3 else patch
    grey = cv2.resize(grey, (64, 64), interpolation=cv2.INTER_AREA)
    v = float(cv2.Laplacian(grey, cv2.CV_64F).var())
    return float(confidence) * size * frontal * (v / (v + 100.0))


# ---------------------------------------------------------------------------------------------
# Per-recording identity
# ---------------------------------------------------------------------------------------------


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
        from .crop import focal_crop

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


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def cluster_embeddings(X: np.ndarray, eps: float = DEFAULT_EPS, min_samples: int = 2,
                       weights: np.ndarray | None = None) -> np.ndarray:
    """DBSCAN (scikit-learn) on (N, D) unit vectors, euclidean distance; returns (N,) int labels, -1 = noise.

    `weights` (N,) count each point that many times towards `min_samples`."""
    if len(X) == 0:
        return np.zeros(0, np.int64)
    try:
        from sklearn.cluster import DBSCAN
    except ImportError as e:
        raise ImportError("identity needs the identity extra: pip install 'libreface-cpu[identity]' "
                          "(scikit-learn is missing)") from e
    return DBSCAN(eps=eps, min_samples=min_samples, metric="euclidean").fit_predict(X, sample_weight=weights
                                                                                 ).astype(np.int64)


def cluster_tracklets(vectors: Sequence[np.ndarray], frames: Sequence[Sequence[int]], eps: float = DEFAULT_EPS,
                      min_samples: int = 2, margin: float = 0.05) -> np.ndarray:
    """Group tracklets into persons. Pure function of the embeddings: no model, no image.

    Args:
        vectors: per tracklet, a (n_i, D) array of its unit embeddings (n_i >= 1).
        frames: per tracklet, the frame indices it appears in (two tracklets sharing a frame are two people).
        eps: DBSCAN radius on tracklet means (euclidean, unit vectors).
        min_samples: DBSCAN core weight; each mean weighs its number of embeddings.
        margin: a weak tracklet joins its nearest cluster only if the next one is at least this much farther.

    Returns:
        (T,) int labels, -1 for tracklets that fit no cluster.

    1. A tracklet is *reliable* when it has at least two embeddings and all of them lie within `eps` of its mean.
       DBSCAN runs on the means of the reliable tracklets, each weighted by its number of embeddings.
    2. A cluster holding two tracklets that share a frame is clustered again with eps x 0.85 (up to 4 times).
    3. Weak tracklets (one embedding, or faces that disagree: blur, false detections) never link clusters: each is a
       DBSCAN border point of its nearest cluster (distance to the nearest member mean <= eps, not sharing a frame
       with it, and `margin` closer than any other cluster), or noise (-1).
    """
    T = len(vectors)
    labels = np.full(T, -1, np.int64)
    if T == 0:
        return labels
    means = np.stack([_unit(np.asarray(v, np.float32).mean(0)) for v in vectors])
    counts = np.array([len(v) for v in vectors], np.float64)
    spread = np.array([float(np.linalg.norm(np.asarray(v) - m, axis=1).max()) for v, m in zip(vectors, means)])
    reliable = np.flatnonzero((counts >= 2) & (spread <= eps))
    frame_sets = [set(f) for f in frames]
    if len(reliable):
        sub = cluster_embeddings(means[reliable], eps, min_samples, counts[reliable])
        sub = _split_cooccurring(means[reliable], sub, [frame_sets[i] for i in reliable], eps, min_samples,
                                 counts[reliable])
        labels[reliable] = sub
    core = np.flatnonzero(labels >= 0)
    for i in np.setdiff1d(np.arange(T), reliable):
        best: dict[int, float] = {}
        for j in core:
            c = int(labels[j])
            d = float(np.linalg.norm(means[i] - means[j]))
            best[c] = min(best.get(c, np.inf), d)
        clusters = sorted(best, key=best.get)
        clusters = [c for c in clusters
                    if not any(frame_sets[i] & frame_sets[j] for j in core if labels[j] == c)]
        if clusters and best[clusters[0]] <= eps and (len(clusters) == 1 or
                                                       best[clusters[1]] - best[clusters[0]] >= margin):
            labels[i] = clusters[0]
    return labels


def _split_cooccurring(X, labels, frame_sets, eps, min_samples, weights=None, rounds: int = 4):
    """Two faces in the same frame are two people: a cluster holding points whose frames overlap is clustered
    again with a smaller radius (x0.85 per round, at most `rounds` times)."""
    labels = labels.copy()
    next_label = int(labels.max()) + 1 if len(labels) else 0
    for _ in range(rounds):
        changed = False
        eps *= 0.85
        for c in sorted(set(labels.tolist()) - {-1}):
            idx = np.flatnonzero(labels == c)
            if not _any_overlap([frame_sets[i] for i in idx]):
                continue
            sub = cluster_embeddings(X[idx], eps, min_samples, None if weights is None else weights[idx])
            for s in sorted(set(sub.tolist())):
                labels[idx[sub == s]] = -1 if s < 0 else next_label
                next_label += s >= 0
            changed = True
        if not changed:
            break
    return labels


def _any_overlap(sets: list[set[int]]) -> bool:
    seen: set[int] = set()
    for fr in sets:
        if seen & fr:
            return True
        seen |= fr
    return False


# ---------------------------------------------------------------------------------------------
# Tables of rows: summary, subject selection, evaluation
# ---------------------------------------------------------------------------------------------

DEFAULT_EXPRESSIONS: tuple[str, ...] = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                        "contempt")


def _expression_columns(df, expressions) -> list[str]:
    if expressions is None:
        expressions = (df.attrs.get("libreface") or {}).get("expressions") or DEFAULT_EXPRESSIONS
    return [c for c in expressions if c in df.columns]


def summarize(df, expressions: Sequence[str] | None = None) -> dict:
    """Per-recording summary of native rows that carry `person_id`, ready for `json.dump`.

    Args:
        df: native rows (`libreface.analyze(...)` or `pd.read_csv` of a native CSV): `frame`, `face_id`,
            `person_id`, `timestamp` (seconds), `success` and the expression probability columns.
        expressions: expression column names; default `df.attrs["libreface"]["expressions"]`, else the eight
            classes of the model contract that are present.

    Returns:
        {"frames": analysed frames, "frames_with_faces", "duration_s", "main_person": 0 or -1,
         "persons": [{"person_id", "main", "frames", "rows", "screen_time_s", "first_timestamp_s",
                      "last_timestamp_s", "mean_expression": {class: mean probability over analysed rows},
                      "dominant_expression"}],
         "unassigned": {"frames", "rows"} for face rows with person_id -1 (flagged faces)}.
        Screen time sums, over the frames where the person appears, the time to the next analysed frame (the
        median step for the last frame), so it is right with `--every` / `--fps` subsampling too.
    """
    import pandas as pd

    for col in ("frame", "face_id", "person_id", "timestamp"):
        if col not in df.columns:
            raise ValueError(f"summarize needs native rows with a {col!r} column; got columns {list(df.columns)[:8]}…")
    exprs = _expression_columns(df, expressions)
    frames = df.groupby("frame", sort=True)["timestamp"].first()
    ts = frames.to_numpy(np.float64)
    steps = np.diff(ts)
    dur = pd.Series(np.append(steps, np.median(steps) if len(steps) else 0.0), index=frames.index)
    face_rows = df[df["face_id"] >= 0]
    pid = pd.to_numeric(face_rows["person_id"], errors="coerce").fillna(-1).astype(np.int64)
    persons = []
    for p in sorted(set(pid.tolist()) - {-1}):
        rows = face_rows[pid == p]
        fr = np.unique(rows["frame"].to_numpy())
        ok = rows[rows["success"] == 1] if "success" in rows.columns else rows
        means = {c: (None if ok[c].isna().all() else round(float(ok[c].mean()), 4)) for c in exprs}
        known = {c: v for c, v in means.items() if v is not None}
        persons.append({
            "person_id": int(p), "main": int(p) == 0, "frames": int(len(fr)), "rows": int(len(rows)),
            "screen_time_s": round(float(dur.loc[fr].sum()), 3),
            "first_timestamp_s": round(float(rows["timestamp"].min()), 3),
            "last_timestamp_s": round(float(rows["timestamp"].max()), 3),
            "mean_expression": means,
            "dominant_expression": max(known, key=known.get) if known else None,
        })
    unassigned = face_rows[pid == -1]
    return {
        "frames": int(len(frames)),
        "frames_with_faces": int(face_rows["frame"].nunique()),
        "duration_s": round(float(dur.sum()), 3),
        "main_person": 0 if any(p["person_id"] == 0 for p in persons) else -1,
        "persons": persons,
        "unassigned": {"frames": int(unassigned["frame"].nunique()), "rows": int(len(unassigned))},
    }


def select_subject(df, subject: str | int = "main"):
    """Keep one person's rows.

    Args:
        df: native rows with `person_id`.
        subject: "all" (every row, unchanged), "main" (person 0, the person with the most frames; an empty frame
            when nobody was identified), or a person_id (int, or a digit string as the CLI passes it).

    Raises:
        ValueError: an unknown subject value, or a person_id that is not in `df` (the message lists those that are).
    """
    if subject == "all":
        return df
    if subject == "main":
        target = 0
    else:
        try:
            target = int(subject)
        except (TypeError, ValueError):
            raise ValueError(f"subject must be 'main', 'all' or a person_id (0, 1, ...), got {subject!r}") from None
    pid = df["person_id"].astype("Int64")
    if subject != "main" and not (pid == target).any():
        known = sorted(int(p) for p in pid.dropna().unique() if p >= 0)
        persons = ", ".join(map(str, known)) or "none"
        raise ValueError(f"person_id {target} is not in this recording; persons: {persons}")
    return df[(pid == target).fillna(False).to_numpy()]


@dataclass(frozen=True)
class IdentityScore:
    """MOT-style identity figures of predicted person ids against true identities.

    Attributes:
        rows: face rows scored. id_switches: over each true identity's rows in frame order, times the predicted
            person changes between two consecutive rows that both have a person (flagged rows are skipped).
        fragmentations: times a true identity's run of its main predicted person is interrupted (by another person
            or by -1) and resumed later.
        extra_persons: sum over true identities of (distinct predicted persons - 1).
        flagged_rows: rows predicted -1. id_accuracy: share of rows whose prediction is the person matched one-to-one
            (Hungarian, on row counts) to their true identity; equals IDF1 here, as every true row has one
            prediction.
    """

    rows: int
    id_switches: int
    fragmentations: int
    extra_persons: int
    flagged_rows: int
    id_accuracy: float


def score_identities(frames: Sequence[int], truth: Sequence, predicted: Sequence[int]) -> IdentityScore:
    """Count ID switches and fragmentations (MOT-style) of `predicted` person ids against `truth` labels.

    Args:
        frames: (N,) frame index of each face row. truth: (N,) true identity labels (any hashable).
        predicted: (N,) predicted person ids, -1 when flagged.
    """
    from scipy.optimize import linear_sum_assignment

    frames = np.asarray(frames)
    predicted = np.asarray(predicted, np.int64)
    truth = np.asarray(truth, dtype=object)
    switches = frags = extra = 0
    gts = sorted(set(truth.tolist()), key=str)
    for g in gts:
        idx = np.flatnonzero(truth == g)
        seq = predicted[idx[np.argsort(frames[idx], kind="stable")]]
        named = seq[seq >= 0]
        switches += int(np.count_nonzero(named[1:] != named[:-1]))
        if len(named):
            main = Counter(named.tolist()).most_common(1)[0][0]
            on = seq == main
            runs = int(np.count_nonzero(on[1:] & ~on[:-1])) + int(on[0])
            frags += max(0, runs - 1)
            extra += len(set(named.tolist())) - 1
    preds = sorted(set(predicted.tolist()) - {-1})
    counts = np.zeros((len(gts), max(1, len(preds))))
    for i, g in enumerate(gts):
        for j, p in enumerate(preds):
            counts[i, j] = np.count_nonzero((truth == g) & (predicted == p))
    r, c = linear_sum_assignment(-counts)
    acc = float(counts[r, c].sum() / len(predicted)) if len(predicted) else float("nan")
    return IdentityScore(int(len(predicted)), switches, frags, extra, int(np.count_nonzero(predicted < 0)), acc)
