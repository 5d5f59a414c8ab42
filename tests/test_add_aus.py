"""`distill add-aus` on tiny synthetic prepared data: fit, choose, test and ship a 17/18-AU student the runtime loads."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="the train extra (torch) is not installed")

from test_models import _card, _tiny_onnx  # noqa: E402 - the tiny contract graph of the runtime tests


def _prepared(root, rng):
    from distill.data.prepare import CK_AUS, PreparedSplit
    from libreface.landmarks import BLENDSHAPE_NAMES

    squint = [BLENDSHAPE_NAMES.index(n) for n in ("eyeSquintLeft", "eyeSquintRight")]

    def split(n, subjects, coded):
        codes = np.where(coded, (rng.random((n, len(CK_AUS))) < 0.4).astype(np.int8), np.int8(-1))
        crops = rng.integers(0, 255, (n, 16, 16, 3), dtype=np.uint8)
        bs = rng.random((n, 52)).astype(np.float32) * 0.3
        if coded:  # AU7 shows in the crops' brightness and in the squint blendshapes
            au7 = codes[:, CK_AUS.index(7)] == 1
            crops[au7] = np.clip(crops[au7].astype(int) + 60, 0, 255).astype(np.uint8)
            bs[np.ix_(au7, squint)] += 0.5
        bs[:3] = np.nan  # faces the landmarker missed
        votes = rng.multinomial(10, [1 / 8] * 8, size=n).astype(np.float32)
        return PreparedSplit(keys=np.array([f"k{i}" for i in range(n)]), crops=crops, detected=~np.isnan(bs[:, 0]),
                             blendshapes=bs, pose_deg=np.zeros((n, 3), np.float32), votes=votes, au_occurrence=codes,
                             au_intensity=np.full((n, 12), np.nan, np.float32), subjects=np.array(subjects))

    for name, n in (("train", 200), ("valid", 60)):
        split(n, [""] * n, False).save(root / "ferplus" / f"{name}.npz")
    subjects = [f"S{s:03d}" for s in range(1, 21) for _ in range(4)]  # 1 mod 5 -> valid, 0 mod 5 -> test
    split(len(subjects), subjects, True).save(root / "ckplus" / "train.npz")


def test_add_aus_ships_a_17_au_student_with_measured_sources(tmp_path):
    from distill.add_aus import NEW_AUS, add_aus
    from libreface.models.blendshape_aus import BlendshapeAUs
    from libreface.models.registry import sha256_file
    from libreface.models.session import StudentModel

    rng = np.random.default_rng(0)
    _prepared(tmp_path / "prepared", rng)
    base = tmp_path / "base.onnx"
    _tiny_onnx(base, _card())
    weights = tmp_path / "weights"
    weights.mkdir()
    result = add_aus(str(base), "tiny_int8.v7", tmp_path / "report", prepared=tmp_path / "prepared", weights_dir=weights,
                     threads=1, steps=60)
    assert set(result["added"]) == {f"AU{a:02d}" for a in NEW_AUS}
    assert result["ck_subjects"] == {"ck_train": 12, "ck_valid": 4, "ck_test": 4}
    assert all(d["source"] in ("head", "blendshapes") for d in result["added"].values())
    assert result["added"]["AU28"]["source"] == "blendshapes" and "unmeasured" in result["added"]["AU28"]["measured_against"]
    assert result["added"]["AU07"]["valid_n_pos"] > 0 and result["added"]["AU07"]["valid_auc_blendshapes"] > 0.9
    assert "AU07" in result["test"] and 0 <= result["test"]["AU07"]["auc_mirror"] <= 1
    model = StudentModel(weights / "tiny_int8.v7.onnx", threads=1)
    assert len(model.card.au_intensity) == 17 and len(model.card.au_occurrence) == 18
    out = model.run_crops(np.full((2, 16, 16, 3), 100, np.uint8))
    assert out["au_intensity"].shape == (2, 17) and (out["au_intensity"] >= 0).all() and (out["au_intensity"] <= 5).all()
    rules = BlendshapeAUs.from_card(model.card)
    mapped = {k for k, d in result["added"].items() if d["source"] == "blendshapes"}
    assert set(rules.rules) == mapped
    entry = json.loads((weights / "manifest.json").read_text())["models"][0]
    assert entry["name"] == "tiny_int8.v7" and entry["sha256"] == sha256_file(weights / "tiny_int8.v7.onnx")
    assert "AU07" in (weights / "cards" / "tiny_int8.v7.md").read_text()
    assert (tmp_path / "report" / "metrics.md").exists()
