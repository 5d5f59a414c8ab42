"""Face front-end: MediaPipe Tasks FaceLandmarker (478 landmarks, 52 blendshapes, head pose).

Three MediaPipe tasks share the one vendored `face_landmarker.task` bundle, loaded from bytes:

* the FaceLandmarker on the whole frame (VIDEO mode with tracking for videos, IMAGE mode for stills);
* the bundle's own short-range FaceDetector, which gives each face its confidence and scans
  overlapping tiles of the frame for faces too small for the full-frame pass;
* a second FaceLandmarker in IMAGE mode that re-runs on an upscaled region around every small
  face (found by the tile scan or tracked from the previous frame).

The short-range detector sees the frame at 128x128, so faces below roughly a tenth of the frame
side are missed by the first pass; the tile scan and the region pass recover them
(see `bench/small_faces.py` for the measured recall).
"""

from __future__ import annotations

import io
import os
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelError
from .geometry import reframe_transform
from .imaging import resize
from .quiet import NativeQuiet, quiet_native_logs  # noqa: F401 - quiet_native_logs: re-exported for the GUI

N_LANDMARKS = 478
FULL_FRAME_MIN_FRACTION = 0.22
"""Face side, as a fraction of the frame's long side, from which the full-frame detector finds faces reliably."""
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeLookDownLeft",
    "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft",
    "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft",
    "jawOpen", "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft",
    "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
"""The 52 ARKit-style blendshape names, in MediaPipe's output order."""

TRACKED_CONFIDENCE = 0.5
"""Confidence reported for a face the landmarker tracks but the detector does not see this frame:
the landmarker's own presence threshold, so a lower bound."""


@dataclass(frozen=True)
class FaceLandmarks:
    """One face found in one frame.

    Attributes:
        landmarks_px: (478, 3) float32; x, y in pixels of the frame, z in the same pixel scale
            (relative depth, smaller is closer to the camera).
        blendshapes: (52,) float32 scores in 0..1, in `BLENDSHAPE_NAMES` order.
        pose_deg: (pitch, yaw, roll) in degrees. pitch > 0: head tilted down (chin toward chest);
            yaw > 0: the subject turns toward the image's left; roll > 0: head tilted so that
            the subject's left eye (image right) is lower... see `pose_from_matrix`.
        box_px: (x0, y0, x1, y1) landmark bounding box in frame pixels.
        confidence: 0..1, the face detector's score, or `TRACKED_CONFIDENCE` when only tracked.
        small: True when the face came from the small-face region pass.
        transform: (4, 4) float64 MediaPipe facial transformation matrix (canonical face, cm -> camera space in
            cm, OpenGL axes: x right, y up, z toward the viewer), in the whole frame's assumed 63° camera (region
            pass matrices are re-expressed with `geometry.reframe_transform`); None when MediaPipe gave none.
    """

    landmarks_px: np.ndarray
    blendshapes: np.ndarray
    pose_deg: tuple[float, float, float]
    box_px: tuple[float, float, float, float]
    confidence: float
    small: bool = False
    transform: np.ndarray | None = None

    @property
    def size_px(self) -> float:
        """The larger side of the landmark box, in pixels."""
        x0, y0, x1, y1 = self.box_px
        return float(max(x1 - x0, y1 - y0))


def default_model_path() -> Path:
    """The vendored `face_landmarker.task` (in `weights/`, checked against the manifest)."""
    from .weights import weights_path

    return weights_path("face_landmarker.task")


def pose_from_matrix(matrix: np.ndarray) -> tuple[float, float, float]:
    """Head pose (pitch, yaw, roll) in degrees from MediaPipe's 4x4 facial transformation matrix.

    The matrix maps the canonical face (x right, y up, z toward the camera) into camera space.
    Angles are the x-y-z Euler decomposition R = Rz(roll) Ry(yaw) Rx(pitch); all are 0 for a
    face looking straight into the camera.
    """
    r = np.asarray(matrix, np.float64)[:3, :3]
    r = r / np.linalg.norm(r, axis=0, keepdims=True)  # drop any scale
    pitch = math.degrees(math.atan2(r[2, 1], r[2, 2]))
    yaw = math.degrees(math.atan2(-r[2, 0], math.hypot(r[2, 1], r[2, 2])))
    roll = math.degrees(math.atan2(r[1, 0], r[0, 0]))
    return (pitch, yaw, roll)


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


