"""Training tables built from the prepared (aligned) crops: images, expression votes, AU targets, splits.

Splits (all by person where persons are known):

* `train`: FER+ `FER2013Train` + CK+ subjects whose number is neither divisible by 5 nor = 1 (mod 5);
* `valid`: FER+ `FER2013Valid` (model selection);
* `ck_valid`: CK+ subjects whose number is = 1 (mod 5): held out of every training run, used to choose
  checkpoints, defaults, thresholds and sources (with `valid`);
* `test`: FER+ `FER2013Test` (reported, never used to choose anything);
* `ck_test`: CK+ subjects whose number is divisible by 5 (expression accuracy and AU AUC/F1
  against the human FACS codes of people never seen in training; scored once per shipped model);
* `videos`: unlabelled frames sampled from the shared videos (`distill.data.videos`, subject = video stem), only
  when `prepared/videos/train.npz` exists; never part of `train` (label-free MAE pretraining opts in through
  `TrainConfig.extra_train`).

The CK+ subject split is defined in one place: `ck_split` (constants `CK_TEST_EVERY`, `CK_VALID_REMAINDER`).
Models shipped before this split existed (up to au_r10t v6) trained on the `ck_valid` subjects too.

Images are kept as (N, S, S) uint8 grey: every dataset here is grey, and the model card says
`color: gray`, so the runtime feeds the luma of colour frames the same way (`libreface.align.to_model_input`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data.prepare import CK_AUS, PreparedSplit
from .data.records import EXPRESSIONS
from .labels import AUSet, Calibration, au_scores, au_set, fit_calibration

PSEUDO_OCCURRENCE_WEIGHT = 0.3
"""Loss weight of a blendshape pseudo-label for AU occurrence, relative to a human FACS code (1.0)."""

CK_TEST_EVERY = 5
"""CK+ subjects whose number is divisible by this are kept out of training (`ck_test`)."""

CK_VALID_REMAINDER = 1
"""CK+ subjects whose number is = this (mod `CK_TEST_EVERY`) are kept out of training for validation (`ck_valid`)."""

LUMA = np.array([0.299, 0.587, 0.114], np.float32)


@dataclass
class Table:
    """One split, as arrays (N rows).

    Attributes:
        images: (N, S, S) uint8 grey aligned crops.
        expr: (N, 8) float32 expression target distribution (votes / sum), zeros when unlabelled.
        expr_mask: (N,) bool, has an expression label.
        au: (N, A) float32 calibrated AU intensity 0..5 (NaN when the landmarker missed the face); A = the AUs of
            `build_tables(aus=...)` in `AUSet.occurrence` order (12 DISFA AUs by default, 18 for "openface").
        occ: (N, A) float32 AU occurrence target 0/1.
        occ_w: (N, A) float32 loss weight: 1 human code, `PSEUDO_OCCURRENCE_WEIGHT` pseudo, 0 none.
        occ_human: (N, A) int8 human FACS code (-1 unknown, and for AUs CK+ does not code).
        au_raw: (N, A) float32 raw blendshape AU scores (the baseline), NaN when missed.
        geo_feat: (N, 3, 2) float32 landmark-geometry features of `au_geometry.GEOMETRY_AUS` (NaN when the prepared
            split has no landmarks or the face was missed).
        source: (N,) str dataset name ("ferplus", "ckplus", "videos"); subject: (N,) str; key: (N,) str.
    """

    images: np.ndarray
    expr: np.ndarray
    expr_mask: np.ndarray
    au: np.ndarray
    occ: np.ndarray
    occ_w: np.ndarray
    occ_human: np.ndarray
    au_raw: np.ndarray
    geo_feat: np.ndarray
    source: np.ndarray
    subject: np.ndarray
    key: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, idx: np.ndarray) -> "Table":
        return Table(**{k: v[idx] for k, v in self.__dict__.items()})

    @staticmethod
    def concat(tables: list["Table"]) -> "Table":
        return Table(**{k: np.concatenate([getattr(t, k) for t in tables]) for k in tables[0].__dict__})


def grey_crops(crops: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 RGB prepared crops -> (N, S, S) uint8 grey (rounded luma): the images of every table, and of
    every tool that scores prepared crops outside a table (add-aus, robustness, pack)."""
    return np.clip(np.rint(crops.astype(np.float32) @ LUMA), 0, 255).astype(np.uint8)


