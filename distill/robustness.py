"""The robustness report (`libreface-distill robustness`): expression accuracy, macro-F1 and per-class recall of ONNX
students on FER+ under real head yaw (MediaPipe pose bins) and synthetic yaw / occlusion / lighting -> JSON + Markdown.

Conditions (every model sees exactly the same faces and the same perturbed pixels):

* `clean`: the prepared crops as they are (the reference row);
* real pose: the clean predictions binned by the |yaw| MediaPipe measured on the original image when the split was
  prepared (`PreparedSplit.pose_deg[:, 1]`, degrees, rotation about the vertical axis); faces the landmarker missed
  (their crop is the on-miss mean-face crop) form the bin `no pose`. No pixel is synthesised: the honest part;
* synthetic, each alone, with a fixed seed: planar yaw warp at exactly 30 and 45 degrees (`distill.augment.yaw_warp`,
  `fixed=True`, left or right by a seeded coin), one occluder per face (`occlude`, p=1) and relighting (`relight`,
  p=1). These are the training augmentations' own families, so a student trained with them is favoured: the gain
  they show is an upper bound on the gain on real filmed faces.

Metrics are against the FER+ majority vote (first maximum of the 10 annotators' votes), as in `distill.metrics`.
"""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import numpy as np

from .data.records import EXPRESSIONS
from .evaluate import _fmt
from .metrics import score

YAW_EDGES_DEG = (15.0, 30.0)
"""|yaw| bin edges, degrees: < 15, 15..30, >= 30 (and `no pose`)."""

SYNTHETIC = {"yaw warp 30°": 30.0, "yaw warp 45°": 45.0, "occlusion": None, "lighting": None}
"""Synthetic conditions (name -> fixed yaw in degrees for the warps)."""
NO_POSE = "no pose"


def yaw_bins(yaw_deg: np.ndarray, edges: tuple[float, ...] = YAW_EDGES_DEG) -> tuple[np.ndarray, list[str]]:
    """(N,) yaw in degrees (NaN = no pose) -> ((N,) int bin index, bin names). Bins are by |yaw|: `real yaw < e0°`,
    `real yaw e0–e1°`, ..., `real yaw ≥ e_last°` (a face exactly on an edge goes to the upper bin), then `no pose`
    (NaN)."""
    e = [float(v) for v in edges]
    if not e or any(b <= a for a, b in zip(e, e[1:])) or e[0] <= 0:
        raise ValueError(f"yaw bin edges must be positive and increasing, got {edges}")
    names = [f"real yaw < {e[0]:g}°", *(f"real yaw {a:g}–{b:g}°" for a, b in zip(e, e[1:])), f"real yaw ≥ {e[-1]:g}°",
             NO_POSE]
    a = np.abs(np.asarray(yaw_deg, np.float64))
    idx = np.digitize(np.nan_to_num(a, nan=0.0), e)  # right=False: a == e[k] -> bin k + 1
    return np.where(np.isnan(a), len(names) - 1, idx).astype(np.int64), names


def perturb(images: np.ndarray, condition: str, seed: int) -> np.ndarray:
    """(N, S, S) uint8 grey crops -> the same under one synthetic `condition` (`SYNTHETIC`), uint8 again; a fresh
    generator seeded with `seed` per condition, so each condition is reproducible on its own."""
    from ._torch import torch
    from .augment import occlude, relight, yaw_warp

    g = torch.Generator().manual_seed(seed)
    x = torch.from_numpy(images).float().div_(255.0)
    if SYNTHETIC.get(condition) is not None:
        y = yaw_warp(x, SYNTHETIC[condition], g, p=1.0, fixed=True)
    elif condition == "occlusion":
        y = occlude(x, 1.0, g)
    elif condition == "lighting":
        y = relight(x, 1.0, g)
    else:
        raise ValueError(f"unknown condition {condition!r}; known: {', '.join(SYNTHETIC)}")
    return np.clip(np.rint(y.numpy() * 255.0), 0, 255).astype(np.uint8)