class _NoDrawing:
    """Import hook that gives MediaPipe's drawing modules as empty modules (see `_vision`)."""

    NAMES = ("mediapipe.tasks.python.vision.drawing_utils", "mediapipe.tasks.python.vision.drawing_styles")

    def find_spec(self, fullname, path, target=None):
        import importlib.util

        return importlib.util.spec_from_loader(fullname, self) if fullname in self.NAMES else None

    def create_module(self, spec):
        return None

    def exec_module(self, module) -> None:
        module.__doc__ = "placeholder: libreface does not draw with MediaPipe"


def _vision():
    """`mediapipe.tasks.python.vision`, without its drawing utilities.

    The package's `__init__` imports `drawing_utils` and `drawing_styles`, which import matplotlib:
    0.1 s per start, and on a fresh account a font cache written to ~/.cache. libreface draws nothing
    with them, so empty modules stand in for them unless the host program imported them already.
    """
    import sys

    if "mediapipe.tasks.python.vision" not in sys.modules and not any(isinstance(f, _NoDrawing) for f in sys.meta_path):
        sys.meta_path.insert(0, _NoDrawing())
    from mediapipe.tasks.python import vision

    return vision


def _mp_image(rgb: np.ndarray):
    _vision()
    import mediapipe as mp

    return mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))


def _faces_from_result(result, width: int, height: int, offset=(0.0, 0.0), scale=1.0, small=False,
                       frame_wh: tuple[int, int] | None = None) -> list[FaceLandmarks]:
    """Faces of one MediaPipe result on an image `width` x `height`; a crop of the frame when `frame_wh` is
    given (`offset`: its top-left in the frame, `scale`: crop pixels per frame pixel)."""
    faces = []
    for i, lms in enumerate(result.face_landmarks):
        arr = np.array([(p.x, p.y, p.z) for p in lms], np.float32)
        arr[:, 0] *= width
        arr[:, 1] *= height
        arr[:, 2] *= width
        arr = arr / scale
        arr[:, 0] += offset[0]
        arr[:, 1] += offset[1]
        bs = np.zeros(len(BLENDSHAPE_NAMES), np.float32)
        if result.face_blendshapes:
            for c in result.face_blendshapes[i]:
                bs[c.index] = c.score
        pose = (float("nan"),) * 3
        transform = None
        if result.facial_transformation_matrixes:
            transform = np.array(result.facial_transformation_matrixes[i], np.float64)
            pose = pose_from_matrix(transform)
            if frame_wh is not None:
                transform = reframe_transform(transform, (width, height), offset, scale, frame_wh)
        box = (float(arr[:, 0].min()), float(arr[:, 1].min()), float(arr[:, 0].max()), float(arr[:, 1].max()))
        faces.append(FaceLandmarks(arr, bs, pose, box, TRACKED_CONFIDENCE, small, transform))
    return faces


@dataclass
class _SmallTrack:
    box_px: tuple[float, float, float, float]
    score: float


@dataclass
class FrontEndOptions:
    """Options of `FaceFrontEnd`.

    Attributes:
        max_faces: most faces reported per frame.
        video: VIDEO mode (tracking; timestamps must increase) or IMAGE mode.
        min_confidence: detector / landmarker presence threshold, 0..1.
        small_faces: run the tile scan and region pass for faces the full-frame pass misses.
        small_face_px: faces whose landmark box is below this side (pixels) use the region pass.
        scan_every: frames between two tile scans while fewer than `max_faces` faces are found.
        region_px: side of the upscaled region given to the second landmarker.
    """

    max_faces: int = 4
    video: bool = True
    min_confidence: float = 0.5
    small_faces: bool = True
    small_face_px: int = 110
    scan_every: int = 15
    region_px: int = 256
    model_path: Path | None = None


