"""`distill au-geometry`: landmark-geometry vs blendshape AU signal (AU4, AU9, AU26), ROC AUC on CK+ validation subjects.

`measure` landmarks CK+ with the runtime's landmarker (the `distill prepare` code path: IMAGE mode, small faces
upscaled), calibrates on the CK+ *training* subjects (`dataset.ck_split`) and reports the ROC AUC against the human
codes of the CK+ *validation* subjects for: the current blendshape signal (`labels.au_scores` + `fit_calibration`, as
`dataset.build_tables` fits it), the geometry score (`au_geometry`), and their combination (mean of the two percentile
ranks among the training faces). The test subjects are not scored (choices are made on validation only).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .au_geometry import FEATURES, GEOMETRY_AUS, GeometryScaler, feature_array, percentile_rank

MIN_VALID_POSITIVES = 10
"""A source other than the blendshapes is chosen for an AU only with at least this many validation positives."""


def landmark_images(images: list[np.ndarray], min_confidence: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Run the runtime's landmarker on RGB images exactly as `distill prepare` does (IMAGE mode, small faces
    upscaled and padded), in this process.

    Returns:
        ((N, 478, 3) float32 landmarks in source px, (N, 52) float32 blendshapes); NaN rows where missed.
    """
    from .data import prepare as prep

    prep._worker_init(min_confidence)
    lms = np.full((len(images), 478, 3), np.nan, np.float32)
    bss = np.full((len(images), 52), np.nan, np.float32)
    for i, rgb in enumerate(images):
        lm, bs, _ = prep._landmark(rgb)
        if lm is not None:
            lms[i], bss[i] = lm, bs
    return lms, bss


