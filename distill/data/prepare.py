"""`distill prepare`: run every training image through the runtime's own landmarker and alignment.

Each image goes through `libreface.landmarks.FaceFrontEnd` (IMAGE mode) and
`libreface.align.align_face`, exactly the calls the analyzer makes, and the aligned crops,
blendshapes and head pose are cached in one `.npz` per split under the cache folder (outside git).

Small pre-cropped faces (FER2013 and CK+48 are 48x48) are upscaled to 192 px and padded by a
quarter on each side before landmarking, because MediaPipe's detector needs some context around
a face. Faces the landmarker misses are handled by `on_miss`:

* "mean-face" (default for pre-cropped datasets): the image is aligned with the mean landmark
  layout of the faces found in the same dataset (these datasets are already registered crops),
  and its blendshapes are NaN, so it gets no AU pseudo-label;
* "drop": the image is left out (and counted).

The counts of found / missed faces per split are written to `prepare_report.json`.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from tqdm import tqdm

from libreface.align import ALIGN_VERSION, align_face
from libreface.landmarks import BLENDSHAPE_NAMES

from .records import DISFA_AUS, EXPRESSIONS, Record

CK_AUS: tuple[int, ...] = (1, 2, 4, 5, 6, 7, 9, 10, 11, 12, 14, 15, 16, 17, 18, 20, 21, 22, 23, 24, 25, 26, 27)
"""AU columns stored for human occurrence codes (the CK+ FACS set; DISFA's 12 are a subset)."""

UPSCALE_BELOW_PX = 192


@dataclass
class PreparedSplit:
    """The cached arrays of one split (see `save` for the file layout)."""

    keys: np.ndarray  # (N,) str
    crops: np.ndarray  # (N, S, S, 3) uint8 RGB aligned crops
    detected: np.ndarray  # (N,) bool, False when the on-miss rule made the crop
    blendshapes: np.ndarray  # (N, 52) float32 0..1, NaN when missed
    pose_deg: np.ndarray  # (N, 3) float32 pitch, yaw, roll; NaN when missed
    votes: np.ndarray  # (N, 8) float32 expression votes, 0 rows when unlabelled
    au_occurrence: np.ndarray  # (N, len(CK_AUS)) int8, -1 unknown
    au_intensity: np.ndarray  # (N, 12) float32 DISFA AUs 0..5, NaN unknown
    subjects: np.ndarray  # (N,) str, "" when unknown
    # (N, 478, 3) float32 MediaPipe landmarks in source-image px (x, y, z), NaN when missed; None in caches
    # prepared before landmarks were stored (for `distill.au_geometry`)
    landmarks: np.ndarray | None = None
    # (N, 3, 2) float32 landmark-geometry features (`au_geometry.feature_array`) kept instead of the landmarks by
    # `distill pack`; None otherwise
    geo_feat: np.ndarray | None = None

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".partial.npz")
        np.savez(tmp, **{k: v for k, v in self.__dict__.items() if v is not None})
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "PreparedSplit":
        """Read a split; a `distill pack` split (WebP grey crops, `crops_webp` + `crops_offsets`) is decoded to the
        same (N, S, S, 3) layout (R = G = B = the grey crop)."""
        z = np.load(path, allow_pickle=False)
        optional = ("landmarks", "geo_feat")
        packed = "crops" not in z.files and "crops_webp" in z.files
        d = {k: z[k] for k in cls.__dataclass_fields__ if k in z.files or k not in optional and not (packed and k == "crops")}
        if packed:
            d["crops"] = np.repeat(decode_crops(z["crops_webp"], z["crops_offsets"], path)[..., None], 3, axis=-1)
        return cls(**d)

    def __len__(self) -> int:
        return len(self.keys)


def decode_crops(data: np.ndarray, offsets: np.ndarray, path: Path | str = "") -> np.ndarray:
    """(bytes,) uint8 concatenated WebP images + (N + 1,) int64 offsets -> (N, S, S) uint8 grey crops (`distill pack`)."""
    import io

    from PIL import Image, features

    if not features.check("webp"):
        raise RuntimeError(f"{path}: packed WebP crops, but this Pillow cannot decode WebP")
    buf = data.tobytes()
    out = [np.asarray(Image.open(io.BytesIO(buf[a:b])).convert("L")) for a, b in zip(offsets[:-1], offsets[1:])]
    return np.stack(out) if out else np.zeros((0, 0, 0), np.uint8)


def _context_image(rgb: np.ndarray) -> tuple[np.ndarray, float, int]:
    """Upscale + pad small pre-cropped faces; returns the image, the scale and the pad (px)."""
    import cv2

    h, w = rgb.shape[:2]
    if min(h, w) >= UPSCALE_BELOW_PX:
        return rgb, 1.0, 0
    s = UPSCALE_BELOW_PX / min(h, w)
    big = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
    pad = UPSCALE_BELOW_PX // 4
    return cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE), s, pad


_FE = None