def _table(p: PreparedSplit, source: str, aus: AUSet) -> Table:
    from .au_geometry import GEOMETRY_AUS, feature_array

    n = len(p)
    if p.landmarks is not None:
        geo = feature_array(p.landmarks)
    elif p.geo_feat is not None:  # a `distill pack` split keeps the features, not the landmarks
        geo = p.geo_feat.astype(np.float32)
    else:
        geo = np.full((n, len(GEOMETRY_AUS), 2), np.nan, np.float32)
    votes = p.votes.astype(np.float32)
    sums = votes.sum(1, keepdims=True)
    a = len(aus.occurrence)
    human = np.full((n, a), -1, np.int8)
    for j, au in enumerate(aus.occurrence):
        if au in CK_AUS:
            human[:, j] = p.au_occurrence[:, CK_AUS.index(au)]
    return Table(
        images=grey_crops(p.crops),
        expr=np.where(sums > 0, votes / np.maximum(sums, 1e-6), 0).astype(np.float32),
        expr_mask=(sums[:, 0] > 0),
        au=np.full((n, a), np.nan, np.float32),
        occ=np.zeros((n, a), np.float32),
        occ_w=np.zeros((n, a), np.float32),
        occ_human=human,
        au_raw=au_scores(p.blendshapes, aus.occurrence),
        geo_feat=geo,
        source=np.array([source] * n),
        subject=p.subjects.astype(str),
        key=p.keys.astype(str),
    )


def ck_split(subjects: np.ndarray) -> np.ndarray:
    """(N,) CK+ subject ids ("S010") -> (N,) str "train", "valid" or "test" (the one definition of the CK+ split;
    an unknown subject "" is "train")."""
    out = []
    for s in subjects:
        r = int(s.lstrip("Ss")) % CK_TEST_EVERY if s != "" else -1
        out.append("test" if r == 0 else "valid" if r == CK_VALID_REMAINDER else "train")
    return np.array(out)


AU_SOURCES = ("blendshape", "geometry", "combined")


def _signal(out: dict[str, Table | None], au_sources: dict[str, str], aus: AUSet) -> dict[str, np.ndarray]:
    """Per split, the raw AU teacher signal: `au_raw` with the columns named in `au_sources` replaced by the landmark
    geometry score ("geometry", `au_geometry.GeometryScaler` fitted on `train`) or by the mean of the blendshape and
    geometry percentile ranks among the training rows ("combined")."""
    from .au_geometry import GEOMETRY_AUS, GeometryScaler, percentile_rank

    names = {f"AU{a:02d}": a for a in GEOMETRY_AUS}
    for au, src in au_sources.items():
        if au not in names or src not in AU_SOURCES:
            raise ValueError(f"au_sources: {au}: {src} is not one of {AU_SOURCES} for one of {sorted(names)}")
    tr = out["train"]
    scaler = GeometryScaler.fit(tr.geo_feat)
    res = {}
    for split, t in out.items():
        if t is None:
            continue
        raw, geo = t.au_raw.copy(), scaler.scores(t.geo_feat)
        for au, src in au_sources.items():
            j, k = aus.occurrence.index(names[au]), GEOMETRY_AUS.index(names[au])
            if src == "geometry":
                raw[:, j] = geo[:, k]
            elif src == "combined":
                tr_geo = scaler.scores(tr.geo_feat)[:, k]
                raw[:, j] = (percentile_rank(tr.au_raw[:, j], t.au_raw[:, j]) + percentile_rank(tr_geo, geo[:, k])) / 2
        res[split] = raw
    return res


