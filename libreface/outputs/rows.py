"""Row building: the values of one analysed frame, in the order of an output layout's columns."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from ..landmarks import BLENDSHAPE_NAMES, N_LANDMARKS
from ..results import FaceResult, FrameResult, OutputLabels
from .schema import IBUG68_FROM_MEDIAPIPE, Layout, layout_for

_NAN = float("nan")


def frame_rows(
    result: FrameResult,
    labels: OutputLabels,
    *,
    landmarks: bool = False,
    blendshapes: bool = False,
    fmt: str = "native",
) -> list[list]:
    """The rows of one analysed frame, in the order of `columns(labels, fmt=...)`.

    Args:
        result: one frame's results.
        labels: names of the model outputs (from the model card).
        landmarks: add the landmark columns (478x3 native, 68x2 OpenFace).
        blendshapes: add the 52 blendshape columns (native only).
        fmt: "native" or "openface".

    Returns:
        One row per face, or one `success=0` row when `result.faces` is empty. Values are Python
        ints, floats and strs; a missing value is float NaN (written as an empty field).
    """
    return layout_rows(result, labels, layout_for(labels, fmt, landmarks, blendshapes))


def layout_rows(result: FrameResult, labels: OutputLabels, layout: Layout) -> list[list]:
    """`frame_rows` for a layout already looked up (the sinks and `to_dataframe` call this once per frame)."""
    n = len(layout.names)
    ts = float(result.timestamp_s)
    if not result.faces:
        if layout.fmt == "native":
            head = [int(result.frame), -1, _NAN, ts, _NAN, 0]
        else:
            head = [int(result.frame) + 1, 0, ts, _NAN, 0]
        return [head + [_NAN] * (n - len(head))]
    build = _native_row if layout.fmt == "native" else _openface_row
    rows = [build(result, face, labels, layout) for face in result.faces]
    for row in rows:
        if len(row) != n:  # a bug here would shift every column after it
            raise AssertionError(f"row has {len(row)} values for {n} columns")
    return rows


def _vec(values, n: int, what: str, result: FrameResult, face: FaceResult) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size != n:
        raise ValueError(f"frame {result.frame}, face {face.face_id}: {what} has {arr.size} values, expected {n}")
    return arr


def _outputs(result: FrameResult, face: FaceResult, labels: OutputLabels):
    """(intensity, occurrence probability, expression) as float64 arrays, all NaN when not analysed."""
    na, no, ne = len(labels.au_intensity), len(labels.au_occurrence), len(labels.expressions)
    if not face.success:
        return np.full(na, np.nan), np.full(no, np.nan), np.full(ne, np.nan)
    return (
        _vec(face.au_intensity, na, "au_intensity", result, face),
        _vec(face.au_occurrence, no, "au_occurrence", result, face),
        _vec(face.expression, ne, "expression", result, face),
    )


def _presence(probs: Iterable[float], threshold: float) -> list:
    return [_NAN if math.isnan(p) else int(p >= threshold) for p in probs]


def _landmarks(result: FrameResult, face: FaceResult) -> np.ndarray:
    lm = np.asarray(face.landmarks_px, dtype=np.float64)
    if lm.ndim != 2 or lm.shape[0] != N_LANDMARKS or lm.shape[1] < 2:
        raise ValueError(f"frame {result.frame}, face {face.face_id}: landmarks_px has shape {lm.shape}, "
                         f"expected ({N_LANDMARKS}, 3)")
    return lm


def _geometry(result: FrameResult, face: FaceResult) -> list:
    """Tx, Ty, Tz (mm), then gaze_0_x .. gaze_1_z, as floats."""
    return (_vec(face.translation_mm, 3, "translation_mm", result, face).tolist()
            + _vec(face.gaze, 6, "gaze", result, face).tolist())


def _native_row(result: FrameResult, face: FaceResult, labels: OutputLabels, layout: Layout) -> list:
    intensity, occurrence, expression = _outputs(result, face, labels)
    analysed = expression.size > 0 and bool(np.isfinite(expression).all())
    label = labels.expressions[int(np.argmax(expression))] if analysed else _NAN
    row = [int(result.frame), int(face.face_id), int(face.person_id), float(result.timestamp_s),
           float(face.confidence), int(bool(face.success))]
    row += [float(v) for v in face.box_px]
    row += [float(v) for v in face.pose_deg]
    row += _geometry(result, face)
    row += [math.degrees(float(v)) for v in face.gaze_angle]
    row += intensity.tolist()
    row += _presence(occurrence.tolist(), labels.occurrence_threshold)
    row += occurrence.tolist()
    row += expression.tolist()
    row.append(label)
    if layout.landmarks:
        lm = _landmarks(result, face)
        z = lm[:, 2] if lm.shape[1] > 2 else np.full(N_LANDMARKS, np.nan)
        row += lm[:, 0].tolist() + lm[:, 1].tolist() + z.tolist()
    if layout.blendshapes:
        row += _vec(face.blendshapes, len(BLENDSHAPE_NAMES), "blendshapes", result, face).tolist()
    return row


def _openface_row(result: FrameResult, face: FaceResult, labels: OutputLabels, layout: Layout) -> list:
    intensity, occurrence, _ = _outputs(result, face, labels)
    row = [int(result.frame) + 1, int(face.face_id), float(result.timestamp_s), float(face.confidence),
           int(bool(face.success))]
    geo = _geometry(result, face)
    row += geo[3:] + [float(v) for v in face.gaze_angle] + geo[:3]
    row += [math.radians(float(v)) for v in face.pose_deg]
    if layout.landmarks:
        lm68 = _landmarks(result, face)[list(IBUG68_FROM_MEDIAPIPE)]
        row += lm68[:, 0].tolist() + lm68[:, 1].tolist()
        if face.landmarks_3d_mm is None:
            row += [_NAN] * (3 * 68)
        else:
            lm3 = _vec(face.landmarks_3d_mm, 3 * 68, "landmarks_3d_mm", result, face).reshape(68, 3)
            row += lm3[:, 0].tolist() + lm3[:, 1].tolist() + lm3[:, 2].tolist()
    row += [float(intensity[i]) for i in layout.of_r]
    row += _presence([float(occurrence[i]) for i in layout.of_c], labels.occurrence_threshold)
    return row