def _worker_init(min_confidence: float) -> None:
    global _FE
    from libreface.landmarks import FaceFrontEnd, FrontEndOptions

    _FE = FaceFrontEnd(FrontEndOptions(max_faces=1, video=False, small_faces=False, min_confidence=min_confidence))


def _landmark(rgb: np.ndarray):
    """-> (landmarks in source-image px (478,3) or None, blendshapes, pose)."""
    img, s, pad = _context_image(rgb)
    faces = _FE.detect(img)
    if not faces:
        return None, None, None
    f = max(faces, key=lambda f: f.size_px)
    lm = f.landmarks_px.copy()
    lm[:, :2] = (lm[:, :2] - pad) / s
    lm[:, 2] /= s
    return lm, f.blendshapes, np.asarray(f.pose_deg, np.float32)


def _align(rgb: np.ndarray, lm: np.ndarray, size: int) -> np.ndarray:
    img, s, pad = _context_image(rgb)
    lm_big = lm.copy()
    lm_big[:, :2] = lm[:, :2] * s + pad
    face = align_face(img, lm_big, size)
    if not face:
        raise RuntimeError(face.reason)
    return face.crop


def prepare(
    records: Iterable[Record],
    out_dir: Path,
    size: int = 64,
    on_miss: str = "mean-face",
    jobs: int = 2,
    min_confidence: float = 0.3,
    limit: int | None = None,
) -> dict:
    """Landmark, align and cache `records`; returns the report (also written to out_dir).

    Args:
        records: records of one dataset (all splits).
        out_dir: cache folder; gets `<split>.npz` and `prepare_report.json`.
        size: crop side in pixels (the student's input size).
        on_miss: "mean-face" or "drop" (see the module docstring).
        jobs: landmarker processes.
        min_confidence: landmarker detection threshold (0..1).
        limit: take only the first `limit` records (smoke runs).
    """
    if on_miss not in ("mean-face", "drop"):
        raise ValueError(f"on_miss must be 'mean-face' or 'drop', got {on_miss!r}")
    recs = list(records)[:limit] if limit else list(records)
    t0 = time.time()
    images = (r.load() for r in recs)
    with mp.get_context("spawn").Pool(jobs, initializer=_worker_init, initargs=(min_confidence,)) as pool:
        found = list(tqdm(pool.imap(_landmark, images, chunksize=32), total=len(recs), desc=f"landmarks {out_dir.name}"))
    # mean landmark layout, in units of the source image size, over detected faces
    norm = [lm[:, :2] / np.array(r.load().shape[1::-1], np.float32) for r, (lm, _, _) in zip(recs, found) if lm is not None]
    mean_unit = np.mean(norm, axis=0) if norm else None
    by_split: dict[str, list] = {}
    report = {"align_version": ALIGN_VERSION, "size": size, "on_miss": on_miss, "splits": {}}
    for r, (lm, bs, pose) in tqdm(list(zip(recs, found)), desc="align"):
        rgb = r.load()
        st = report["splits"].setdefault(r.split, {"images": 0, "detected": 0, "missed": 0, "kept": 0})
        st["images"] += 1
        detected = lm is not None
        st["detected" if detected else "missed"] += 1
        lm_kept = lm.astype(np.float32) if detected else np.full((478, 3), np.nan, np.float32)
        if not detected:
            if on_miss == "drop" or mean_unit is None:
                continue
            lm = np.zeros((478, 3), np.float32)
            lm[:, :2] = mean_unit * np.array(rgb.shape[1::-1], np.float32)
            bs = np.full(len(BLENDSHAPE_NAMES), np.nan, np.float32)
            pose = np.full(3, np.nan, np.float32)
        st["kept"] += 1
        occ = np.full(len(CK_AUS), -1, np.int8)
        for au, v in r.au_occurrence.items():
            if au in CK_AUS:
                occ[CK_AUS.index(au)] = v
        inten = np.full(len(DISFA_AUS), np.nan, np.float32)
        for au, v in r.au_intensity.items():
            if au in DISFA_AUS:
                inten[DISFA_AUS.index(au)] = v
        votes = r.expression_votes if r.expression_votes is not None else np.zeros(len(EXPRESSIONS), np.float32)
        by_split.setdefault(r.split, []).append(
            (r.key, _align(rgb, lm, size), detected, bs, pose, votes, occ, inten, r.subject or "", lm_kept)
        )
    for split, rows in by_split.items():
        cols = list(zip(*rows))
        PreparedSplit(
            keys=np.array(cols[0]),
            crops=np.stack(cols[1]),
            detected=np.array(cols[2], bool),
            blendshapes=np.stack(cols[3]).astype(np.float32),
            pose_deg=np.stack(cols[4]).astype(np.float32),
            votes=np.stack(cols[5]).astype(np.float32),
            au_occurrence=np.stack(cols[6]),
            au_intensity=np.stack(cols[7]),
            subjects=np.array(cols[8]),
            landmarks=np.stack(cols[9]).astype(np.float32),
        ).save(out_dir / f"{split}.npz")
    report["seconds"] = round(time.time() - t0, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "prepare_report.json").write_text(json.dumps(report, indent=1))
    return report