def build_tables(prepared_root: Path, au_sources: dict[str, str] | None = None,
                 aus: str = "disfa") -> tuple[dict[str, Table], Calibration]:
    """Read `<prepared_root>/<dataset>/<split>.npz`, fit the AU calibration on `train`, label every split.

    `au_sources` ({"AU04": "geometry", ...}, default none = the blendshape signal for every AU) switches the AU
    intensity / pseudo-occurrence teacher signal of AU4, AU9 or AU26 to "geometry" or "combined" (`_signal`, chosen by
    `distill au-geometry` on the CK+ validation subjects); it needs prepared data with landmarks. `au_raw` stays the
    blendshape baseline. `aus` names the AU columns (`labels.AU_SETS`: "disfa" = 12, "openface" = OpenFace's 18 in
    its order); the added AUs follow the same three steps (`distill.labels`), with human codes where CK+ has them.

    Returns:
        ({"train", "valid", "ck_valid", "test", "ck_test", "videos"} -> Table (missing datasets give no entry),
        calibration fitted on `train` only).
    """
    aset = au_set(aus)
    tables: dict[str, list[Table]] = {"train": [], "valid": [], "ck_valid": [], "test": [], "ck_test": [], "videos": []}
    fer = Path(prepared_root) / "ferplus"
    for split in ("train", "valid", "test"):
        if (fer / f"{split}.npz").exists():
            tables[split].append(_table(PreparedSplit.load(fer / f"{split}.npz"), "ferplus", aset))
    ck_path = Path(prepared_root) / "ckplus" / "train.npz"
    if ck_path.exists():
        ck = _table(PreparedSplit.load(ck_path), "ckplus", aset)
        split = ck_split(ck.subject)
        tables["train"].append(ck.subset(split == "train"))
        tables["ck_valid"].append(ck.subset(split == "valid"))
        tables["ck_test"].append(ck.subset(split == "test"))
    videos_path = Path(prepared_root) / "videos" / "train.npz"
    if videos_path.exists():  # unlabelled frames: a table of their own, never "train"
        tables["videos"].append(_table(PreparedSplit.load(videos_path), "videos", aset))
    if not tables["train"]:
        raise FileNotFoundError(f"{prepared_root}: no prepared datasets; run `libreface-distill prepare` first")
    out = {k: Table.concat(v) if v else None for k, v in tables.items()}
    tr = out["train"]
    if au_sources:
        detected = ~np.isnan(tr.au_raw[:, 0])
        if np.isnan(tr.geo_feat[detected, 0, 0]).any():
            raise ValueError(f"{prepared_root}: au_sources {au_sources} needs landmarks; prepared data made before they "
                             "were stored has none: run `libreface-distill prepare` again")
    raw = _signal(out, au_sources, aset) if au_sources else {k: t.au_raw for k, t in out.items() if t is not None}
    fer_rows = (tr.source == "ferplus") & ~np.isnan(tr.au_raw[:, 0])
    ck_rows = (tr.source == "ckplus") & ~np.isnan(tr.au_raw[:, 0])
    neutral = tr.expr[fer_rows].argmax(1) == EXPRESSIONS.index("neutral")
    cal = fit_calibration(raw["train"][fer_rows], neutral, raw["train"][ck_rows], tr.occ_human[ck_rows])
    for split, t in out.items():
        if t is None:
            continue
        t.au[:] = cal.intensity(raw[split])
        detected = ~np.isnan(t.au[:, 0])
        pseudo = (t.au >= 1.0).astype(np.float32)
        human = t.occ_human >= 0
        t.occ[:] = np.where(human, t.occ_human.clip(0, 1), pseudo)
        t.occ_w[:] = np.where(human, 1.0, np.where(detected[:, None], PSEUDO_OCCURRENCE_WEIGHT, 0.0))
    # only human codes of training subjects are labels; validation- and test-subject codes are for evaluation only
    for held_out in ("ck_valid", "ck_test"):
        if out[held_out] is not None:
            out[held_out].occ_w[:] = 0.0
    return {k: v for k, v in out.items() if v is not None}, cal