def _auc(scores: np.ndarray, labels: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    ok = ~np.isnan(scores) & (labels >= 0)
    y = labels[ok]
    if y.min(initial=1) == y.max(initial=0):
        return None
    return round(float(roc_auc_score(y, scores[ok])), 4)


def measure(ck_root: Path, prepared: Path | None, cache: Path | None = None) -> dict:
    """Landmark CK+ (or read `cache`), calibrate on the CK+ training subjects, AUC on the validation subjects.

    Args:
        ck_root: CK+ image folder (`distill.data.ckplus` layout, with `ckplus_au_occurrence.csv`).
        prepared: prepared-data folder holding `ferplus/train.npz` (for the blendshape calibration's neutral anchor).
        cache: .npz for the landmarker's output (reused when it exists; written otherwise).
    """
    from .data.ckplus import load_ckplus
    from .data.records import EXPRESSIONS
    from .dataset import ck_split
    from .labels import au_scores, fit_calibration

    t0 = time.time()
    recs = list(load_ckplus(Path(ck_root)))
    if cache is not None and Path(cache).exists():
        z = np.load(cache)
        lms, bss = z["landmarks"], z["blendshapes"]
    else:
        lms, bss = landmark_images([r.load() for r in recs])
        if cache is not None:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
            np.savez(cache, landmarks=lms, blendshapes=bss, keys=np.array([r.key for r in recs]))
    occ = np.array([[r.au_occurrence.get(a, -1) for a in GEOMETRY_AUS] for r in recs], np.int8)
    au27 = np.array([r.au_occurrence.get(27, -1) for r in recs], np.int8)
    split = ck_split(np.array([r.subject for r in recs]))
    tr, va = split == "train", split == "valid"
    found = ~np.isnan(lms[:, 0, 0])

    # the current teacher signal: blendshapes -> au_scores -> calibration fitted as build_tables does
    fer = np.load(Path(prepared) / "ferplus" / "train.npz")
    fer_bs, votes = fer["blendshapes"], fer["votes"]
    fer_ok = ~np.isnan(fer_bs[:, 0])
    fer_scores = au_scores(fer_bs[fer_ok], GEOMETRY_AUS)
    neutral = votes[fer_ok].argmax(1) == EXPRESSIONS.index("neutral")
    bs_raw = au_scores(bss, GEOMETRY_AUS)
    bs_cal = fit_calibration(fer_scores, neutral, bs_raw[tr & found], occ[tr & found])
    blend = bs_cal.intensity(bs_raw)

    feats_all = feature_array(lms)
    scaler = GeometryScaler.fit(feats_all[tr & found])
    geo = scaler.scores(feats_all)
    combined = np.stack([(percentile_rank(blend[tr, j], blend[:, j]) + percentile_rank(geo[tr, j], geo[:, j])) / 2
                         for j in range(len(GEOMETRY_AUS))], 1)
    rows, choice = [], {}
    for j, au in enumerate(GEOMETRY_AUS):
        name = f"AU{au:02d}"
        row = {"au": name, "features": [f"{n} ({'+' if s > 0 else '-'})" for n, s in FEATURES[au]]}
        for part, m in (("train", tr & found), ("valid", va & found)):
            known = occ[m, j] >= 0
            row[f"{part}_coded"] = int(known.sum())
            row[f"{part}_positives"] = int((occ[m, j] == 1).sum())
            for src, s in (("blendshape", blend), ("geometry", geo), ("combined", combined)):
                row[f"{part}_auc_{src}"] = _auc(s[m, j], occ[m, j])
        feats = feats_all[:, j]
        row["feature_auc"] = {n: [_auc(sign * feats[m, k], occ[m, j]) for m in (tr & found, va & found)]
                              for k, (n, sign) in enumerate(FEATURES[au])}
        if au == 26:  # CK+ codes a wide-open mouth AU27 (mouth stretch), not AU26: jaw opening measures their union
            union = np.where((occ[:, j] == 1) | (au27 == 1), 1, occ[:, j]).astype(np.int8)
            row["valid_auc_au26_or_au27"] = {src: _auc(sc[va & found, j], union[va & found])
                                             for src, sc in (("blendshape", blend), ("geometry", geo), ("combined", combined))}
            row["valid_positives_au26_or_au27"] = int((union[va & found] == 1).sum())
        best = max(("blendshape", "geometry", "combined"), key=lambda s: row[f"valid_auc_{s}"] or -1.0)
        if row["valid_positives"] < MIN_VALID_POSITIVES:
            best = "blendshape"  # too few validation positives to choose on
        choice[name] = best
        row["choice"] = best
        rows.append(row)
    return {
        "ck_root": str(ck_root), "images": len(recs), "detected": int(found.sum()),
        "subjects": {k: int(len({r.subject for r, s in zip(recs, split) if s == k})) for k in ("train", "valid", "test")},
        "images_by_split": {k: int((split == k).sum()) for k in ("train", "valid", "test")},
        "rows": rows, "choice": choice, "scaler": scaler.__dict__,
        "blendshape_calibration": json.loads(bs_cal.to_json()), "seconds": round(time.time() - t0, 1),
        "note": "CK+ test subjects are not scored here (selection uses validation subjects only).",
    }


def markdown(result: dict) -> str:
    """The report as Markdown: per AU, validation ROC AUC of each source (training AUC in brackets)."""
    lines = [
        "# Geometric AU teacher signal vs blendshapes (CK+)",
        "",
        f"CK+ images {result['images']} (landmarker found {result['detected']}); subjects train / valid / test = "
        f"{result['subjects']['train']} / {result['subjects']['valid']} / {result['subjects']['test']} "
        f"(images {result['images_by_split']['train']} / {result['images_by_split']['valid']} / "
        f"{result['images_by_split']['test']}). Calibrated on the training subjects; ROC AUC against the human FACS "
        "codes of the **validation** subjects (training-subject AUC in brackets). Test subjects are not scored.",
        "",
        "| AU | valid pos / coded | blendshape (current) | geometry | combined (mean rank) | choice |",
        "|---|---|---|---|---|---|",
    ]
    f = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    for r in result["rows"]:
        lines.append(
            f"| {r['au']} | {r['valid_positives']} / {r['valid_coded']} | "
            + " | ".join(f"{f(r[f'valid_auc_{s}'])} ({f(r[f'train_auc_{s}'])})"
                         for s in ("blendshape", "geometry", "combined"))
            + f" | {r['choice']} |")
    lines += ["", f"A source other than the blendshapes is chosen only with >= {MIN_VALID_POSITIVES} validation positives.",
              "", "Features (each z-scored on the training subjects, signed, averaged); AUC of each alone, train / valid:",
              ""]
    for r in result["rows"]:
        lines.append(f"- {r['au']}: " + "; ".join(f"{n} {f(a)} / {f(b)}" for n, (a, b) in r["feature_auc"].items()))
        if "valid_auc_au26_or_au27" in r:
            u = r["valid_auc_au26_or_au27"]
            lines.append(f"  - AU26 or AU27 coded ({r['valid_positives_au26_or_au27']} validation positives; CK+ codes "
                         f"a wide-open jaw AU27): blendshape {f(u['blendshape'])}, geometry {f(u['geometry'])}, "
                         f"combined {f(u['combined'])}")
    snippet = ", ".join(f"{k}: {v}" for k, v in result["choice"].items())
    lines += ["", f"Next student's config: `au_sources: {{{snippet}}}` (needs prepared data with landmarks).", ""]
    return "\n".join(lines)


def write_report(result: dict, out: Path) -> list[Path]:
    """`<out>/metrics.json` and `<out>/metrics.md`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=1))
    (out / "metrics.md").write_text(markdown(result))
    return [out / "metrics.json", out / "metrics.md"]
