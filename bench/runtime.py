"""End-to-end speed of the analyzer, per stage, against the landmarker-only floor.

    python bench/runtime.py [--videos DIR] [--threads 2] [--model au_r10t_int8.v3] [--mirror] [--json out.json]

For each video (the shared real videos when `../shared/data/videos` exists, plus a generated 1080p
clip): decode-only fps; landmarker-only fps (MediaPipe FaceLandmarker in VIDEO mode over the same
frames: the floor no pipeline can beat); per-stage milliseconds per frame measured one stage at a time
(decode, landmarks, align, models, write); and the end-to-end fps of `libreface.Analyzer` with all
outputs on (landmarks, blendshapes, features) writing a CSV, i.e. what `libreface VIDEO -o out.csv
--landmarks --blendshapes --features f.parquet` does. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_VIDEOS = ("single_face.mp4", "2015-10-15-15-14.avi", "multi_face.avi", "1034_03_006_jet_li.avi")


def make_1080p(path: Path, seconds: float = 6.0, fps: int = 30) -> Path:
    """A generated 1920x1080 clip: the bundled example's frames upscaled (one face of ~400 px)."""
    import av

    from libreface.sources import open_source

    with open_source(REPO / "examples" / "astronaut.mp4") as src:
        frames = [f.rgb for f in src][: int(seconds * fps)]
    import cv2

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.width, s.height, s.pix_fmt, s.bit_rate = 1920, 1080, "yuv420p", 8_000_000
        for rgb in frames:
            big = cv2.resize(rgb, (1920, 1080), interpolation=cv2.INTER_LINEAR)
            for p in s.encode(av.VideoFrame.from_ndarray(big, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def stage_times(path: Path, model_name: str, threads: int, mirror: bool = False) -> dict:
    """Each stage alone over the whole video, in ms per frame (models: per frame, batched 16 frames)."""
    from libreface.align import align_face
    from libreface.landmarks import FaceFrontEnd, FrontEndOptions
    from libreface.models.session import StudentModel
    from libreface.outputs import CsvSink
    from libreface.pipeline import Analyzer, AnalyzerOptions
    from libreface.sources import open_source

    t = time.perf_counter()
    with open_source(path) as src:
        frames = [(f.index, f.timestamp_s, f.rgb) for f in src]
    decode = time.perf_counter() - t
    n = len(frames)
    model = StudentModel.load(model_name, threads=threads, mirror=mirror)
    size = model.card.input_size
    with FaceFrontEnd(FrontEndOptions(max_faces=1, small_faces=True)) as fe:
        t = time.perf_counter()
        faces = [fe.detect(rgb, int(ts * 1000)) for _, ts, rgb in frames]
        landmarks = time.perf_counter() - t
    with FaceFrontEnd(FrontEndOptions(max_faces=1, small_faces=False)) as fe:
        t = time.perf_counter()
        for _, ts, rgb in frames:
            fe._landmarker.detect_for_video(__import__("libreface.landmarks", fromlist=["_mp_image"])._mp_image(rgb), int(ts * 1000) + 1)
        floor = time.perf_counter() - t
    t = time.perf_counter()
    crops = [align_face(rgb, f.landmarks_px, size).crop for (_, _, rgb), fs in zip(frames, faces) for f in fs]
    align = time.perf_counter() - t
    geometry = 0.0
    try:  # gaze, head translation and 3-D landmarks (absent in trees before they existed)
        from libreface.pipeline import face_geometry
    except ImportError:
        face_geometry = None
    if face_geometry is not None:
        t = time.perf_counter()
        for (_, _, rgb), fs in zip(frames, faces):
            for f in fs:
                face_geometry(f, rgb.shape[1], rgb.shape[0])
        geometry = time.perf_counter() - t
    t = time.perf_counter()
    for i in range(0, len(crops), 16):
        model.run_crops(np.stack(crops[i : i + 16]))
    models = time.perf_counter() - t
    with Analyzer(AnalyzerOptions(model=model_name, threads=threads, mirror=mirror)) as a:
        results = list(a.process(path))
        labels = a.labels
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        with CsvSink(Path(tmp) / "w.csv", labels, landmarks=True, blendshapes=True) as sink:
            for r in results:
                sink.append(r)
        write = time.perf_counter() - t
    ms = lambda s: round(1000 * s / max(1, n), 2)  # noqa: E731
    return {"frames": n, "decode_ms": ms(decode), "landmarks_ms": ms(landmarks), "landmarker_only_ms": ms(floor),
            "align_ms": ms(align), "geometry_ms": ms(geometry), "models_ms": ms(models), "write_ms": ms(write), "faces": len(crops)}


def end_to_end(path: Path, model_name: str, threads: int, mirror: bool = False) -> dict:
    """Wall-clock fps of the full pipeline writing CSV + features with every column group on."""
    from libreface.pipeline import Analyzer, AnalyzerOptions

    with Analyzer(AnalyzerOptions(model=model_name, threads=threads, mirror=mirror)) as a, tempfile.TemporaryDirectory() as tmp:
        a.analyze_to_files(path, Path(tmp) / "warm.csv")  # warm-up (file cache, ORT arenas)
        t = time.perf_counter()
        s = a.analyze_to_files(path, Path(tmp) / "out.csv", landmarks=True, blendshapes=True,
                               features_path=Path(tmp) / "f.parquet")
        wall = time.perf_counter() - t
    return {"e2e_fps": round(s.frames / wall, 1), "e2e_frames": s.frames}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "data" / "videos")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model", default=None)
    p.add_argument("--mirror", action="store_true", help="also run each face mirrored (the analyzer's --mirror)")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    from libreface.models.registry import DEFAULT_MODEL
    from libreface.models.session import default_threads

    model = args.model or DEFAULT_MODEL
    videos = [args.videos / v for v in DEFAULT_VIDEOS if (args.videos / v).exists()]
    tmp = Path(tempfile.mkdtemp())
    videos.append(make_1080p(tmp / "generated_1080p.mp4"))
    rows = []
    for v in videos:
        row = {"video": v.name, **stage_times(v, model, args.threads, args.mirror),
               **end_to_end(v, model, args.threads, args.mirror)}
        floor_fps = 1000 / row["landmarker_only_ms"]
        row["landmarker_only_fps"] = round(floor_fps, 1)
        row["e2e_vs_floor"] = round(row["e2e_fps"] / floor_fps, 2)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print(f"model {model}{' +mirror' if args.mirror else ''}, {args.threads} ONNX Runtime threads, {default_threads()} cores\n")
    print("| video | frames | decode ms | landmarks ms | align ms | geometry ms | models ms | write ms | landmarker-only fps | end-to-end fps | e2e / floor |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['video']} | {r['frames']} | {r['decode_ms']} | {r['landmarks_ms']} | {r['align_ms']} | {r['geometry_ms']} | {r['models_ms']} | "
              f"{r['write_ms']} | {r['landmarker_only_fps']} | {r['e2e_fps']} | {r['e2e_vs_floor']} |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