@dataclass
class FaceFrontEnd:
    """MediaPipe face front-end; a context manager that closes its tasks.

    >>> with FaceFrontEnd(FrontEndOptions(video=False)) as fe:
    ...     faces = fe.detect(rgb)            # list[FaceLandmarks], [] when no face
    """

    options: FrontEndOptions = field(default_factory=FrontEndOptions)

    def __post_init__(self) -> None:
        self._quiet = NativeQuiet()  # MediaPipe / LiteRT log to fd 2 from here until close(); see libreface.quiet
        try:
            self._create()
        except BaseException:
            self._quiet.release()
            raise

    def _create(self) -> None:
        vision = _vision()
        from mediapipe.tasks.python import BaseOptions

        path = self.options.model_path or default_model_path()
        bundle = Path(path).read_bytes()
        try:
            detector_bytes = zipfile.ZipFile(io.BytesIO(bundle)).read("face_detector.tflite")
        except (zipfile.BadZipFile, KeyError) as e:
            raise ModelError(f"{path}: not a MediaPipe face_landmarker.task bundle ({e})") from None
        o = self.options
        mode = vision.RunningMode.VIDEO if o.video else vision.RunningMode.IMAGE
        common = dict(
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
            min_face_detection_confidence=o.min_confidence,
            min_face_presence_confidence=o.min_confidence,
            min_tracking_confidence=o.min_confidence,
        )
        self._landmarker = vision.FaceLandmarker.create_from_options(
            vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_buffer=bundle), running_mode=mode, num_faces=o.max_faces, **common
            )
        )
        self._region = vision.FaceLandmarker.create_from_options(
            vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_buffer=bundle), running_mode=vision.RunningMode.IMAGE, num_faces=1, **common
            )
        )
        self._detector = vision.FaceDetector.create_from_options(
            vision.FaceDetectorOptions(
                base_options=BaseOptions(model_asset_buffer=detector_bytes), min_detection_confidence=o.min_confidence
            )
        )
        self._last_ts_ms = -1
        self._n = 0
        self._tracks: list[_SmallTrack] = []
        self._scores: list[tuple[tuple[float, float, float, float], float]] = []

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        try:
            for task in (self._landmarker, self._region, self._detector):
                task.close()
        finally:
            self._quiet.release()

    def __enter__(self) -> "FaceFrontEnd":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- detection -------------------------------------------------------------------------
    def _detect_boxes(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        res = self._detector.detect(_mp_image(rgb))
        out = []
        for d in res.detections:
            b = d.bounding_box
            out.append(((b.origin_x, b.origin_y, b.origin_x + b.width, b.origin_y + b.height), d.categories[0].score))
        return out

    def _tile_scan(self, rgb: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        """Detector boxes over overlapping tiles; each tile is a third of the frame's short side
        wide (the detector then sees a 60 px face in 1080p as a fifth of its input)."""
        h, w = rgb.shape[:2]
        tile = max(160, min(h, w) // 3)
        step = tile * 2 // 3
        found = []
        for y0 in range(0, max(1, h - tile + step), step):
            for x0 in range(0, max(1, w - tile + step), step):
                y0c, x0c = min(y0, max(0, h - tile)), min(x0, max(0, w - tile))
                crop = rgb[y0c : y0c + tile, x0c : x0c + tile]
                crop = resize(crop, (256, 256), smooth=True)
                s = 256 / tile
                for (bx0, by0, bx1, by1), score in self._detect_boxes(crop):
                    found.append(((x0c + bx0 / s, y0c + by0 / s, x0c + bx1 / s, y0c + by1 / s), score))
        return _nms(found, 0.3)

    def _region_landmarks(self, rgb: np.ndarray, box: tuple[float, float, float, float]) -> FaceLandmarks | None:
        h, w = rgb.shape[:2]
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        side = max(box[2] - box[0], box[3] - box[1]) * 2.2
        x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        side_i = int(round(side))
        if side_i < 8:
            return None
        # pad outside the frame so the face stays centred
        pad = max(0, -x0, -y0, x0 + side_i - w, y0 + side_i - h)
        src = rgb if pad == 0 else np.pad(rgb, ((pad, pad), (pad, pad), (0, 0)))
        crop = src[y0 + pad : y0 + pad + side_i, x0 + pad : x0 + pad + side_i]
        s = self.options.region_px / side_i
        crop = resize(crop, (self.options.region_px,) * 2)
        res = self._region.detect(_mp_image(crop))
        faces = _faces_from_result(res, self.options.region_px, self.options.region_px, offset=(x0, y0), scale=s, small=True,
                                   frame_wh=(w, h))
        return faces[0] if faces else None

    def detect(self, rgb: np.ndarray, timestamp_ms: int | None = None) -> list[FaceLandmarks]:
        """Find faces in one frame.

        Args:
            rgb: (H, W, 3) uint8 RGB frame.
            timestamp_ms: frame time in milliseconds; required in VIDEO mode (made strictly
                increasing here, as MediaPipe requires).

        Returns:
            Faces sorted left to right, at most `max_faces`; [] when there is none.
        """
        o = self.options
        h, w = rgb.shape[:2]
        image = _mp_image(rgb)
        if o.video:
            ts = int(timestamp_ms if timestamp_ms is not None else self._last_ts_ms + 33)
            ts = max(ts, self._last_ts_ms + 1)
            self._last_ts_ms = ts
            result = self._landmarker.detect_for_video(image, ts)
        else:
            result = self._landmarker.detect(image)
        faces = _faces_from_result(result, w, h)
        if o.small_faces:
            big = [f for f in faces if f.size_px >= o.small_face_px]
            small_seeds = [_SmallTrack(f.box_px, TRACKED_CONFIDENCE) for f in faces if f.size_px < o.small_face_px]
            seeds = self._tracks + small_seeds
            if len(faces) < o.max_faces and (self._n % o.scan_every == 0 or not o.video):
                for box, score in self._tile_scan(rgb):
                    seeds.append(_SmallTrack(box, score))
            # The full-frame detector sees the frame shrunk to 128 px: it finds faces reliably from about a fifth of
            # the long side (bench/small_faces.py: 1080p, 300 px faces 50 %, 400 px 100 %). Below that, its silence
            # says nothing, so every seed up to there gets the region pass.
            trust_px = max(o.small_face_px * 1.5, FULL_FRAME_MIN_FRACTION * max(h, w))
            refined: list[FaceLandmarks] = []
            for seed in _nms([(t.box_px, t.score) for t in seeds], 0.3):
                if len(big) + len(refined) >= o.max_faces:  # the cap bounds the cost, not the crowd
                    break
                if any(box_iou(seed[0], f.box_px) > 0.3 for f in big + refined):
                    continue
                if max(seed[0][2] - seed[0][0], seed[0][3] - seed[0][1]) >= trust_px:
                    continue  # a face big enough for the full-frame landmarker, which rejected it: trust it
                face = self._region_landmarks(rgb, seed[0])
                if face is not None and not any(box_iou(face.box_px, f.box_px) > 0.3 for f in big + refined):
                    refined.append(face)
            self._tracks = [_SmallTrack(f.box_px, TRACKED_CONFIDENCE) for f in refined]
            faces = big + refined
        self._n += 1

        scored = [_with_confidence(f, c) for f, c in zip(faces, self._confidences(rgb, faces))]
        scored.sort(key=lambda f: -f.confidence)  # keep the most confident faces...
        kept = scored[: o.max_faces]
        kept.sort(key=lambda f: f.box_px[0])  # ...reported left to right
        return kept

    def _confidences(self, rgb: np.ndarray, faces: list[FaceLandmarks]) -> list[float]:
        """Detector score of each face. The detector runs on the full frame only when a face matches no
        cached detection, or every `scan_every` frames; in between, cached scores follow the faces."""
        o = self.options

        def match(f: FaceLandmarks) -> int | None:
            ious = [box_iou(box, f.box_px) for box, _ in self._scores]
            return int(np.argmax(ious)) if ious and max(ious) > 0.2 else None

        stale = not o.video or (self._n - 1) % o.scan_every == 0
        if faces and (stale or any(match(f) is None for f in faces)):
            self._scores = self._detect_boxes(rgb)
        out = []
        for f in faces:
            k = match(f)
            if k is None and f.small:
                score = max((t.score for t in self._tracks if box_iou(t.box_px, f.box_px) > 0.2), default=TRACKED_CONFIDENCE)
            else:
                score = TRACKED_CONFIDENCE if k is None else self._scores[k][1]
            if k is not None:
                self._scores[k] = (f.box_px, self._scores[k][1])  # follow the face
            else:
                self._scores.append((f.box_px, score))
            out.append(float(score))
        return out


def _with_confidence(face: FaceLandmarks, confidence: float) -> FaceLandmarks:
    return FaceLandmarks(face.landmarks_px, face.blendshapes, face.pose_deg, face.box_px, float(confidence), face.small,
                         face.transform)


def _nms(items: list[tuple[tuple[float, float, float, float], float]], iou: float):
    kept: list[tuple[tuple[float, float, float, float], float]] = []
    for box, score in sorted(items, key=lambda t: -t[1]):
        if all(box_iou(box, k[0]) <= iou for k in kept):
            kept.append((box, score))
    return kept
