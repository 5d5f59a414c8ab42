"""The staged pipeline behind `Analyzer`: decode || landmarks + align || models, with bounded queues.

```
Source --Frame--> [decode thread] --q--> [landmark thread: FaceLandmarker, tracking, align_face]
       --q--> [model thread: ONNX Runtime, faces batched across frames] --q--> caller (in frame order)
```

Each queue holds at most a few dozen items, so memory stays flat however long the recording is.
Every analysed frame comes out as one `FrameResult`, with `faces == []` when there is none. An
exception in any stage stops the others and is re-raised in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from .align import align_face
from .errors import InputError
from .gaze import gaze_angles, iris_gaze
from .geometry import landmarks_3d_mm, translation_mm
from .landmarks import FaceFrontEnd, FaceLandmarks, FrontEndOptions
from .models.registry import DEFAULT_MODEL
from .models.blendshape_aus import BlendshapeAUs
from .models.session import StudentModel
from .outputs.schema import IBUG68_FROM_MEDIAPIPE
from .results import FaceResult, FrameResult, OutputLabels
from .track import IouTracker

_END = object()


@dataclass(frozen=True)
class AnalyzerOptions:
    """Options of `Analyzer`. Defaults suit one face in a webcam-sized video.

    Attributes:
        model: registered student model name (see `libreface.list_models()`).
        max_faces: most faces analysed per frame.
        min_face_confidence: detector / landmarker threshold, 0..1.
        small_faces: second detection pass for faces below about 110 px (see `libreface.landmarks`).
        every: analyse every N-th decoded frame (1 = all).
        fps: analyse at most this many frames per second of video time (None = all); combines with `every`.
        threads: ONNX Runtime intra-op threads; 0 = all cores.
        batch_size: most frames whose faces are batched into one model call.
        queue_size: frames buffered between two stages.
        mirror: also run every face mirrored left-right and average the two views' outputs (twice the model time;
            off by default: no gain for the default model on FER+ validation, `reports/selection`).
        identity: resolve a `person_id` per person across the whole recording (face embeddings clustered at
            the end; needs the `identity` extra). Results are yielded with `person_id=-1`; `analyze` and
            `analyze_to_files` fill it in, and `last_identity` holds the `IdentityResult`.
    """

    model: str = DEFAULT_MODEL
    max_faces: int = 1
    min_face_confidence: float = 0.5
    small_faces: bool = True
    every: int = 1
    fps: float | None = None
    threads: int = 0
    batch_size: int = 16
    queue_size: int = 16
    mirror: bool = False
    identity: bool = False

    def __post_init__(self) -> None:
        if self.every < 1:
            raise ValueError(f"every must be >= 1, got {self.every}")
        if self.fps is not None and self.fps <= 0:
            raise ValueError(f"fps must be > 0, got {self.fps}")
        if self.max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {self.max_faces}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")


@dataclass(frozen=True)
class RunSummary:
    """What `Analyzer.analyze_to_files` did.

    Attributes:
        source, csv: input and output paths.
        frames: analysed frames written by this run (one or more rows each).
        faces: face rows among them.
        seconds: wall time; fps: frames / seconds.
        error: why decoding stopped early (truncated or corrupt input), else None.
        resumed_from: first frame analysed by this run (> 0 after `--resume`).
    """

    source: str
    csv: str
    frames: int
    faces: int
    seconds: float
    fps: float
    error: str | None
    resumed_from: int = 0


@dataclass
class _Pending:
    frame: int
    timestamp_s: float
    faces: list[FaceLandmarks]
    ids: list[int]
    crops: list[np.ndarray | None] = field(default_factory=list)
    geometry: list[dict] = field(default_factory=list)


class Analyzer:
    """Loads the student model once; analyses any number of sources, one after the other.

    >>> with Analyzer(AnalyzerOptions(max_faces=2)) as analyzer:
    ...     for result in analyzer.process("interview.mp4"):   # lazy, constant memory
    ...         print(result.frame, len(result.faces))
    ...     df = analyzer.analyze("clip.mp4")                    # pandas, one row per frame and face
    """

    def __init__(self, options: AnalyzerOptions | None = None, **kwargs) -> None:
        if options is None:
            options = AnalyzerOptions(**kwargs)
        elif kwargs:
            raise TypeError("pass either an AnalyzerOptions or keyword options, not both")
        self.options = options
        self.model = StudentModel.load(options.model, threads=options.threads, mirror=options.mirror)
        c = self.model.card
        self.labels = OutputLabels(c.au_intensity, c.au_occurrence, c.occurrence_threshold, c.expressions, c.feature_dim,
                                   self.model.name, mirror=options.mirror)
        self.blendshape_aus = BlendshapeAUs.from_card(c)  # AUs the card computes from blendshapes (None: none)
        self.last_error: str | None = None
        self.last_info = None
        self.last_identity = None

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        self.model = None  # the ONNX session frees with its last reference

    def __enter__(self) -> "Analyzer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- analysis --------------------------------------------------------------------------------
    def process(self, source, start_frame: int = 0) -> Iterator[FrameResult]:
        """Analyse a source lazily, yielding one `FrameResult` per analysed frame, in order.

        Args:
            source: a path (video, image), a webcam index, or an open `libreface.sources.Source`.
            start_frame: skip decoded frames before this index (used by `--resume`); they are decoded
                but not analysed, so tracking restarts there.

        After the iterator ends, `last_error` holds the reason decoding stopped early (a truncated or
        corrupt file), or None.
        """
        from .sources import Source, open_source

        src = source if isinstance(source, Source) else open_source(source)
        self.last_info = src.info
        self.last_error = None
        stop = threading.Event()
        q_frames: queue.Queue = queue.Queue(self.options.queue_size)
        q_faces: queue.Queue = queue.Queue(self.options.queue_size)
        q_out: queue.Queue = queue.Queue(self.options.queue_size * 2)
        fe_options = FrontEndOptions(
            max_faces=self.options.max_faces,
            video=src.info.kind != "image",
            min_confidence=self.options.min_face_confidence,
            small_faces=self.options.small_faces,
        )
        front_end = FaceFrontEnd(fe_options)
        self.last_identity = None
        resolver = None
        if self.options.identity:
            from .identity import IdentityResolver

            resolver = IdentityResolver()
        threads = [
            threading.Thread(target=self._decode, args=(src, start_frame, q_frames, stop), name="libreface-decode", daemon=True),
            threading.Thread(target=self._landmark, args=(front_end, resolver, q_frames, q_faces, stop), name="libreface-landmarks", daemon=True),
            threading.Thread(target=self._infer, args=(q_faces, q_out, stop), name="libreface-models", daemon=True),
        ]
        for t in threads:
            t.start()
        try:
            while True:
                item = q_out.get()
                if item is _END:
                    if resolver is not None:
                        self.last_identity = resolver.resolve()
                    break
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            for q in (q_frames, q_faces, q_out):  # unblock producers waiting on a full queue
                _drain(q)
            for t in threads:
                t.join(timeout=10)
            front_end.close()
            self.last_error = getattr(src, "error", None)
            src.close()

    def analyze(self, source, landmarks: bool = False, blendshapes: bool = False, fmt: str = "native"):
        """Analyse a whole source into a pandas DataFrame (one row per analysed frame and face)."""
        from .outputs import to_dataframe

        df = to_dataframe(self.process(source), self.labels, landmarks=landmarks, blendshapes=blendshapes, fmt=fmt)
        if self.last_identity is not None and "person_id" in df.columns:
            faces = df["face_id"] >= 0
            df.loc[faces, "person_id"] = self.last_identity.person_ids(df.loc[faces, "frame"], df.loc[faces, "face_id"])
        return df

    def analyze_to_files(
        self,
        source,
        csv_path: str | Path,
        *,
        fmt: str = "native",
        landmarks: bool = False,
        blendshapes: bool = False,
        features_path: str | Path | None = None,
        resume: bool = False,
        progress: bool = False,
        on_result=None,
        subject: str | int = "all",
    ) -> "RunSummary":
        """Analyse a source straight into a crash-safe CSV (and optionally a features file).

        Rows stream into `<csv_path>.partial` and the file is renamed to `csv_path` only when the
        whole source is done; on Ctrl-C or an error the `.partial` stays valid and `resume=True`
        continues it. `on_result(FrameResult)` is called for every frame (the GUI's live view).

        With `options.identity`, the `person_id` column is filled in once the recording's identities are
        resolved (the `.partial` is rewritten before the rename), `subject` ("main", "all" or a person_id)
        keeps one person's rows, and `<csv stem>.summary.json` gets the per-person summary (native format).
        Features files are keyed by (frame, face_id); their `person_id` is the CSV's to join on.
        """
        if resume and self.options.identity:
            raise ValueError("resume cannot be combined with identity (identities are resolved over the whole recording)")
        import time

        from .sources import Source, open_source

        t0 = time.perf_counter()
        name = Path(str(source)).name
        source = source if isinstance(source, Source) else open_source(source)  # bad input fails before any file is made
        try:
            return self._analyze_to_files(source, name, csv_path, fmt, landmarks, blendshapes, features_path, resume,
                                          progress, on_result, t0, subject)
        finally:
            source.close()

    def _analyze_to_files(self, source, name, csv_path, fmt, landmarks, blendshapes, features_path, resume, progress,
                          on_result, t0, subject) -> "RunSummary":
        import time

        from .outputs import CsvSink, FeatureSink

        frames = faces = 0
        with CsvSink(csv_path, self.labels, fmt=fmt, landmarks=landmarks, blendshapes=blendshapes, resume=resume) as sink:
            start = sink.resume_from_frame
            fsink = (FeatureSink(features_path, self.labels, resume_before_frame=start if resume else None)
                     if features_path else None)
            try:
                bar = None
                results = self.process(source, start_frame=start)
                try:
                    for result in results:
                        if bar is None and progress:
                            from tqdm import tqdm

                            hint = self.last_info.n_frames_hint if self.last_info else None
                            total = -(-hint // self.options.every) if hint and self.options.fps is None else None
                            bar = tqdm(total=total, initial=0, unit="frame", desc=name, leave=False,
                                       dynamic_ncols=True, mininterval=0.5)
                        sink.append(result)
                        if fsink:
                            fsink.append(result)
                        frames += 1
                        faces += len(result.faces)
                        if bar is not None:
                            bar.update(1)
                        if on_result is not None:
                            on_result(result)
                except KeyboardInterrupt:
                    if source.info.kind != "webcam":
                        raise
                    results.close()  # Ctrl-C ends a live recording: its CSV is complete, not partial
                if bar is not None:
                    bar.close()
            except BaseException:
                if fsink:
                    fsink.abort()
                raise
            if fsink:
                fsink.close()
            if self.last_identity is not None:
                sink.close(person_of=self.last_identity.person_of, subject=self._subject_id(subject, csv_path))
        if self.last_identity is not None and fmt == "native":
            self._write_summary(Path(csv_path))
        seconds = time.perf_counter() - t0
        return RunSummary(source.info.path, str(csv_path), frames, faces, seconds, frames / seconds if seconds > 0 else 0.0,
                          self.last_error, start)

    def _subject_id(self, subject: str | int, csv_path) -> int | None:
        if subject == "all":
            return None
        target = 0 if subject == "main" else int(subject)
        persons = [p.person_id for p in self.last_identity.persons]
        if subject != "main" and persons and target not in persons:
            import logging

            logging.getLogger("libreface").warning(
                "%s: person_id %d is not in this recording (persons: %s); all persons are kept",
                csv_path, target, ", ".join(map(str, persons)))
            return None
        return target

    def _write_summary(self, csv_path: Path) -> None:
        import json

        import pandas as pd

        from .identity import summarize

        summary = summarize(pd.read_csv(csv_path), self.labels.expressions)
        summary["identity"] = self.last_identity.to_dict()
        out = csv_path.with_suffix(".summary.json")
        tmp = out.with_name(out.name + ".partial")
        tmp.write_text(json.dumps(summary, indent=1, default=float))
        tmp.replace(out)

    # -- stages ----------------------------------------------------------------------------------
    def _keep(self, index: int, timestamp_s: float, state: dict) -> bool:
        o = self.options
        if index % o.every:
            return False
        if o.fps is None:
            return True
        next_t = state.get("next_t")
        if next_t is not None and timestamp_s < next_t - 1e-6:
            return False
        state["next_t"] = (timestamp_s if next_t is None else max(next_t, timestamp_s - 0.5 / o.fps)) + 1.0 / o.fps
        return True

    def _decode(self, src, start_frame: int, q_out: queue.Queue, stop: threading.Event) -> None:
        state: dict = {}
        try:
            for frame in src:
                if stop.is_set():
                    return
                if frame.index < start_frame or not self._keep(frame.index, frame.timestamp_s, state):
                    continue
                _put(q_out, frame, stop)
            _put(q_out, _END, stop)
        except BaseException as e:  # forwarded to the caller
            _put(q_out, e, stop)

    def _landmark(self, front_end: FaceFrontEnd, resolver, q_in: queue.Queue, q_out: queue.Queue, stop: threading.Event) -> None:
        size = self.model.card.input_size
        tracker = IouTracker()
        try:
            while not stop.is_set():
                frame = _get(q_in, stop)
                if frame is _END or isinstance(frame, BaseException):
                    _put(q_out, frame, stop)
                    return
                faces = front_end.detect(frame.rgb, timestamp_ms=int(round(frame.timestamp_s * 1000)))
                ids = tracker.update([f.box_px for f in faces])
                if resolver is not None:
                    resolver.observe(frame.index, frame.rgb, faces, ids, frame.timestamp_s)
                crops = []
                h, w = frame.rgb.shape[:2]
                for f in faces:
                    aligned = align_face(frame.rgb, f.landmarks_px, size)
                    crops.append(aligned.crop if aligned else None)
                geometry = [face_geometry(f, w, h) for f in faces]
                _put(q_out, _Pending(frame.index, frame.timestamp_s, faces, ids, crops, geometry), stop)
        except BaseException as e:
            _put(q_out, e, stop)

    def _infer(self, q_in: queue.Queue, q_out: queue.Queue, stop: threading.Event) -> None:
        try:
            done = False
            while not done and not stop.is_set():
                batch = [_get(q_in, stop)]
                while len(batch) < self.options.batch_size and batch[-1] is not _END and not isinstance(batch[-1], BaseException):
                    try:
                        batch.append(q_in.get_nowait())
                    except queue.Empty:
                        break
                tail = None
                if batch[-1] is _END or isinstance(batch[-1], BaseException):
                    tail = batch.pop()
                    done = True
                for result in self._run_models(batch):
                    _put(q_out, result, stop)
                if tail is not None:
                    _put(q_out, tail, stop)
        except BaseException as e:
            _put(q_out, e, stop)

    def _run_models(self, batch: list[_Pending]) -> list[FrameResult]:
        crops = [c for p in batch for c in p.crops if c is not None]
        out = self.model.run_crops(np.stack(crops)) if crops else self.model.run_crops(np.zeros((0,) + (self.model.card.input_size,) * 2 + (3,), np.uint8))
        c = self.model.card
        nan = {
            "au_intensity": np.full(len(c.au_intensity), np.nan, np.float32),
            "au_occurrence": np.full(len(c.au_occurrence), np.nan, np.float32),
            "expression": np.full(len(c.expressions), np.nan, np.float32),
            "features": np.full(c.feature_dim, np.nan, np.float32),
        }
        k = 0
        results = []
        for p in batch:
            faces = []
            for f, face_id, crop, geo in zip(p.faces, p.ids, p.crops, p.geometry or [{}] * len(p.faces)):
                if crop is not None:
                    vals = {name: out[name][k] for name in nan}
                    if self.blendshape_aus is not None:
                        vals = self.blendshape_aus.apply(f.blendshapes, vals)
                    k += 1
                else:
                    vals = nan
                faces.append(
                    FaceResult(
                        face_id=face_id, box_px=f.box_px, confidence=f.confidence, landmarks_px=f.landmarks_px,
                        blendshapes=f.blendshapes, pose_deg=f.pose_deg, success=crop is not None, **vals, **geo,
                    )
                )
            results.append(FrameResult(p.frame, p.timestamp_s, faces))
        return results


def face_geometry(face: FaceLandmarks, width: int, height: int) -> dict:
    """The `FaceResult` fields computed from landmarks and head pose alone: `gaze` (2, 3), `gaze_angle` (radians),
    `translation_mm` (3,), `landmarks_3d_mm` (68, 3); {} when MediaPipe gave no transformation matrix."""
    if face.transform is None:
        return {}
    gaze = iris_gaze(face.landmarks_px, face.transform, width, height)
    return {
        "gaze": gaze,
        "gaze_angle": tuple(float(a) for a in gaze_angles(gaze)),
        "translation_mm": tuple(float(v) for v in translation_mm(face.transform)),
        "landmarks_3d_mm": landmarks_3d_mm(face.landmarks_px, face.transform, width, height, IBUG68_FROM_MEDIAPIPE),
    }


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    """Next item, or `_END` once `stop` is set (so no stage waits forever on a stage that quit)."""
    while not stop.is_set():
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue
    return _END


def _drain(q: queue.Queue) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass


def analyze(source: str | Path | int, options: AnalyzerOptions | None = None, **kwargs):
    """Convenience: analyse one source with a fresh `Analyzer` and return its DataFrame."""
    if isinstance(source, (str, Path)) and not isinstance(source, int) and not Path(str(source)).exists() and not str(source).isdigit():
        raise InputError(f"{source}: not found")
    with Analyzer(options, **kwargs) as analyzer:
        return analyzer.analyze(source)
