"""Identity step, clustering: DBSCAN over tracklet mean embeddings -> one label per tracklet (-1 = noise)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

DEFAULT_EPS = 0.40
"""DBSCAN radius: euclidean distance between unit-length dlib descriptors (= sqrt(2 - 2 cos)), applied to tracklet
means.

Measured by `bench/identity.py` on the shared videos (540 faces, 13 people): single faces of two different people
are closer than 0.39 in 0.1 % of pairs, while 95 % of same-person pairs are (median 0.26). Tracklet means are
steadier than single faces: on multi_face.avi the three men's means are 0.47-0.53 apart and a man's good tracklets
lie within 0.29 of each other; any eps from 0.38 to 0.50 gives the same persons there. 0.40 is the FPR = 0.1 % point
of single faces, rounded up."""


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def cluster_embeddings(X: np.ndarray, eps: float = DEFAULT_EPS, min_samples: int = 2,
                       weights: np.ndarray | None = None) -> np.ndarray:
    """DBSCAN (scikit-learn) on (N, D) unit vectors, euclidean distance; returns (N,) int labels, -1 = noise.

    `weights` (N,) count each point that many times towards `min_samples`."""
    if len(X) == 0:
        return np.zeros(0, np.int64)
    from ..extras import require

    DBSCAN = require("sklearn.cluster", "identity", "identity").DBSCAN
    return DBSCAN(eps=eps, min_samples=min_samples, metric="euclidean").fit_predict(X, sample_weight=weights
                                                                                 ).astype(np.int64)


def cluster_tracklets(vectors: Sequence[np.ndarray], frames: Sequence[Sequence[int]], eps: float = DEFAULT_EPS,
                      min_samples: int = 2, margin: float = 0.05) -> np.ndarray:
    """Group tracklets into persons. Pure function of the embeddings: no model, no image.

    Args:
        vectors: per tracklet, a (n_i, D) array of its unit embeddings (n_i >= 1).
        frames: per tracklet, the frame indices it appears in (two tracklets sharing a frame are two people).
        eps: DBSCAN radius on tracklet means (euclidean, unit vectors).
        min_samples: DBSCAN core weight; each mean weighs its number of embeddings.
        margin: a weak tracklet joins its nearest cluster only if the next one is at least this much farther.

    Returns:
        (T,) int labels, -1 for tracklets that fit no cluster.

    1. A tracklet is *reliable* when it has at least two embeddings and all of them lie within `eps` of its mean.
       DBSCAN runs on the means of the reliable tracklets, each weighted by its number of embeddings.
    2. A cluster holding two tracklets that share a frame is clustered again with eps x 0.85 (up to 4 times).
    3. Weak tracklets (one embedding, or faces that disagree: blur, false detections) never link clusters: each is a
       DBSCAN border point of its nearest cluster (distance to the nearest member mean <= eps, not sharing a frame
       with it, and `margin` closer than any other cluster), or noise (-1).
    """
    T = len(vectors)
    labels = np.full(T, -1, np.int64)
    if T == 0:
        return labels
    means = np.stack([_unit(np.asarray(v, np.float32).mean(0)) for v in vectors])
    counts = np.array([len(v) for v in vectors], np.float64)
    spread = np.array([float(np.linalg.norm(np.asarray(v) - m, axis=1).max()) for v, m in zip(vectors, means)])
    reliable = np.flatnonzero((counts >= 2) & (spread <= eps))
    frame_sets = [set(f) for f in frames]
    if len(reliable):
        sub = cluster_embeddings(means[reliable], eps, min_samples, counts[reliable])
        sub = _split_cooccurring(means[reliable], sub, [frame_sets[i] for i in reliable], eps, min_samples,
                                 counts[reliable])
        labels[reliable] = sub
    core = np.flatnonzero(labels >= 0)
    for i in np.setdiff1d(np.arange(T), reliable):
        best: dict[int, float] = {}
        for j in core:
            c = int(labels[j])
            d = float(np.linalg.norm(means[i] - means[j]))
            best[c] = min(best.get(c, np.inf), d)
        clusters = sorted(best, key=best.get)
        clusters = [c for c in clusters
                    if not any(frame_sets[i] & frame_sets[j] for j in core if labels[j] == c)]
        if clusters and best[clusters[0]] <= eps and (len(clusters) == 1 or
                                                       best[clusters[1]] - best[clusters[0]] >= margin):
            labels[i] = clusters[0]
    return labels


def _split_cooccurring(X, labels, frame_sets, eps, min_samples, weights=None, rounds: int = 4):
    """Two faces in the same frame are two people: a cluster holding points whose frames overlap is clustered
    again with a smaller radius (x0.85 per round, at most `rounds` times)."""
    labels = labels.copy()
    next_label = int(labels.max()) + 1 if len(labels) else 0
    for _ in range(rounds):
        changed = False
        eps *= 0.85
        for c in sorted(set(labels.tolist()) - {-1}):
            idx = np.flatnonzero(labels == c)
            if not _any_overlap([frame_sets[i] for i in idx]):
                continue
            sub = cluster_embeddings(X[idx], eps, min_samples, None if weights is None else weights[idx])
            for s in sorted(set(sub.tolist())):
                labels[idx[sub == s]] = -1 if s < 0 else next_label
                next_label += s >= 0
            changed = True
        if not changed:
            break
    return labels


def _any_overlap(sets: list[set[int]]) -> bool:
    seen: set[int] = set()
    for fr in sets:
        if seen & fr:
            return True
        seen |= fr
    return False
