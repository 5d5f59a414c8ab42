"""Filming augmentations, class balance and the landmark-geometry AU signal (distill.augment, distill.au_geometry)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch", reason="the train extra (torch) is not installed")

import torch  # noqa: E402

from distill.augment import (AugmentOptions, balanced_order, class_weights, occlude, occlusion_masks,  # noqa: E402
                             relight, yaw_warp)


def _batch(b=8, s=32, seed=0):
    return torch.rand(b, s, s, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("fn", [lambda x, g: yaw_warp(x, 45, g), lambda x, g: occlude(x, 1.0, g),
                                lambda x, g: relight(x, 1.0, g)])
def test_shape_dtype_range_and_seed_determinism(fn):
    x = _batch()
    a = fn(x, torch.Generator().manual_seed(3))
    b = fn(x, torch.Generator().manual_seed(3))
    c = fn(x, torch.Generator().manual_seed(4))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal(a, b) and not torch.equal(a, c) and not torch.equal(a, x)


def test_yaw_zero_is_identity_and_yaw_foreshortens():
    x = _batch()
    assert torch.allclose(yaw_warp(x, 0.0, torch.Generator().manual_seed(0)), x, atol=1e-6)
    from distill.augment import yaw_grid

    grid = yaw_grid(torch.tensor([0.0, 45.0]), 33)
    lin = torch.linspace(-1, 1, 33)
    assert torch.allclose(grid[0, 16, :, 0], lin, atol=1e-6)  # yaw 0: identity grid
    # yaw 45: the output's middle row samples a wider span of the source (the turned face is narrower), asymmetrically
    row = grid[1, 16, :, 0]
    assert row[0] < -1 and row[-1] > 1 and abs(float(row[0] + row[-1])) > 0.05 and abs(float(row[16])) < 1e-6


def test_occlusion_area_bounds():
    g = torch.Generator().manual_seed(0)
    for max_area in (0.3, 0.1):
        m = occlusion_masks(500, 64, g, max_area).float().mean(dim=(1, 2))
        assert float(m.max()) <= max_area + 1e-9 and float(m.min()) > 0
    with pytest.raises(ValueError):
        occlusion_masks(1, 64, g, 1.5)


def test_off_by_default_draws_nothing():
    from distill.train import TrainConfig, augment

    cfg = TrainConfig(name="x", stage="student", arch="au_r10t")
    assert not cfg.augment_options.active and cfg.balance == "none" and cfg.au_sources == {}
    imgs = (torch.rand(6, 32, 32, generator=torch.Generator().manual_seed(1)) * 255).to(torch.uint8)
    a = augment(imgs, "strong", torch.Generator().manual_seed(2))
    b = augment(imgs, "strong", torch.Generator().manual_seed(2), extra=AugmentOptions())
    on = augment(imgs, "strong", torch.Generator().manual_seed(2), extra=AugmentOptions(yaw_deg=45, yaw_p=1,
                                                                                           occlusion=1, lighting=1))
    assert torch.equal(a, b) and on.shape == a.shape == (6, 3, 32, 32) and not torch.equal(a, on)
    with pytest.raises(ValueError):
        TrainConfig(name="x", stage="student", arch="au_r10t", balance="oversample")


def test_class_weights_and_sampler_move_toward_balance():
    rng = np.random.default_rng(0)
    n, c = 4000, 8
    p = np.array([0.4, 0.3, 0.15, 0.1, 0.03, 0.01, 0.005, 0.005])
    labels = rng.choice(c, n, p=p)
    expr = np.eye(c, dtype=np.float32)[labels]
    mask = np.ones(n, bool)
    w = class_weights(expr, mask, power=0.5, cap=5.0)
    assert w.shape == (c,) and w.dtype == np.float32
    assert np.all(np.diff(w[np.argsort(-p)]) >= -1e-6)  # rarer -> heavier
    assert w.max() / w.min() <= 5.0 + 1e-5 and abs(float((expr.mean(0) * w).sum()) - 1) < 1e-5
    order = balanced_order(np.ones(n), expr, mask, w, np.random.default_rng(1))
    assert len(order) == n
    before = np.bincount(labels, minlength=c) / n
    after = np.bincount(labels[order], minlength=c) / n
    assert after[5:].sum() > 2 * before[5:].sum() and after[0] < before[0]
    assert after.std() < before.std()


def test_class_weighted_loss_targets():
    from distill.train import _batch_labels
    from types import SimpleNamespace

    t = SimpleNamespace(expr=np.eye(8, dtype=np.float32)[[0, 5]], expr_mask=np.ones(2, bool),
                        au=np.zeros((2, 12), np.float32), occ=np.zeros((2, 12), np.float32),
                        occ_w=np.zeros((2, 12), np.float32))
    w = np.arange(1, 9, dtype=np.float32)
    out = _batch_labels(t, np.array([0, 1]), w)
    assert float(out["expr"][0, 0]) == 1 and float(out["expr"][1, 5]) == 6


# ---------------------------------------------------------------------------------------------
# landmark geometry


def _face(n=4, seed=0):
    return np.random.default_rng(seed).normal(0, 50, (n, 478, 3)).astype(np.float32) + 200


def test_geometry_features_scale_free_and_directional():
    from distill.au_geometry import BROW_INNER, CHIN, EYE_INNER, GEOMETRY_AUS, GeometryScaler, feature_array

    lm = _face()
    f = feature_array(lm)
    assert f.shape == (4, 3, 2) and f.dtype == np.float32
    assert np.allclose(feature_array(lm * 3 + 7), f, atol=1e-5)  # size- and position-free
    scaler = GeometryScaler.fit(f)
    base = scaler.scores(f)
    lowered = lm.copy()  # brows pulled halfway toward the inner eye corners: AU4 stronger
    for b, e in zip(BROW_INNER, EYE_INNER):
        lowered[:, b] = (lowered[:, b] + lowered[:, e]) / 2
    opened = lm.copy()  # the chin moved away from the nose base: AU26 stronger
    opened[:, CHIN] += 3 * (opened[:, CHIN] - opened[:, 2])
    j4, j26 = GEOMETRY_AUS.index(4), GEOMETRY_AUS.index(26)
    assert np.all(scaler.scores(feature_array(lowered))[:, j4] > base[:, j4])
    assert np.all(scaler.scores(feature_array(opened))[:, j26] > base[:, j26])
    with pytest.raises(ValueError):
        feature_array(np.zeros((2, 468, 3)))


def test_prepared_split_landmarks_optional(tmp_path):
    from distill.data.prepare import CK_AUS, PreparedSplit

    n = 3
    kw = dict(keys=np.array(["a", "b", "c"]), crops=np.zeros((n, 8, 8, 3), np.uint8), detected=np.ones(n, bool),
              blendshapes=np.zeros((n, 52), np.float32), pose_deg=np.zeros((n, 3), np.float32),
              votes=np.zeros((n, 8), np.float32), au_occurrence=np.full((n, len(CK_AUS)), -1, np.int8),
              au_intensity=np.full((n, 12), np.nan, np.float32), subjects=np.array(["", "", ""]))
    PreparedSplit(**kw).save(tmp_path / "old.npz")
    assert PreparedSplit.load(tmp_path / "old.npz").landmarks is None  # caches made before landmarks load
    PreparedSplit(**kw, landmarks=_face(n)).save(tmp_path / "new.npz")
    assert np.array_equal(PreparedSplit.load(tmp_path / "new.npz").landmarks, _face(n))


def test_build_tables_au_sources_switch(tmp_path):
    from test_add_aus import _prepared

    from distill.data.prepare import PreparedSplit
    from distill.dataset import build_tables
    from distill.labels import DISFA_AUS

    _prepared(tmp_path, np.random.default_rng(0))
    base, _ = build_tables(tmp_path)
    with pytest.raises(ValueError, match="landmarks"):
        build_tables(tmp_path, au_sources={"AU04": "geometry"})
    for path in tmp_path.rglob("*.npz"):
        p = PreparedSplit.load(path)
        p.landmarks = _face(len(p), seed=len(p))
        p.save(path)
    tables, _ = build_tables(tmp_path, au_sources={"AU04": "geometry"})
    j4 = DISFA_AUS.index(4)
    other = [j for j in range(12) if j != j4]
    t0, t1 = base["train"], tables["train"]
    assert np.allclose(t0.au[:, other], t1.au[:, other], equal_nan=True)
    assert not np.allclose(t0.au[:, j4], t1.au[:, j4], equal_nan=True)
    assert np.array_equal(t0.au_raw, t1.au_raw, equal_nan=True)  # the blendshape baseline is kept
    with pytest.raises(ValueError, match="au_sources"):
        build_tables(tmp_path, au_sources={"AU12": "geometry"})
