"""Robustness report (distill.robustness): per-class scores, real-yaw bins, seeded perturbations, the command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from distill.data.records import EXPRESSIONS
from distill.robustness import NO_POSE, SYNTHETIC, score, yaw_bins

REPO = Path(__file__).resolve().parents[1]


def test_score_hand_checked():
    y = np.array([0, 0, 1, 1, 1, 2])
    p = np.array([0, 1, 1, 1, 0, 2])
    s = score(y, p)
    assert s.n == 6 and s.accuracy == pytest.approx(4 / 6)
    assert s.class_n.tolist() == [2, 3, 1, 0, 0, 0, 0, 0]
    assert s.recall[:3].tolist() == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert np.isnan(s.recall[3:]).all()
    # F1 = 2 tp / (predicted + true): class 0 = 2*1/(2+2) = 0.5, class 1 = 2*2/(3+3) = 2/3, class 2 = 2*1/(1+1) = 1;
    # absent classes are not averaged
    assert s.macro_f1 == pytest.approx((0.5 + 2 / 3 + 1.0) / 3)
    d = s.to_dict()
    assert list(d["recall"]) == list(EXPRESSIONS) and d["recall"]["sadness"] is None and d["class_n"]["happiness"] == 3


def test_score_wrong_predictions_of_absent_classes_and_empty():
    s = score(np.array([7, 7, 4]), np.array([7, 5, 5]))  # contempt 1 of 2, anger 0 of 1; disgust only predicted
    assert s.accuracy == pytest.approx(1 / 3)
    assert s.recall[7] == pytest.approx(0.5) and s.recall[4] == 0.0 and np.isnan(s.recall[5])
    assert s.macro_f1 == pytest.approx((2 * 1 / (1 + 2) + 0.0) / 2)
    e = score(np.zeros(0, int), np.zeros(0, int))
    assert e.n == 0 and math.isnan(e.accuracy) and e.to_dict()["accuracy"] is None
    with pytest.raises(ValueError):
        score(np.array([0, 1]), np.array([0]))


def test_yaw_bins_by_absolute_yaw_edges_upward_and_no_pose():
    yaw = np.array([0.0, -14.9, 15.0, -29.99, 30.0, -45.0, np.nan, 14.999])
    idx, names = yaw_bins(yaw)
    assert idx.tolist() == [0, 0, 1, 1, 2, 2, 3, 0]
    assert names == ["real yaw < 15°", "real yaw 15–30°", "real yaw ≥ 30°", NO_POSE]
    assert not any("|" in n for n in names)  # names go into Markdown table cells
    idx, names = yaw_bins(np.array([5.0, -25.0]), edges=(10.0,))
    assert idx.tolist() == [0, 1] and len(names) == 3
    for bad in ((30.0, 15.0), (), (0.0, 10.0)):
        with pytest.raises(ValueError):
            yaw_bins(yaw, bad)


def _crops(n=6, s=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, s, s), dtype=np.uint8)


def test_perturbations_are_seeded_and_change_pixels():
    pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    from distill.robustness import perturb

    x = _crops()
    for c in SYNTHETIC:
        a, b, other = perturb(x, c, 0), perturb(x, c, 0), perturb(x, c, 1)
        assert a.shape == x.shape and a.dtype == np.uint8
        assert np.array_equal(a, b) and not np.array_equal(a, other) and not np.array_equal(a, x), c
    with pytest.raises(ValueError):
        perturb(x, "fog", 0)


def test_fixed_yaw_warp_turns_by_exactly_the_angle_and_default_draws_are_unchanged():
    torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")
    from distill.augment import yaw_grid, yaw_warp

    F = torch.nn.functional
    x = torch.from_numpy(_crops(8)).float() / 255
    out = yaw_warp(x, 30.0, torch.Generator().manual_seed(5), p=1.0, fixed=True)

    def warp(deg):
        return F.grid_sample(x[:, None], yaw_grid(torch.full((8,), deg), 32), mode="bilinear", padding_mode="border",
                             align_corners=True)[:, 0]

    left, right = warp(-30.0), warp(30.0)
    is_left = torch.isclose(out, left, atol=1e-6).flatten(1).all(1)
    is_right = torch.isclose(out, right, atol=1e-6).flatten(1).all(1)
    assert bool((is_left ^ is_right).all()) and 0 < int(is_left.sum()) < 8  # every row exactly ±30°, both signs seen
    # the default (uniform yaw) draws the same numbers as before the option existed
    g = torch.Generator().manual_seed(7)
    yaw = (-45 + 90 * torch.rand(8, generator=g)) * (torch.rand(8, generator=g) < 0.5)
    ref = F.grid_sample(x[:, None], yaw_grid(yaw, 32), mode="bilinear", padding_mode="border", align_corners=True)[:, 0]
    ref = torch.where((yaw == 0)[:, None, None], x, ref)
    assert torch.equal(yaw_warp(x, 45.0, torch.Generator().manual_seed(7), p=0.5), ref)


def test_cli_defaults_to_valid():
    from distill.cli import build_parser

    a = build_parser().parse_args(["robustness", "--onnx", "m.onnx"])
    assert a.split == "valid" and a.threads == 2 and a.limit is None and a.out == Path("reports/robustness")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["robustness", "--onnx", "m.onnx", "--split", "train"])


@pytest.mark.data
def test_robustness_command_on_prepared_valid(tmp_path):
    from distill.cli import main
    from distill.paths import cache_dir

    model = REPO / "weights" / "au_r10t_int8.v7.onnx"
    prepared = cache_dir() / "prepared" / "ferplus" / "valid.npz"
    if not model.is_file() or not prepared.is_file():
        pytest.skip(f"needs {model} and {prepared} (`libreface-distill prepare`): SKIPPED")
    out = tmp_path / "rob"
    assert main(["robustness", "--onnx", str(model), "--out", str(out), "--limit", "120", "--threads", "1"]) == 0
    res = json.loads((out / "robustness.json").read_text())
    md = (out / "robustness.md").read_text()
    assert res["split"] == "valid" and res["n"] == 120 and res["seed"] == 0 and res["limit"] == 120
    names = [c["name"] for c in res["conditions"]]
    assert names[0] == "clean" and names[-len(SYNTHETIC):] == list(SYNTHETIC) and NO_POSE in names
    assert len(res["rows"]) == len(names) and [r["condition"] for r in res["rows"]] == names
    pose = [c for c in res["conditions"] if c["kind"] == "real pose"]
    assert len(pose) == 4 and sum(c["n"] for c in pose) == 120
    for r in res["rows"]:
        assert r["model"] == model.name and list(r["recall"]) == list(EXPRESSIONS)
        assert r["n"] == sum(r["class_n"].values())
    clean = res["rows"][0]
    assert clean["n"] == 120 and 0.5 < clean["accuracy"] <= 1 and 0 < clean["macro_f1"] <= 1
    # the clean faces are the real-pose bins put together
    hits = sum(round(r["accuracy"] * r["n"]) for r in res["rows"] if r["condition"] in {c["name"] for c in pose} and r["n"])
    assert hits == round(clean["accuracy"] * 120)
    assert "FER+ valid" in md and "Seed 0" in md and "python -m distill robustness --onnx" in md
    assert md.count("\n## ") == len(names) + 1  # overview + one table per condition
    widths = {line.count("|") for line in md.splitlines() if line.startswith(f"| {model.name} |")}
    assert widths == {3 + 8 + 1}  # model, acc, macro-F1, 8 recalls
    assert not list(out.glob(".*partial"))
