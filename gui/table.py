"""ResultTable: the per-frame, per-face results the widgets display (overlays, bars, timelines).

A table is filled either as an analysis runs (`append(FrameResult)`, one call per analysed frame) or
at once from a CSV that `libreface` wrote (`ResultTable.from_csv`, native or OpenFace layout). The
column names come from `libreface.outputs` and the label names from the model's `OutputLabels`:
this module never lists AUs or expression classes itself.

Rows are faces in frame order; a frame without a face keeps one row with `face_id == -1`, exactly
like the CSV. Values are kept in growable NumPy arrays, so the timelines can take whole columns
without copying row objects.
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from libreface.outputs import (
    BOX_COLUMNS,
    LANDMARK_COLUMNS,
    OPENFACE_LANDMARK_COLUMNS,
    au_intensity_columns,
    au_probability_columns,
    expression_columns,
    openface_au_intensity_columns,
    openface_au_occurrence_columns,
)
from libreface.results import FrameResult, OutputLabels

KINDS: tuple[str, ...] = ("au", "expression")
"""Series kinds of `ResultTable.series`: AU intensities (0..5) and expression probabilities (0..1)."""


@dataclass(frozen=True)
class FaceView:
    """One face of one analysed frame, as displayed.

    Attributes:
        frame: 0-based decode index of the analysed frame.
        face_id: track id (as in the CSV).
        success: False when the face was found but not analysed (outputs are NaN).
        box_px: (x0, y0, x1, y1) in frame pixels; NaN when the source had no box (OpenFace CSV
            without landmarks).
        au_intensity: (A,) float32 intensities 0..5 in `labels.au_intensity` order.
        au_probability: (K,) float32 occurrence probabilities 0..1 in `labels.au_occurrence` order
            (0/1 presence for an OpenFace CSV, which has no probabilities).
        expression: (E,) float32 probabilities in `labels.expressions` order (NaN for OpenFace CSVs).
        landmarks_px: (L, 2) float32 (x, y) in frame pixels, or None when not available.
    """

    frame: int
    face_id: int
    success: bool
    box_px: tuple[float, float, float, float]
    au_intensity: np.ndarray
    au_probability: np.ndarray
    expression: np.ndarray
    landmarks_px: np.ndarray | None


class _Column:
    """A growable array of rows (amortised O(1) append), `view()` is the filled part."""

    def __init__(self, tail: tuple[int, ...], dtype, fill) -> None:
        self._fill = fill
        self._a = np.full((256, *tail), fill, dtype)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        m = len(values)
        if self.n + m > len(self._a):
            bigger = np.full((max(2 * len(self._a), self.n + m), *self._a.shape[1:]), self._fill, self._a.dtype)
            bigger[: self.n] = self._a[: self.n]
            self._a = bigger
        self._a[self.n: self.n + m] = values
        self.n += m

    def view(self) -> np.ndarray:
        return self._a[: self.n]

    def keep_last(self, k: int) -> None:
        if k < self.n:
            self._a[:k] = self._a[self.n - k: self.n].copy()
            self.n = k


class ResultTable:
    """Per-frame, per-face results for display.

    Args:
        labels: names of the model outputs (`Analyzer.labels`).
        keep_landmarks_frames: streamed tables keep the landmarks of this many recent frames only
            (they are drawn for the displayed frame, not plotted); 0 keeps none.
        max_rows: keep at most about this many rows (oldest dropped), for endless live sessions;
            None keeps everything.
    """

    def __init__(self, labels: OutputLabels, *, keep_landmarks_frames: int = 256, max_rows: int | None = None) -> None:
        self.labels = labels
        self.source_format = "results"  # "results", "native" or "openface"
        self.max_rows = max_rows
        self._keep_lm = keep_landmarks_frames
        self._frame = _Column((), np.int64, -1)
        self._face = _Column((), np.int64, -1)
        self._success = _Column((), np.bool_, False)
        self._box = _Column((4,), np.float32, np.nan)
        self._au = _Column((len(labels.au_intensity),), np.float32, np.nan)
        self._prob = _Column((len(labels.au_occurrence),), np.float32, np.nan)
        self._expr = _Column((len(labels.expressions),), np.float32, np.nan)
        self._frames_u = _Column((), np.int64, -1)  # analysed frames, ascending
        self._first_row = _Column((), np.int64, 0)  # first row of each analysed frame
        self._lm_all: np.ndarray | None = None  # (N, L, 2) for CSV tables with landmark columns
        self._lm_recent: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()  # (frame, face_id) -> (L, 2)
        self.version = 0  # bumped on every change, so views can skip redundant redraws
        self._cache: dict[str, tuple[int, object]] = {}  # name -> (version, value) of derived values

    # -- filling ---------------------------------------------------------------------------------

    def append(self, result: FrameResult) -> None:
        """Add one analysed frame (frames must come in increasing order, as the pipeline yields them)."""
        n_frames = self._frames_u.n
        if n_frames and result.frame <= self._frames_u.view()[-1]:
            raise ValueError(f"frame {result.frame} appended after frame {self._frames_u.view()[-1]}; "
                             "results must come in increasing frame order")
        faces = result.faces
        m = max(1, len(faces))
        self._frames_u.extend(np.array([result.frame]))
        self._first_row.extend(np.array([self._frame.n]))
        self._frame.extend(np.full(m, result.frame))
        if not faces:
            self._face.extend(np.array([-1]))
            self._success.extend(np.array([False]))
            for col in (self._box, self._au, self._prob, self._expr):
                col.extend(np.full((1, *col.view().shape[1:]), np.nan, np.float32))
        else:
            self._face.extend(np.array([f.face_id for f in faces]))
            self._success.extend(np.array([bool(f.success) for f in faces]))
            self._box.extend(np.array([f.box_px for f in faces], np.float32))
            self._au.extend(np.array([f.au_intensity for f in faces], np.float32).reshape(m, -1))
            self._prob.extend(np.array([f.au_occurrence for f in faces], np.float32).reshape(m, -1))
            self._expr.extend(np.array([f.expression for f in faces], np.float32).reshape(m, -1))
            if self._keep_lm:
                for f in faces:
                    self._lm_recent[(result.frame, f.face_id)] = np.asarray(f.landmarks_px, np.float32)[:, :2]
                while len(self._lm_recent) > self._keep_lm * max(1, len(faces)):
                    self._lm_recent.popitem(last=False)
        if self.max_rows is not None and self._frame.n > self.max_rows:
            self._drop_oldest(self.max_rows // 2)
        self.version += 1

    def _drop_oldest(self, keep_rows: int) -> None:
        first = self._first_row.view()
        cut_frame = int(np.searchsorted(first, self._frame.n - keep_rows))  # whole frames only
        cut_frame = min(cut_frame, len(first) - 1)
        cut_row = int(first[cut_frame])
        keep = self._frame.n - cut_row
        for col in (self._frame, self._face, self._success, self._box, self._au, self._prob, self._expr):
            col.keep_last(keep)
        kept_frames = self._frames_u.n - cut_frame
        self._frames_u.keep_last(kept_frames)
        self._first_row.keep_last(kept_frames)
        self._first_row.view()[:] -= cut_row

    @classmethod
    def from_csv(cls, path: str | Path, labels: OutputLabels) -> "ResultTable":
        """Load a CSV written by `libreface` (CLI, API or this app), native or OpenFace layout.

        Raises:
            ValueError: one line naming the file, when it lacks the columns of `labels`' model.
        """
        import pandas as pd

        path = Path(path)
        with open(path, encoding="utf-8") as f:
            header = f.readline()
        openface = header.startswith("frame, ")
        df = pd.read_csv(path, skipinitialspace=openface)
        if openface:
            au_cols = {c[: -len("_r")]: c for c in openface_au_intensity_columns(labels)}
            occ_cols = {c[: -len("_c")]: c for c in openface_au_occurrence_columns(labels)}
            required = ["frame", "face_id", "success", *au_cols.values()]
        else:
            au_cols = dict(zip(labels.au_intensity, au_intensity_columns(labels)))
            occ_cols = dict(zip(labels.au_occurrence, au_probability_columns(labels)))
            required = ["frame", "face_id", "success", *BOX_COLUMNS, *au_cols.values(), *occ_cols.values(),
                        *expression_columns(labels)]
        missing = [c for c in required if c not in df.columns]
        if missing:
            raise ValueError(f"{path}: not a libreface CSV of model {labels.model!r} (missing columns "
                             f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}); open a CSV that "
                             "libreface wrote with this model")
        df = df.sort_values(["frame", "face_id"], kind="stable").reset_index(drop=True)
        t = cls(labels, keep_landmarks_frames=0)
        t.source_format = "openface" if openface else "native"
        n = len(df)
        frame = df["frame"].to_numpy(np.int64) - (1 if openface else 0)
        face = df["face_id"].to_numpy(np.int64)
        success = df["success"].to_numpy(np.int64) == 1

        def matrix(cols: dict[str, str], names: tuple[str, ...]) -> np.ndarray:
            out = np.full((n, len(names)), np.nan, np.float32)
            for j, name in enumerate(names):
                if name in cols:
                    out[:, j] = df[cols[name]].to_numpy(np.float32)
            return out

        au = matrix(au_cols, labels.au_intensity)
        prob = matrix(occ_cols, labels.au_occurrence)
        lm = None
        if openface:
            expr = np.full((n, len(labels.expressions)), np.nan, np.float32)
            if all(c in df.columns for c in OPENFACE_LANDMARK_COLUMNS):
                lm = df[list(OPENFACE_LANDMARK_COLUMNS)].to_numpy(np.float32).reshape(n, 2, -1).transpose(0, 2, 1)
            faceless = ~success & df["confidence"].isna().to_numpy()
            face = np.where(faceless, -1, face)
            box = np.full((n, 4), np.nan, np.float32)
            if lm is not None:
                with warnings.catch_warnings():  # faceless rows have no landmarks: their box stays NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    box = np.concatenate([np.nanmin(lm, axis=1), np.nanmax(lm, axis=1)], axis=1).astype(np.float32)
        else:
            expr = df[expression_columns(labels)].to_numpy(np.float32)
            box = df[list(BOX_COLUMNS)].to_numpy(np.float32)
            lm_xy = LANDMARK_COLUMNS[: 2 * len(LANDMARK_COLUMNS) // 3]  # all x, then all y
            if all(c in df.columns for c in lm_xy):
                lm = df[list(lm_xy)].to_numpy(np.float32).reshape(n, 2, -1).transpose(0, 2, 1)
        t._frame.extend(frame)
        t._face.extend(face)
        t._success.extend(success)
        t._box.extend(box)
        t._au.extend(au)
        t._prob.extend(prob)
        t._expr.extend(expr)
        starts = np.flatnonzero(np.r_[True, frame[1:] != frame[:-1]]) if n else np.zeros(0, np.int64)
        t._frames_u.extend(frame[starts])
        t._first_row.extend(starts)
        t._lm_all = np.ascontiguousarray(lm) if lm is not None else None
        t.version += 1
        return t

    # -- reading ---------------------------------------------------------------------------------

    def __len__(self) -> int:
        """Number of rows (faces, plus one per faceless frame)."""
        return self._frame.n

    @property
    def frames(self) -> np.ndarray:
        """(U,) int64 analysed frame indices, ascending."""
        return self._frames_u.view()

    def _cached(self, name: str, compute):
        hit = self._cache.get(name)
        if hit is None or hit[0] != self.version:
            hit = (self.version, compute())
            self._cache[name] = hit
        return hit[1]

    def face_ids(self) -> list[int]:
        """Track ids present in the table, ascending (faceless rows excluded)."""
        return list(self._cached("face_ids", lambda: [int(i) for i in np.unique(self._face.view()) if i >= 0]))

    def primary_face(self) -> int | None:
        """The face id with the most analysed rows (the main subject), or None without faces."""
        return self._cached("primary_face", self._primary_face)

    def _primary_face(self) -> int | None:
        face = self._face.view()
        ok = face[(face >= 0) & self._success.view()]
        if not len(ok):
            ok = face[face >= 0]
            if not len(ok):
                return None
        ids, counts = np.unique(ok, return_counts=True)
        return int(ids[np.argmax(counts)])

    def stride(self) -> int:
        """Typical step between analysed frames (the `every` of the run), from the data."""
        f = self.frames[-200:]
        if len(f) < 2:
            return 1
        return max(1, int(np.median(np.diff(f))))

    def analysed_frame_at(self, frame: int) -> int | None:
        """The analysed frame whose results stand for `frame`: itself, or the last analysed frame
        before it when `frame` falls between two analysed frames (subsampled runs); else None."""
        frames = self.frames
        i = int(np.searchsorted(frames, frame, side="right")) - 1
        if i < 0:
            return None
        shown = int(frames[i])
        return shown if frame - shown < self.stride() else None

    def faces_at(self, frame: int) -> list[FaceView]:
        """Faces of the analysed frame standing for `frame` (see `analysed_frame_at`), [] if none."""
        shown = self.analysed_frame_at(frame)
        if shown is None:
            return []
        i = int(np.searchsorted(self.frames, shown))
        first = self._first_row.view()
        lo = int(first[i])
        hi = int(first[i + 1]) if i + 1 < len(first) else self._frame.n
        out = []
        for r in range(lo, hi):
            fid = int(self._face.view()[r])
            if fid < 0:
                continue
            out.append(FaceView(
                frame=shown, face_id=fid, success=bool(self._success.view()[r]),
                box_px=tuple(float(v) for v in self._box.view()[r]),
                au_intensity=self._au.view()[r].copy(), au_probability=self._prob.view()[r].copy(),
                expression=self._expr.view()[r].copy(), landmarks_px=self._landmarks(r, shown, fid),
            ))
        return out

    def _landmarks(self, row: int, frame: int, face_id: int) -> np.ndarray | None:
        if self._lm_all is not None:
            lm = self._lm_all[row]
            return None if np.isnan(lm).all() else lm
        return self._lm_recent.get((frame, face_id))

    def series(self, face_id: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
        """One face's values over all analysed frames, for the timelines.

        Args:
            face_id: track id.
            kind: "au" (intensities 0..5, columns in `labels.au_intensity` order) or "expression"
                (probabilities 0..1, columns in `labels.expressions` order).

        Returns:
            x: (U,) float64 analysed frame indices; y: (U, C) float32, NaN where the face is absent
            or was not analysed (so plotted lines break there).
        """
        if kind not in KINDS:
            raise ValueError(f"unknown series kind {kind!r}; choose one of: {', '.join(KINDS)}")
        values = (self._au if kind == "au" else self._expr).view()
        frames = self.frames
        y = np.full((len(frames), values.shape[1]), np.nan, np.float32)
        mask = self._face.view() == face_id
        if mask.any():
            y[np.searchsorted(frames, self._frame.view()[mask])] = values[mask]
        return frames.astype(np.float64), y
