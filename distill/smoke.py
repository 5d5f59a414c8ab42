"""`libreface-distill smoke`: the whole chain on generated fixtures, in a few minutes (CI runs it).

Fixtures: FER+ and CK+ folders in their real layouts, with 48x48 grey faces cut from
`skimage.data.astronaut()` (NASA, public domain) under random shifts, scales and contrast, and random
votes / AU codes. Then: prepare -> pretrain-mae -> both teachers -> distilled student -> export (fp32 +
int8) -> evaluate, each stage for one short epoch, everything under one output folder.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

CONFIGS = Path(__file__).parent / "configs"
EMOTIONS_CK = ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")


def _faces(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    from PIL import Image
    from skimage import data

    img = Image.fromarray(data.astronaut()).convert("L")
    out = []
    for _ in range(n):
        side = rng.uniform(150, 190)
        cx, cy = 215 + rng.uniform(-8, 8), 125 + rng.uniform(-8, 8)
        crop = img.crop((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)).resize((48, 48), Image.Resampling.BILINEAR)
        a = np.asarray(crop, np.float32) * rng.uniform(0.7, 1.2) + rng.uniform(-20, 20)
        out.append(np.clip(a, 0, 255).astype(np.uint8))
    return out


def make_fixtures(root: Path, seed: int = 0, per_split: int = 64, ck_subjects: int = 10) -> tuple[Path, Path]:
    """Write tiny FER+ (`FER2013{Train,Valid,Test}/label.csv` + PNGs) and CK+ (`<emotion>/Sxxx_yyy_zzzzzzzz.png` +
    `ckplus_au_occurrence.csv`) folders; returns their roots."""
    from PIL import Image

    from .data.prepare import CK_AUS

    rng = np.random.default_rng(seed)
    fer, ck = root / "ferplus", root / "ckplus48"
    k = 0
    for split in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        (fer / split).mkdir(parents=True, exist_ok=True)
        with open(fer / split / "label.csv", "w", newline="") as f:
            w = csv.writer(f)
            for face in _faces(per_split, rng):
                name = f"fer{k:07d}.png"
                Image.fromarray(face).save(fer / split / name)
                votes = rng.multinomial(10, [0.3, 0.3, 0.1, 0.1, 0.08, 0.04, 0.04, 0.02, 0.01, 0.01])
                w.writerow([name, "(0, 0, 48, 48)", *votes.tolist()])
                k += 1
    rows = []
    for s in range(1, ck_subjects + 1):
        subject = f"S{s:03d}"
        for seq in (1, 2):
            emotion = EMOTIONS_CK[int(rng.integers(len(EMOTIONS_CK)))]
            (ck / emotion).mkdir(parents=True, exist_ok=True)
            for j, face in enumerate(_faces(3, rng)):
                Image.fromarray(face).save(ck / emotion / f"{subject}_{seq:03d}_{j + 10:08d}.png")
            codes = (rng.random(len(CK_AUS)) < 0.3).astype(int)
            rows.append([subject, f"{subject}_{seq:03d}", emotion, *codes.tolist()])
    with open(ck / "ckplus_au_occurrence.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["subject", "sequence", "emotion", *[f"AU{a}" for a in CK_AUS]])
        w.writerows(rows)
    return fer, ck


def run(out: Path, seed: int = 0) -> dict:
    """Run the whole chain under `out` (cache, weights, report); returns the evaluation result."""
    out = Path(out)
    old = os.environ.get("LIBREFACE_CACHE")
    os.environ["LIBREFACE_CACHE"] = str(out / "cache")
    try:
        return _run(out, seed)
    finally:
        if old is None:
            os.environ.pop("LIBREFACE_CACHE", None)
        else:
            os.environ["LIBREFACE_CACHE"] = old


def _run(out: Path, seed: int) -> dict:
    from .data import LOADERS
    from .data.prepare import prepare
    from .evaluate import report
    from .export import export
    from .paths import WEIGHTS
    from .train import TrainConfig, train

    t0 = time.time()
    fer, ck = make_fixtures(out / "data", seed)
    prepared = out / "cache" / "prepared"
    prepare(LOADERS["ferplus"](fer), prepared / "ferplus", size=64, jobs=1)
    prepare(LOADERS["ckplus"](ck), prepared / "ckplus", size=64, jobs=1)
    small = dict(epochs=1, batch_size=32, threads=2, seed=seed)
    names = {}
    for cfg_file in ("pretrain_mae", "teacher_swin", "teacher_mae", "student_r18"):
        cfg = TrainConfig.from_yaml(CONFIGS / f"{cfg_file}.yaml")
        cfg = replace(cfg, name=f"smoke_{cfg.name}", **small,
                      teachers=[f"smoke_{t}" for t in cfg.teachers],
                      init_from=f"smoke_{cfg.init_from}" if cfg.init_from else None)
        names[cfg_file] = cfg.name
        train(cfg)
    weights = out / "weights"
    weights.mkdir(parents=True, exist_ok=True)
    (weights / "face_landmarker.task").write_bytes((WEIGHTS / "face_landmarker.task").read_bytes())
    from .export import update_manifest

    update_manifest([{"name": "face_landmarker", "file": "face_landmarker.task", "kind": "landmarker"}], weights)
    paths = export(names["student_r18"], "smoke_r18.v0", weights_dir=weights, calib=64)
    result = report([names["teacher_swin"], names["student_r18"]], paths, out / "report", prepared=prepared,
                    ensemble=[*paths, names["teacher_swin"]])
    result["seconds"] = round(time.time() - t0, 1)
    result["weights"] = [str(p) for p in paths]
    result["runs"] = names
    result["root"] = str(out)
    return result
