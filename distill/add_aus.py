"""`distill add-aus`: grow a shipped student from DISFA's 12 AUs to OpenFace's 17 intensities and 18 occurrences.

For each added AU (7, 10, 14, 23, 45 intensity + occurrence; 28 occurrence only):

1. **Teacher signal.** The calibrated blendshape mapping of `distill.labels` (`AU_BLENDSHAPES`, anchors fitted on the
   training rows only: FER+ Train and the CK+ training subjects).
2. **New head.** A linear head on the base student's `features` embedding (its own int8/fp32 graph, run here):
   intensity = 5 * sigmoid, regressing the calibrated signal; occurrence = sigmoid, on the human CK+ FACS codes
   where they exist (AU7, 10, 14, 23 on training subjects, weight 1) and the calibrated intensity >= 1 elsewhere
   (weight `PSEUDO_OCCURRENCE_WEIGHT`). Fitted with torch in seconds (`distill.au_heads`).
3. **Source by measurement** on the CK+ *validation* subjects (`distill.dataset.ck_split`): the head's occurrence
   probability vs the raw blendshape score, AUC against the human code; the higher wins. AU45 and AU28 have no
   human codes in CK+: AU45 is measured against an eye-aspect-ratio "closed" reference on the shared videos when
   they are given (`distill.blink_check`), else unmeasured; AU28 is unmeasured. An unmeasured AU keeps the
   blendshape mapping (the head was trained only to imitate it, so it cannot be shown to be better).
4. **Test once.** The chosen sources, through the runtime's own path (`StudentModel` + `BlendshapeAUs`, mirror
   on and off), on the CK+ *test* subjects: per-AU AUC for every AU with positives.
5. **Ship.** `<weights>/<name>.onnx` = base graph + heads (`distill.au_heads.append_heads`); the card's
   `blendshape_aus` entry carries the AUs whose source is the mapping; the manifest and `weights/cards/<name>.md`.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


from .data.prepare import CK_AUS, PreparedSplit
from .data.records import EXPRESSIONS
from .dataset import PSEUDO_OCCURRENCE_WEIGHT, ck_split, grey_crops
from .labels import (AU_BLENDSHAPES, OPENFACE_AU_INTENSITY, OPENFACE_AU_OCCURRENCE, au_name, au_scores,
                     fit_calibration)
from .metrics import _auc

NEW_AUS: tuple[int, ...] = (7, 10, 14, 23, 28, 45)
"""The AUs `add-aus` adds (OpenFace's set minus DISFA's 12); AU28 is occurrence only."""
NEW_INTENSITY: tuple[int, ...] = tuple(a for a in NEW_AUS if a in OPENFACE_AU_INTENSITY)
DEFAULT_SLOPE = 4.0
"""Logistic slope of the mapping's probability (p = 0.5 at the trace anchor, intensity 1) where no human codes exist."""


@dataclass
class Rows:
    """The prepared faces add-aus works on (N rows).

    Attributes:
        grey: (N, S, S) uint8 aligned crops (grey, as the students see them).
        blendshapes: (N, 52) float32, NaN where the landmarker missed the face.
        raw: (N, 6) float32 raw blendshape scores of `NEW_AUS`.
        human: (N, 6) int8 CK+ FACS codes of `NEW_AUS` (-1 unknown).
        codes: (N, len(CK_AUS)) int8 every CK+ FACS code (-1 unknown).
        subject: (N,) str CK+ subject ("" for FER+).
        part: (N,) str "fer_train", "fer_valid", "ck_train", "ck_valid" or "ck_test".
        neutral: (N,) bool FER+ majority vote is neutral.
    """

    grey: np.ndarray
    blendshapes: np.ndarray
    raw: np.ndarray
    human: np.ndarray
    codes: np.ndarray
    subject: np.ndarray
    part: np.ndarray
    neutral: np.ndarray


def load_rows(prepared: Path) -> Rows:
    """FER+ Train / Valid and every CK+ subject (tagged by `ck_split`) from `<prepared>/{ferplus,ckplus}/*.npz`."""
    parts = []
    for path, tag in ((prepared / "ferplus" / "train.npz", "fer_train"), (prepared / "ferplus" / "valid.npz", "fer_valid"),
                      (prepared / "ckplus" / "train.npz", "ck")):
        if not path.exists():
            raise FileNotFoundError(f"{path}: not prepared; run `libreface-distill prepare` first")
        p = PreparedSplit.load(path)
        human = np.full((len(p), len(NEW_AUS)), -1, np.int8)
        for j, au in enumerate(NEW_AUS):
            if au in CK_AUS:
                human[:, j] = p.au_occurrence[:, CK_AUS.index(au)]
        part = np.array([f"ck_{s}" for s in ck_split(p.subjects.astype(str))]) if tag == "ck" else np.array([tag] * len(p))
        votes = p.votes.astype(np.float32)
        neutral = (votes.sum(1) > 0) & (votes.argmax(1) == EXPRESSIONS.index("neutral")) & (tag != "ck")
        grey = grey_crops(p.crops)
        parts.append(Rows(grey, p.blendshapes.astype(np.float32), au_scores(p.blendshapes, NEW_AUS), human,
                          p.au_occurrence.astype(np.int8), p.subjects.astype(str), part, neutral))
    return Rows(**{k: np.concatenate([getattr(r, k) for r in parts]) for k in Rows.__dataclass_fields__})


