"""Benchmark scoring: MOT-style identity figures (ID switches, fragmentations, ID accuracy) of predicted persons."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class IdentityScore:
    """MOT-style identity figures of predicted person ids against true identities.

    Attributes:
        rows: face rows scored. id_switches: over each true identity's rows in frame order, times the predicted
            person changes between two consecutive rows that both have a person (flagged rows are skipped).
        fragmentations: times a true identity's run of its main predicted person is interrupted (by another person
            or by -1) and resumed later.
        extra_persons: sum over true identities of (distinct predicted persons - 1).
        flagged_rows: rows predicted -1. id_accuracy: share of rows whose prediction is the person matched one-to-one
            (Hungarian, on row counts) to their true identity; equals IDF1 here, as every true row has one
            prediction.
    """

    rows: int
    id_switches: int
    fragmentations: int
    extra_persons: int
    flagged_rows: int
    id_accuracy: float


def score_identities(frames: Sequence[int], truth: Sequence, predicted: Sequence[int]) -> IdentityScore:
    """Count ID switches and fragmentations (MOT-style) of `predicted` person ids against `truth` labels.

    Args:
        frames: (N,) frame index of each face row. truth: (N,) true identity labels (any hashable).
        predicted: (N,) predicted person ids, -1 when flagged.
    """
    from scipy.optimize import linear_sum_assignment

    frames = np.asarray(frames)
    predicted = np.asarray(predicted, np.int64)
    truth = np.asarray(truth, dtype=object)
    switches = frags = extra = 0
    gts = sorted(set(truth.tolist()), key=str)
    for g in gts:
        idx = np.flatnonzero(truth == g)
        seq = predicted[idx[np.argsort(frames[idx], kind="stable")]]
        named = seq[seq >= 0]
        switches += int(np.count_nonzero(named[1:] != named[:-1]))
        if len(named):
            main = Counter(named.tolist()).most_common(1)[0][0]
            on = seq == main
            runs = int(np.count_nonzero(on[1:] & ~on[:-1])) + int(on[0])
            frags += max(0, runs - 1)
            extra += len(set(named.tolist())) - 1
    preds = sorted(set(predicted.tolist()) - {-1})
    counts = np.zeros((len(gts), max(1, len(preds))))
    for i, g in enumerate(gts):
        for j, p in enumerate(preds):
            counts[i, j] = np.count_nonzero((truth == g) & (predicted == p))
    r, c = linear_sum_assignment(-counts)
    acc = float(counts[r, c].sum() / len(predicted)) if len(predicted) else float("nan")
    return IdentityScore(int(len(predicted)), switches, frags, extra, int(np.count_nonzero(predicted < 0)), acc)
