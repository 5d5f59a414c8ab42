"""Typed results of the pipeline: one `FrameResult` per decoded frame, one `FaceResult` per face.

Label names (AU lists, expression classes) are not constants of this module: they come from the
model's card and travel with the results as `OutputLabels`, so a writer never guesses them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class OutputLabels:
    """Names of the model outputs, taken from the model card.

    Attributes:
        au_intensity: AU names of `FaceResult.au_intensity`, e.g. ("AU01", "AU02", ...); values 0..5.
        au_occurrence: AU names of `FaceResult.au_occurrence`; values are probabilities 0..1.
        occurrence_threshold: probability at or above which an AU is written as present (1).
        expressions: class names of `FaceResult.expression`, e.g. ("neutral", "happiness", ...).
        feature_dim: length of `FaceResult.features`.
        model: registry name of the model that produced them.
        mirror: whether each value is the mean over the face and its mirror image (`AnalyzerOptions.mirror`).
    """

    au_intensity: tuple[str, ...]
    au_occurrence: tuple[str, ...]
    occurrence_threshold: float
    expressions: tuple[str, ...]
    feature_dim: int
    model: str = ""
    mirror: bool = False


@dataclass(frozen=True)
class FaceResult:
    """One face in one frame.

    Attributes:
        face_id: id of the face's track, stable within a shot (0, 1, ... in order of appearance).
        box_px: (x0, y0, x1, y1) landmark bounding box in frame pixels.
        confidence: face detector score 0..1.
        landmarks_px: (478, 3) float32; x, y in frame pixels, z relative depth in the same scale.
        blendshapes: (52,) float32 MediaPipe blendshape scores 0..1.
        pose_deg: (pitch, yaw, roll) in degrees, see `libreface.landmarks.pose_from_matrix`.
        au_intensity: (A,) float32 AU intensities 0..5, in `OutputLabels.au_intensity` order.
        au_occurrence: (K,) float32 AU occurrence probabilities 0..1, in `OutputLabels.au_occurrence` order.
        expression: (8,) float32 expression probabilities summing to 1, in `OutputLabels.expressions` order.
        features: (D,) float32 student embedding.
        success: False when the face was found but could not be analysed (e.g. alignment failed);
            the model outputs are then NaN.
        person_id: identity across the recording (see `libreface.identity`), -1 when not assigned.
        gaze: (2, 3) float64 unit gaze vectors of eye 0 (leftmost in the image) and eye 1, camera axes x right,
            y down, z forward (toward the camera: z < 0); NaN when unknown. See `libreface.gaze`.
        gaze_angle: (gaze_angle_x, gaze_angle_y) in radians, OpenFace's definition (see `libreface.gaze`).
        translation_mm: (Tx, Ty, Tz) head position in mm, same camera axes (Tz = distance); see `libreface.geometry`.
        landmarks_3d_mm: (68, 3) float64 iBUG-68 points X, Y, Z in mm in the same camera axes, or None.
    """

    face_id: int
    box_px: tuple[float, float, float, float]
    confidence: float
    landmarks_px: np.ndarray
    blendshapes: np.ndarray
    pose_deg: tuple[float, float, float]
    au_intensity: np.ndarray
    au_occurrence: np.ndarray
    expression: np.ndarray
    features: np.ndarray
    success: bool = True
    person_id: int = -1
    gaze: np.ndarray = field(default_factory=lambda: np.full((2, 3), np.nan))
    gaze_angle: tuple[float, float] = (float("nan"), float("nan"))
    translation_mm: tuple[float, float, float] = (float("nan"),) * 3
    landmarks_3d_mm: np.ndarray | None = None


@dataclass(frozen=True)
class FrameResult:
    """Everything found in one decoded frame.

    Attributes:
        frame: 0-based index in decode order (counting every decoded frame, also those that
            `every` / `fps` subsampling skips; skipped frames produce no result).
        timestamp_s: presentation time in seconds from the container (variable frame rate safe).
        faces: faces found, [] when there is none (the frame still becomes a `success=0` row).
    """

    frame: int
    timestamp_s: float
    faces: list[FaceResult] = field(default_factory=list)
