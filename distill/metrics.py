"""Evaluation metrics: predictions of a table -> accuracy, macro-F1, AU AUC / F1 (no model, no torch).

What each number is measured against:

* FER+ accuracy / macro-F1 / per-class recall: the majority vote of the 10 FER+ annotators (`label.csv`, first
  maximum; images whose majority is unknown / not-a-face are excluded), FER2013Test split.
* CK+ expression accuracy: the CK+ emotion label of the sequence, on CK+ subjects kept out of
  training (`ck_test`); CK+ has no neutral class, the prediction is the arg-max over all 8.
* AU AUC / F1: the human CK+ FACS occurrence codes of the `ck_test` subjects, per DISFA AU; F1 at
  the model's documented threshold (0.5). The blendshape baseline scores the same faces with the
  raw blendshape AU score (`distill.labels.au_scores`); its F1 uses the calibrated trace anchor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data.records import EXPRESSIONS
from .dataset import Table
from .labels import AU_SETS, AUSet

OCCURRENCE_THRESHOLD = 0.5
"""Probability at or above which an AU counts as present (written into every model card)."""


def _macro_f1(y: np.ndarray, p: np.ndarray, n: int) -> float:
    f1s = []
    for c in range(n):
        tp = np.sum((p == c) & (y == c))
        denom = np.sum(p == c) + np.sum(y == c)
        if np.sum(y == c) > 0:
            f1s.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(f1s)) if f1s else float("nan")


@dataclass
class Scores:
    """Expression scores of one model on one set of faces.

    Attributes:
        n: faces scored.
        accuracy: share of faces whose arg-max is the majority vote (NaN when n = 0).
        macro_f1: mean F1 over the classes present among the labels (NaN when n = 0).
        recall: (C,) per-class recall (NaN for a class with no face).
        class_n: (C,) faces per class (by label).
    """

    n: int
    accuracy: float
    macro_f1: float
    recall: np.ndarray
    class_n: np.ndarray

    def to_dict(self) -> dict:
        return {"n": self.n, "accuracy": _nan_none(self.accuracy), "macro_f1": _nan_none(self.macro_f1),
                "recall": {c: _nan_none(r) for c, r in zip(EXPRESSIONS, self.recall)},
                "class_n": {c: int(k) for c, k in zip(EXPRESSIONS, self.class_n)}}


def _nan_none(v: float) -> float | None:
    return None if np.isnan(v) else float(v)


def score(y: np.ndarray, p: np.ndarray, n_classes: int = len(EXPRESSIONS)) -> Scores:
    """Accuracy, macro-F1 and per-class recall of (N,) int predicted classes `p` against (N,) int labels `y`."""
    y, p = np.asarray(y, np.int64), np.asarray(p, np.int64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and predictions {p.shape} must be two equal 1-D arrays")
    class_n = np.bincount(y, minlength=n_classes)[:n_classes]
    hits = np.bincount(y[y == p], minlength=n_classes)[:n_classes]
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(class_n > 0, hits / class_n, np.nan)
    n = len(y)
    return Scores(n, float((y == p).mean()) if n else float("nan"), _macro_f1(y, p, n_classes) if n else float("nan"),
                  recall.astype(np.float64), class_n.astype(np.int64))


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return float("nan")
    return float(roc_auc_score(y, s))


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float(np.sum(pred & (y == 1)))
    denom = float(pred.sum() + (y == 1).sum())
    return 2 * tp / denom if denom else float("nan")


def task_metrics(pred: dict[str, np.ndarray], table: Table, au_threshold: float = OCCURRENCE_THRESHOLD,
                 aus: AUSet = AU_SETS["disfa"]) -> dict:
    """Metrics of predictions on a table (see the module docstring for what each is measured against).

    Args:
        pred: `expression` (N, 8), `au_intensity` (N, len(aus.intensity)) 0..5, `au_occurrence` (N, len(aus.occurrence))
            probabilities, in `aus` order (what `predict.predict` returns for a run of that AU set).
        table: the rows, with AU columns in `aus.occurrence` order (`build_tables(aus=aus.name)`).
        aus: the AU set of both (default DISFA's 12).
    """
    m: dict = {}
    fer = (table.source == "ferplus") & table.expr_mask
    if fer.any():
        y = table.expr[fer].argmax(1)
        p = pred["expression"][fer].argmax(1)
        sc = score(y, p)
        m["fer_accuracy"] = sc.accuracy
        m["fer_macro_f1"] = sc.macro_f1
        m["fer_n"] = sc.n
        m["fer_confusion"] = np.bincount(y * len(EXPRESSIONS) + p, minlength=len(EXPRESSIONS) ** 2).reshape(8, 8).tolist()
        m["fer_recall"] = {c: {"n": int(sc.class_n[k]), "recall": float(sc.recall[k])} for k, c in enumerate(EXPRESSIONS)}
    ck = (table.source == "ckplus") & table.expr_mask
    if ck.any():
        y = table.expr[ck].argmax(1)
        p = pred["expression"][ck].argmax(1)
        m["ck_accuracy"] = float((y == p).mean())
        m["ck_n"] = int(ck.sum())
        m["ck_confusion"] = np.bincount(y * 8 + p, minlength=64).reshape(8, 8).tolist()
    known = table.occ_human >= 0
    if known.any():
        per_au = {}
        for j, (au, name) in enumerate(zip(aus.occurrence, aus.occurrence_names)):
            rows = known[:, j]
            if not rows.any():  # an AU the human codes never cover (AU28, AU45 in CK+)
                continue
            y = table.occ_human[rows, j]
            inten = pred["au_intensity"][rows, aus.intensity.index(au)] if au in aus.intensity else None
            per_au[name] = {
                "n_pos": int((y == 1).sum()),
                "n": int(rows.sum()),
                "auc": _auc(y, pred["au_occurrence"][rows, j]),
                "f1": _f1(y, pred["au_occurrence"][rows, j] >= au_threshold),
                "auc_intensity": _auc(y, inten) if inten is not None else float("nan"),
            }
        m["au"] = per_au
        m["au_mean_auc"] = float(np.nanmean([v["auc"] for v in per_au.values()]))
        m["au_mean_f1"] = float(np.nanmean([v["f1"] for v in per_au.values()]))
    return m


def baseline_metrics(table: Table, trace: list[float], aus: AUSet = AU_SETS["disfa"]) -> dict:
    """The blendshape-mapping baseline on the same faces: raw AU scores as occurrence scores (`trace`: the calibrated
    trace anchor per column of `aus.occurrence`)."""
    known = table.occ_human >= 0
    per_au = {}
    for j, name in enumerate(aus.occurrence_names):
        rows = known[:, j] & ~np.isnan(table.au_raw[:, j])
        if not rows.any():
            continue
        y = table.occ_human[rows, j]
        s = table.au_raw[rows, j]
        per_au[name] = {"n_pos": int((y == 1).sum()), "n": int(rows.sum()), "auc": _auc(y, s), "f1": _f1(y, s >= trace[j])}
    return {"au": per_au, "au_mean_auc": float(np.nanmean([v["auc"] for v in per_au.values()])),
            "au_mean_f1": float(np.nanmean([v["f1"] for v in per_au.values()]))}