def load_split(prepared: Path, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FER+ `split` of the prepared data -> ((N, S, S) uint8 grey crops, (N,) int majority-vote labels, (N,) yaw
    degrees, NaN when missed); only labelled faces, the first `limit` of them when given."""
    from .data.prepare import PreparedSplit
    from .dataset import grey_crops

    path = Path(prepared) / "ferplus" / f"{split}.npz"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no prepared FER+ {split} split; run `libreface-distill prepare` first")
    p = PreparedSplit.load(path)
    rows = np.flatnonzero(p.votes.sum(1) > 0)[:limit]
    return grey_crops(p.crops[rows]), p.votes[rows].argmax(1), p.pose_deg[rows, 1].astype(np.float64)


def command_line(onnx: list, out, split: str, seed: int, limit: int | None, threads: int, prepared=None) -> str:
    """The command that re-runs this report."""
    args = ["python", "-m", "distill", "robustness", "--onnx", *map(str, onnx), "--out", str(out), "--split", split,
            "--seed", str(seed), "--threads", str(threads)]
    args += ["--limit", str(limit)] if limit else []
    args += ["--prepared", str(prepared)] if prepared else []
    return shlex.join(args)


def report(onnx: list, out_dir, split: str = "valid", prepared=None, threads: int = 2, seed: int = 0,
           limit: int | None = None, yaw_edges: tuple[float, ...] = YAW_EDGES_DEG) -> dict:
    """Score every ONNX student under every condition (module docstring) on FER+ `split` ("valid": what models and
    augmentations are chosen on; "test": scored once per shipped model). Writes `<out_dir>/robustness.json` and
    `<out_dir>/robustness.md` (each written to a temporary file first, then renamed). Returns the JSON's dict."""
    from libreface.models.session import StudentModel
    from libreface.outputs.atomic import write_atomic

    from .paths import cache_dir
    from .predict import run_grey

    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    if not onnx:
        raise ValueError("robustness: no --onnx model given")
    for path in map(Path, onnx):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: ONNX model not found")
    t0 = time.perf_counter()
    prepared = Path(prepared) if prepared else cache_dir() / "prepared"
    images, y, yaw = load_split(prepared, split, limit)
    bin_idx, bin_names = yaw_bins(yaw, yaw_edges)
    views = {"clean": images, **{c: perturb(images, c, seed) for c in SYNTHETIC}}
    names = [Path(p).name for p in onnx]
    if len(set(names)) < len(names):
        names = [str(p) for p in onnx]
    conditions = [{"name": "clean", "kind": "reference", "n": int(len(y))}]
    conditions += [{"name": b, "kind": "real pose", "n": int((bin_idx == k).sum())} for k, b in enumerate(bin_names)]
    conditions += [{"name": c, "kind": "synthetic", "n": int(len(y))} for c in SYNTHETIC]
    rows = []
    for name, path in zip(names, onnx):
        model = StudentModel(Path(path), threads=threads)
        preds = {c: run_grey(model, v)["expression"].argmax(1) for c, v in views.items()}
        meta = {"model": name, "input_size": model.card.input_size, "color": model.card.color}
        rows.append({**meta, "condition": "clean", **score(y, preds["clean"]).to_dict()})
        for k, b in enumerate(bin_names):
            sel = bin_idx == k
            rows.append({**meta, "condition": b, **score(y[sel], preds["clean"][sel]).to_dict()})
        for c in SYNTHETIC:
            rows.append({**meta, "condition": c, **score(y, preds[c]).to_dict()})
    default_prepared = prepared == cache_dir() / "prepared"
    result = {"split": split, "seed": seed, "limit": limit, "yaw_edges_deg": list(yaw_edges), "n": int(len(y)),
              "classes": list(EXPRESSIONS), "conditions": conditions, "rows": rows,
              "command": command_line(onnx, out_dir, split, seed, limit, threads, None if default_prepared else prepared),
              "seconds": round(time.perf_counter() - t0, 1)}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "robustness.json", json.dumps(result, indent=1, ensure_ascii=False, allow_nan=False))
    write_atomic(out_dir / "robustness.md", markdown(result))
    return result


def markdown(result: dict) -> str:
    """The Markdown form of `report`'s result: an overview (accuracy per condition, change from clean), then one
    table per condition (model x accuracy, macro-F1, per-class recall; faces per class in the header)."""
    split, classes = result["split"], result["classes"]
    rows = result["rows"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    by = {(r["model"], r["condition"]): r for r in rows}
    conds = result["conditions"]
    test_note = (" **Test split**: scored once per shipped model, never used to choose anything." if split == "test"
                 else " Validation split: what models and augmentations are chosen on (`--split test` is scored once "
                      "per shipped model).")
    lines = [f"# Robustness of the expression head: FER+ {split}", "",
             f"FER+ {split}, {result['n']} faces" + (f" (first {result['limit']} only: `--limit`)" if result["limit"] else "")
             + f", labels = majority vote of the 10 annotators. Seed {result['seed']}.{test_note}", "",
             f"Command: `{result['command']}` ({result['seconds']} s)", "",
             "* **Real pose** (the honest part): the clean predictions binned by the |yaw| MediaPipe measured on the "
             "original image when the split was prepared (degrees, rotation about the vertical axis); `no pose` = faces "
             "the landmarker missed (their crop is the on-miss mean-face crop). Nothing is synthesised; bins are small "
             "at large yaw, read the counts.",
             "* **Synthetic**, each alone, on the aligned crops, same pixels for every model: planar yaw warp at exactly "
             "30° / 45° (left or right by a seeded coin; a plane, no self-occlusion), one occluder per face, relighting "
             "(`distill.augment`). These are the **same families as the training augmentations**, so a student trained "
             "with them is favoured: its gain here is an upper bound on the real gain. Real occluders and light also "
             "move the landmarks and the alignment, which this does not simulate.",
             "* Macro-F1 is the mean over the classes present among a table's faces (as in `distill evaluate`); in a "
             "small bin it averages few classes.", "",
             "## Overview: accuracy % (change from clean, points)", "",
             "| condition | kind | faces | " + " | ".join(models) + " |", "|---|---|---:|" + "---:|" * len(models)]
    for c in conds:
        cells = []
        for m in models:
            r, clean = by[(m, c["name"])], by[(m, "clean")]["accuracy"]
            d = "" if c["name"] == "clean" or r["n"] == 0 else f" ({100 * (r['accuracy'] - clean):+.1f})"
            cells.append(_fmt(r["accuracy"]) + d)
        lines.append(f"| {c['name']} | {c['kind']} | {c['n']} | " + " | ".join(cells) + " |")
    for c in conds:
        first = by[(models[0], c["name"])]
        lines += ["", f"## {c['name']} ({c['kind']}, {c['n']} faces)", "",
                  "| model | acc % | macro-F1 % | " + " | ".join(f"{k} ({first['class_n'][k]})" for k in classes) + " |",
                  "|---|---:|---:|" + "---:|" * len(classes)]
        for m in models:
            r = by[(m, c["name"])]
            lines.append(f"| {m} | {_fmt(r['accuracy'])} | {_fmt(r['macro_f1'])} | "
                         + " | ".join(_fmt(r["recall"][k]) for k in classes) + " |")
    return "\n".join(lines) + "\n"