def run_model(path: Path, grey: np.ndarray, mirror: bool, threads: int = 2) -> dict[str, np.ndarray]:
    """The runtime's session on (N, S, S) grey crops -> its output arrays (`predict.run_grey`)."""
    from libreface.models.session import StudentModel

    from .predict import run_grey

    return run_grey(StudentModel(path, threads=threads, mirror=mirror), grey)


def _mapping_probability(intensity: np.ndarray, human: np.ndarray) -> dict:
    """Logistic map intensity -> probability, fitted on CK+ training codes when there are >= 5 positives."""
    ok = (human >= 0) & ~np.isnan(intensity)
    if (human[ok] == 1).sum() >= 5 and (human[ok] == 0).sum() >= 5:
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=1.0).fit(intensity[ok, None], human[ok])
        return {"slope": float(lr.coef_[0, 0]), "intercept": float(lr.intercept_[0]), "fitted_on": "ck+ training codes"}
    return {"slope": DEFAULT_SLOPE, "intercept": -DEFAULT_SLOPE, "fitted_on": "fixed: p = 0.5 at the trace anchor"}


def add_aus(base: str, name: str, out_dir: Path, prepared: Path | None = None, weights_dir: Path | None = None,
            threads: int = 2, videos: list[Path] | None = None, write: bool = True, steps: int = 300) -> dict:
    """Fit, select, test and (with `write`) ship `<name>` = `base` + OpenFace's remaining AUs (module docstring).

    `steps`: full-batch Adam steps of each head fit. Returns the result written to `<out_dir>/metrics.json` (per-AU
    validation choice and held-out test AUC).
    """
    import torch  # noqa: F401 - fail early without the train extra

    from libreface.models.blendshape_aus import CARD_ENTRY, BlendshapeAUs
    from libreface.models.session import CARD_KEY, ModelCard, StudentModel

    from .au_heads import append_heads, fit_intensity_heads, fit_occurrence_heads
    from .cards import write_added_aus_card
    from .export import update_manifest
    from .paths import WEIGHTS, cache_dir

    t0 = time.time()
    weights_dir = Path(weights_dir or WEIGHTS)
    prepared = Path(prepared or cache_dir() / "prepared")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    base_model = StudentModel.load(base, threads=threads)
    base_path, base_card = base_model.path, base_model.card
    if tuple(base_card.au_occurrence) != tuple(base_card.au_intensity) or any(au_name(a) in base_card.au_occurrence for a in NEW_AUS):
        raise ValueError(f"{base_path}: add-aus needs a 12-AU student (same intensity / occurrence AUs), got {base_card.au_occurrence}")
    rows = load_rows(prepared)
    feats = run_model(base_path, rows.grey, mirror=False, threads=threads)["features"]

    # 1. teacher signal: calibration on the training rows only
    train = np.isin(rows.part, ["fer_train", "ck_train"])
    det = ~np.isnan(rows.raw[:, 0])
    fer_tr, ck_tr = (rows.part == "fer_train") & det, (rows.part == "ck_train") & det
    cal = fit_calibration(rows.raw[fer_tr], rows.neutral[fer_tr], rows.raw[ck_tr], rows.human[ck_tr])
    inten = cal.intensity(rows.raw)

    # 2. heads on the base's embedding
    icols = [NEW_AUS.index(a) for a in NEW_INTENSITY]
    target_i = np.where(train[:, None], inten[:, icols], np.nan)
    human_tr = (rows.human >= 0) & train[:, None]
    occ_t = np.where(human_tr, rows.human.clip(0, 1), (inten >= 1.0)).astype(np.float32)
    occ_w = np.where(human_tr, 1.0, np.where(train[:, None] & det[:, None], PSEUDO_OCCURRENCE_WEIGHT, 0.0)).astype(np.float32)
    heads_i = fit_intensity_heads(feats, target_i, steps=steps)
    heads_o = fit_occurrence_heads(feats, occ_t, occ_w, steps=steps)

    card = {**json.loads(base_model.session.get_modelmeta().custom_metadata_map[CARD_KEY]),
            "name": name, "version": name.rsplit(".", 1)[-1],
            "au_intensity": [au_name(a) for a in OPENFACE_AU_INTENSITY],
            "au_occurrence": [au_name(a) for a in OPENFACE_AU_OCCURRENCE],
            "base": base_card.name, "added_aus_calibration": {"aus": [au_name(a) for a in NEW_AUS], **json.loads(cal.to_json())}}
    with tempfile.TemporaryDirectory() as tmp:
        heads_only = Path(tmp) / f"{name}.heads.onnx"
        append_heads(base_path, heads_only, card, heads_i, [au_name(a) for a in NEW_INTENSITY], heads_o,
                     [au_name(a) for a in NEW_AUS])
        ev = np.isin(rows.part, ["ck_valid", "ck_test", "fer_valid"])
        views = {v: run_model(heads_only, rows.grey[ev], mirror=v == "mirror", threads=threads) for v in ("plain", "mirror")}
        blink = None
        if videos:
            from .blink_check import blink_reference

            blink = blink_reference(heads_only, videos, threads=threads)

        # 3. choice on the CK+ validation subjects (mirror view: the analyzer's default)
        part_ev, human_ev, raw_ev = rows.part[ev], rows.human[ev], rows.raw[ev]
        occ_idx = [card["au_occurrence"].index(au_name(a)) for a in NEW_AUS]
        per_au: dict[str, dict] = {}
        entry: dict[str, dict] = {}
        for j, au in enumerate(NEW_AUS):
            nm = au_name(au)
            v = (part_ev == "ck_valid") & (human_ev[:, j] >= 0) & ~np.isnan(raw_ev[:, j])
            y = human_ev[v, j]
            d = {"blendshapes": list(AU_BLENDSHAPES[au]), "valid_n_pos": int((y == 1).sum()), "valid_n": int(v.sum()),
                 "valid_auc_head": _auc(y, views["mirror"]["au_occurrence"][v, occ_idx[j]]),
                 "valid_auc_head_plain": _auc(y, views["plain"]["au_occurrence"][v, occ_idx[j]]),
                 "valid_auc_blendshapes": _auc(y, raw_ev[v, j])}
            if d["valid_n_pos"] > 0 and not np.isnan(d["valid_auc_head"]):
                d["source"] = "head" if d["valid_auc_head"] > d["valid_auc_blendshapes"] else "blendshapes"
                d["measured_against"] = "CK+ FACS codes of the validation subjects"
            elif au == 45 and blink and not np.isnan(blink.get("auc_head", np.nan)):
                d.update({f"video_{k}": val for k, val in blink.items()})
                d["source"] = "head" if blink["auc_head"] > blink["auc_blendshapes"] else "blendshapes"
                d["measured_against"] = "eye-aspect-ratio 'closed' reference on the shared videos (distill/blink_check.py)"
            else:
                d["source"] = "blendshapes"
                d["measured_against"] = "unmeasured: no human codes here; the mapping is kept (the head only imitates it)"
            fv = (part_ev == "fer_valid") & ~np.isnan(raw_ev[:, j])
            d["fer_valid_agreement_auc"] = _auc((inten[ev][fv, j] >= 1).astype(int), views["mirror"]["au_occurrence"][fv, occ_idx[j]])
            if d["source"] == "blendshapes":
                prob = _mapping_probability(inten[ck_tr, j], rows.human[ck_tr, j])
                entry[nm] = {"blendshapes": list(AU_BLENDSHAPES[au]),
                             "anchors": [cal.neutral[j], cal.trace[j], cal.top[j]],
                             "probability": {"slope": prob["slope"], "intercept": prob["intercept"]}}
                d["probability"] = prob
            per_au[nm] = d
        card[CARD_ENTRY] = entry
        card["added_aus"] = {k: {kk: vv for kk, vv in v.items() if not kk.startswith("video_")} for k, v in per_au.items()}

        # 4. the shipped file, scored once on the CK+ test subjects through the runtime's own path
        final = Path(tmp) / f"{name}.onnx"
        append_heads(base_path, final, card, heads_i, [au_name(a) for a in NEW_INTENSITY], heads_o,
                     [au_name(a) for a in NEW_AUS])
        mc = ModelCard.from_json(json.dumps(card), str(final))
        rules = BlendshapeAUs.from_card(mc)
        te = rows.part == "ck_test"
        bs_te = rows.blendshapes[te]
        test: dict[str, dict] = {}
        codes = {a: CK_AUS.index(a) for a in OPENFACE_AU_OCCURRENCE if a in CK_AUS}
        ck_te_codes = rows.codes[te]
        for view in ("plain", "mirror"):
            out = run_model(final, rows.grey[te], mirror=view == "mirror", threads=threads)
            if rules is not None:
                for i in range(len(out["au_occurrence"])):
                    if not np.isnan(bs_te[i, 0]):
                        o = rules.apply(bs_te[i], {"au_intensity": out["au_intensity"][i], "au_occurrence": out["au_occurrence"][i]})
                        out["au_intensity"][i], out["au_occurrence"][i] = o["au_intensity"], o["au_occurrence"]
            for a, c in codes.items():
                nm = au_name(a)
                y = ck_te_codes[:, c]
                ok = y >= 0
                t = test.setdefault(nm, {"n_pos": int((y[ok] == 1).sum()), "n": int(ok.sum())})
                t[f"auc_{view}"] = _auc(y[ok], out["au_occurrence"][ok, card["au_occurrence"].index(nm)])
                if nm in card["au_intensity"]:
                    t[f"auc_intensity_{view}"] = _auc(y[ok], out["au_intensity"][ok, card["au_intensity"].index(nm)])
        for j, au in enumerate(NEW_AUS):  # the losing source on test too, for the record (not used to choose)
            if au in codes:
                y = ck_te_codes[:, codes[au]]
                ok = (y >= 0) & ~np.isnan(rows.raw[te, j])
                test[au_name(au)]["auc_blendshapes"] = _auc(y[ok], rows.raw[te][ok, j])
        result = {"base": base_card.name, "name": name, "added": per_au, "test": test, "blink_reference": blink,
                  "calibration": card["added_aus_calibration"],
                  "n": {p: int((rows.part == p).sum()) for p in np.unique(rows.part)},
                  "ck_subjects": {p: len(set(rows.subject[rows.part == p])) for p in ("ck_train", "ck_valid", "ck_test")},
                  "seconds": round(time.time() - t0, 1)}
        (out_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=float))
        (out_dir / "metrics.md").write_text(markdown(result))
        if write:
            target = weights_dir / f"{name}.onnx"
            target.write_bytes(final.read_bytes())
            update_manifest([{"name": name, "file": target.name, "kind": "student"}], weights_dir)
            result["card_md"] = str(write_added_aus_card(name, result, weights_dir / "cards", markdown(result)))
            result["weights"] = str(target)
    return result


