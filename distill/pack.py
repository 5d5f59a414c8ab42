"""`distill pack`: the prepared training data as one small, self-contained folder to carry to a GPU machine.

The pack is itself a valid prepared folder (`--prepared DIR`, or `prepared: DIR` in a config): `PreparedSplit.load`
decodes it, `dataset.build_tables` reads it as it reads `<cache>/prepared`. It keeps what training a teacher needs:

* rows: FER+ Train and Valid, the CK+ training and validation subjects (`dataset.ck_split`), the video frames; never
  FER+ Test or the CK+ test subjects (so `distill evaluate` cannot run on a pack: evaluation stays on the full cache);
* per row: the grey crop (the tables keep grey only), expression votes, CK+ AU codes and subject, blendshapes (the AU
  teacher signal), head pose, key, detected flag;
* instead of the 478 landmarks (5.6 KB a face, far over the budget): the 3 x 2 geometry features
  (`au_geometry.feature_array`) that `au_sources: geometry` needs.

The crops are WebP images (one per face, lossless or lossy at a chosen quality) concatenated in the split's `.npz`
(`crops_webp` bytes + `crops_offsets`); every other array is stored as is (`np.savez_compressed`). Measured on the
full cache (32 783 faces, 64 px): lossless WebP needs ~68 MiB for the crops alone (PNG 74, deflate 107), over the
64 MiB a GPU call may carry; lossy WebP at quality 95 needs ~38 MiB at a mean absolute error of ~0.9 grey levels (of
255). `pack.json` records the error measured on every row of the pack actually written.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np

from .data.prepare import PreparedSplit, decode_crops
from .dataset import ck_split, grey_crops

SPLITS = (("ferplus", "train"), ("ferplus", "valid"), ("ckplus", "train"), ("videos", "train"))
"""(dataset, split) files a pack takes from the prepared folder, where present (FER+ Test never)."""

KEPT = ("keys", "detected", "blendshapes", "pose_deg", "votes", "au_occurrence", "au_intensity", "subjects")


def encode_crops(images: np.ndarray, quality: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(N, S, S) uint8 grey -> ((bytes,) uint8 concatenated WebP files, (N + 1,) int64 offsets).

    `quality` None = lossless WebP; 1..100 = lossy WebP at that quality."""
    from PIL import Image

    opts = {"lossless": True, "quality": 100, "method": 4} if quality is None else {"quality": int(quality), "method": 4}
    blobs = []
    for img in images:
        b = io.BytesIO()
        Image.fromarray(img).save(b, "WEBP", **opts)
        blobs.append(b.getvalue())
    offsets = np.zeros(len(blobs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(b) for b in blobs])
    return np.frombuffer(b"".join(blobs), np.uint8), offsets


def _readme(summary: dict) -> str:
    rows = "\n".join(f"  {k}: {v['rows']} faces, {v['bytes'] / 2**20:.1f} MiB" for k, v in summary["files"].items())
    images = summary["images"]
    return f"""LibreFace training pack (`python -m distill pack`), {summary['mib']} MiB.

A valid prepared folder: train with `python -m distill train-teacher CONFIG --prepared THIS_FOLDER` (or `prepared:` in
the config); `dataset.build_tables` reads it directly, nothing to unpack.

Files:
{rows}

Rows: FER+ Train and Valid, the CK+ training and validation subjects (CK+ subject number mod 5 != 0), the video frames.
NOT included: FER+ Test and the CK+ test subjects. Teachers train on `train` and choose checkpoints on `valid` /
`ck_valid`; evaluation on the test rows stays on the machine with the full prepared cache.

Crops: grey 64x64, WebP {images} (mean absolute error {summary['mean_abs_error']} grey levels, max
{summary['max_abs_error']}, over all {summary['rows']} faces). Landmarks are not kept: each face has the 3 x 2 landmark
geometry features (`geo_feat`) that `au_sources: geometry` needs. Blendshapes, pose, votes, CK+ AU codes and subjects
are stored as in the prepared cache.
"""


def pack(prepared: Path, out: Path, quality: int | None = 95, max_mib: float = 64.0) -> dict:
    """Write the pack of prepared folder `prepared` to `out` (replaced); returns the summary (also `out/pack.json`).

    Args:
        prepared: a prepared folder (`<cache>/prepared`: `<dataset>/<split>.npz`).
        out: the pack folder.
        quality: WebP quality of the crops (1..100), None = lossless.
        max_mib: a pack over this size (MiB, 2**20 bytes) is not written (error naming its size).

    Returns:
        {"rows", "mib" (the data files), "images", "quality", "mean_abs_error", "max_abs_error",
        "files": {"ferplus/train.npz": {"rows", "bytes"}, ...}}.
    """
    from .au_geometry import feature_array

    prepared, out = Path(prepared), Path(out)
    if quality is not None and not 1 <= quality <= 100:
        raise ValueError(f"quality must be 1..100 or None (lossless), not {quality}")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    files, err_sum, err_max, rows = {}, 0.0, 0, 0
    for dataset, split in SPLITS:
        src = prepared / dataset / f"{split}.npz"
        if not src.exists():
            continue
        p = PreparedSplit.load(src)
        keep = np.arange(len(p))
        if dataset == "ckplus":  # the CK+ test subjects stay out
            keep = np.flatnonzero(ck_split(p.subjects.astype(str)) != "test")
        g = grey_crops(p.crops[keep])
        data, offsets = encode_crops(g, quality)
        back = decode_crops(data, offsets, src) if len(g) else g
        err = np.abs(back.astype(np.int16) - g)
        err_sum, err_max, rows = err_sum + float(err.sum()), max(err_max, int(err.max(initial=0))), rows + len(g)
        arrays = {k: getattr(p, k)[keep] for k in KEPT}
        if p.landmarks is not None:
            arrays["geo_feat"] = feature_array(p.landmarks[keep])
        elif p.geo_feat is not None:
            arrays["geo_feat"] = p.geo_feat[keep]
        path = tmp / dataset / f"{split}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, crops_webp=data, crops_offsets=offsets, **arrays)
        files[f"{dataset}/{split}.npz"] = {"rows": len(g), "bytes": path.stat().st_size}
    if not files:
        raise FileNotFoundError(f"{prepared}: no prepared datasets to pack; run `libreface-distill prepare` first")
    size = sum(f["bytes"] for f in files.values())  # pack.json and README.txt add a few KiB
    if size > max_mib * 2**20:
        shutil.rmtree(tmp)
        raise ValueError(f"{out}: the pack would be {size / 2**20:.1f} MiB, over --max-mib {max_mib:g} "
                         f"(images {'lossless' if quality is None else f'quality {quality}'}); choose a lower --quality")
    side = p.crops.shape[1]
    summary = {"rows": rows, "mib": round(size / 2**20, 2), "images": "lossless" if quality is None else f"quality {quality}",
               "quality": quality, "side_px": side, "mean_abs_error": round(err_sum / max(1, rows * side * side), 3),
               "max_abs_error": err_max, "files": files, "source": str(prepared)}
    (tmp / "pack.json").write_text(json.dumps(summary, indent=1))
    (tmp / "README.txt").write_text(_readme(summary))
    shutil.rmtree(out, ignore_errors=True)
    tmp.replace(out)
    return summary