def _f(v) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f}"


def markdown(result: dict) -> str:
    """The Markdown form of `add_aus`'s result."""
    n = result["n"]
    lines = [f"# {result['name']}: {result['base']} + OpenFace's remaining AUs", "",
             "Source of each added AU, chosen on the CK+ validation subjects (numbers = 1 mod 5, never trained on by the new "
             "heads) by AUC of the occurrence score against the human FACS code; mirror view (the analyzer's default).", "",
             "| AU | blendshapes | valid n+ / n | head AUC % (plain) | blendshape AUC % | chosen | measured against | "
             "FER+ Valid head-vs-mapping agreement AUC % |", "|---|---|---|---:|---:|---|---|---:|"]
    for nm, d in result["added"].items():
        head = f"{_f(d['valid_auc_head'])} ({_f(d['valid_auc_head_plain'])})"
        bsh = _f(d["valid_auc_blendshapes"])
        if "video_auc_head" in d:
            head, bsh = f"{_f(d['video_auc_head'])} (video)", f"{_f(d['video_auc_blendshapes'])} (video)"
        lines.append(f"| {nm} | {', '.join(d['blendshapes'])} | {d['valid_n_pos']} / {d['valid_n']} | {head} | {bsh} | "
                     f"**{d['source']}** | {d['measured_against']} | {_f(d['fer_valid_agreement_auc'])} |")
    lines += ["", "Held-out test: CK+ test subjects (numbers divisible by 5), scored once with the chosen sources through the "
              "runtime (`StudentModel` + `libreface.models.blendshape_aus`). Occurrence-probability AUC % vs the human code, "
              "every AU with CK+ codes; the 12 DISFA AUs are the base student's own heads.", "",
              "| AU | n+ / n | AUC % mirror | AUC % plain | intensity AUC % mirror | losing/other source: blendshape AUC % |",
              "|---|---|---:|---:|---:|---:|"]
    for nm, t in result["test"].items():
        lines.append(f"| {nm} | {t['n_pos']} / {t['n']} | {_f(t.get('auc_mirror'))} | {_f(t.get('auc_plain'))} | "
                     f"{_f(t.get('auc_intensity_mirror'))} | {_f(t.get('auc_blendshapes'))} |")
    lines += ["", f"Rows: {', '.join(f'{k} {v}' for k, v in n.items())}; CK+ subjects {result['ck_subjects']}. "
              "AU28 and AU45 have no CK+ codes: see 'measured against'. AU23's mapping (mouthPress) is a proxy: ARKit "
              "blendshapes have no lip-tightening shape. Intensities of added AUs follow the calibrated blendshape signal "
              "(no human intensity codes here).", f"", f"Wall time {result['seconds']} s.", ""]
    return "\n".join(lines)
