"""The GPU path of teacher training: device / time-budget / layer-decay options, the training pack, the device script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """A tiny prepared cache from the smoke fixtures (FER+ 3 x 24 faces, CK+ 10 subjects x 6 frames)."""
    from distill.data import LOADERS
    from distill.data.prepare import prepare
    from distill.smoke import make_fixtures

    root = tmp_path_factory.mktemp("gpu_pack")
    fer, ck = make_fixtures(root / "data", per_split=24)
    out = root / "prepared"
    prepare(LOADERS["ferplus"](fer), out / "ferplus", size=64, jobs=1)
    prepare(LOADERS["ckplus"](ck), out / "ckplus", size=64, jobs=1)
    return out


@pytest.mark.train
def test_a_lossless_pack_gives_the_same_training_tables_without_the_test_rows(prepared, tmp_path):
    from distill.dataset import build_tables
    from distill.pack import pack

    summary = pack(prepared, tmp_path / "pack", quality=None)
    assert summary["mean_abs_error"] == 0 and summary["max_abs_error"] == 0
    assert not (tmp_path / "pack" / "ferplus" / "test.npz").exists()
    assert "NOT included: FER+ Test and the CK+ test subjects" in (tmp_path / "pack" / "README.txt").read_text()
    full, cal_full = build_tables(prepared)
    packed, cal_packed = build_tables(tmp_path / "pack")
    assert "test" not in packed and len(packed["ck_test"]) == 0  # (an empty CK+ test table: no subject left in it)
    assert len(full["test"]) > 0 and len(full["ck_test"]) > 0
    assert cal_packed.to_json() == cal_full.to_json()
    for split in ("train", "valid", "ck_valid"):
        a, b = full[split], packed[split]
        for k in a.__dict__:
            np.testing.assert_array_equal(getattr(a, k), getattr(b, k), err_msg=f"{split}.{k}")
    assert not np.isnan(packed["train"].geo_feat[~np.isnan(packed["train"].au_raw[:, 0])]).any()
    # the geometry AU source works from the pack's features as from the landmarks
    geo_full, _ = build_tables(prepared, au_sources={"AU04": "geometry"})
    geo_packed, _ = build_tables(tmp_path / "pack", au_sources={"AU04": "geometry"})
    np.testing.assert_array_equal(geo_full["train"].au, geo_packed["train"].au)


@pytest.mark.train
def test_a_lossy_pack_is_smaller_measures_its_error_and_refuses_to_outgrow_its_budget(prepared, tmp_path):
    from distill.pack import pack

    lossless = pack(prepared, tmp_path / "a", quality=None)
    lossy = pack(prepared, tmp_path / "b", quality=80)
    assert lossy["mib"] < lossless["mib"] and 0 < lossy["mean_abs_error"] < 5
    assert json.loads((tmp_path / "b" / "pack.json").read_text())["quality"] == 80
    with pytest.raises(ValueError, match="over --max-mib"):
        pack(prepared, tmp_path / "c", quality=None, max_mib=0.01)
    assert not (tmp_path / "c").exists() and not (tmp_path / "c.partial").exists()


@pytest.mark.train
def test_a_time_budget_stops_after_an_epoch_and_the_same_command_resumes(prepared, tmp_path, monkeypatch):
    import yaml

    from distill.train import TrainConfig, train

    monkeypatch.setenv("LIBREFACE_CACHE", str(tmp_path))
    cfg = TrainConfig(name="budget.v0", stage="teacher", arch="au_r10t", epochs=2, batch_size=32, limit=32,
                      prepared=str(prepared), max_minutes=0.0, device="cpu")
    out = train(cfg)
    hist = [json.loads(x) for x in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1] and hist[0]["device"] == "cpu"
    assert (out / "last.pt").exists() and not (out / "done.json").exists()
    assert "max_minutes" not in yaml.safe_load((out / "config.yaml").read_text())
    state = torch.load(out / "last.pt", weights_only=False)
    assert all(t.device.type == "cpu" for t in state["model"].values())
    train(replace(cfg, max_minutes=None))
    assert [json.loads(x)["epoch"] for x in (out / "history.jsonl").read_text().splitlines()] == [1, 2]
    assert (out / "done.json").exists()
    with pytest.raises(ValueError, match="device must be"):
        TrainConfig(name="x", stage="teacher", arch="au_r10t", device="tpu")


@pytest.mark.train
def test_layer_decay_scales_the_vits_blocks_and_keeps_one_group_without_it():
    from distill.train import build_model, param_groups

    vit = build_model("mae_vit")
    one = param_groups(vit, None)
    assert len(one) == 1 and one[0]["lr_scale"] == 1.0
    groups = param_groups(vit, 0.5)
    depth = len(vit.trunk.blocks)
    assert [g["lr_scale"] for g in groups] == [0.5 ** (depth + 1 - d) for d in range(depth + 2)]
    assert sum(len(g["params"]) for g in groups) == len(list(vit.parameters()))
    assert any(p is vit.trunk.pos_embed for p in groups[0]["params"])
    assert any(p is vit.heads.expr.weight for p in groups[-1]["params"])
    with pytest.raises(ValueError, match="needs a ViT encoder"):
        param_groups(build_model("au_r10t"), 0.75)


@pytest.mark.train
def test_the_gpu_script_pretrains_and_finetunes_from_a_pack_and_returns_its_runs(prepared, tmp_path):
    """distill/gpu_teacher.sh end to end on the CPU (device auto -> cpu here), with tiny epochs and rows."""
    import yaml

    from distill.pack import pack

    pack(prepared, tmp_path / "pack")
    mae = yaml.safe_load((REPO / "distill/configs/pretrain_mae_gpu.yaml").read_text())
    teacher = yaml.safe_load((REPO / "distill/configs/teacher_mae_v2.yaml").read_text())
    assert mae["device"] == teacher["device"] == "auto" and teacher["init_from"] == mae["name"]
    assert teacher["layer_decay"] and mae["epochs"] == 200
    mae["extra_train"] = ["valid"]  # the smoke fixtures have no video frames
    (tmp_path / "mae.yaml").write_text(yaml.safe_dump(mae))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHON": sys.executable, "OUT": str(out), "MAE_CONFIG": str(tmp_path / "mae.yaml"),
           "MAE_EPOCHS": "1", "TEACHER_EPOCHS": "1", "LIMIT": "48"}
    env.pop("LIBREFACE_CACHE", None)
    t0 = time.time()
    res = subprocess.run(["bash", str(REPO / "distill/gpu_teacher.sh"), str(tmp_path / "pack"), str(tmp_path / "cache")],
                         env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    status = res.stdout.strip().splitlines()[-1]
    assert status.startswith("gpu_teacher: ok | pretrain_mae_gpu.v2: epoch 1/1 (done)"), status
    assert "teacher_mae.v2: epoch 1/1 (done), FER+ valid accuracy" in status and "| cpu |" in status
    assert time.time() - t0 < 120
    parts = sorted(out.glob("gpu_runs.tar.part-*"))
    assert parts and (out / "gpu_teacher.log").exists()
    back = tmp_path / "back"
    back.mkdir()
    subprocess.run(f"cat {' '.join(map(str, parts))} | tar xf - -C {back}", shell=True, check=True)
    hist = json.loads((back / "runs/teacher_mae.v2/history.jsonl").read_text().splitlines()[-1])
    assert hist["device"] == "cpu" and 0 <= hist["valid_fer_accuracy"] <= 1
    assert (back / "runs/teacher_mae.v2/best.pt").exists() and (back / "runs/pretrain_mae_gpu.v2/done.json").exists()
    assert (back / "runs/pretrain_mae_gpu.v2/snapshot_e0001.pt").exists()  # the MAE encoder comes back too
    assert sum(p.stat().st_size for p in parts) < 64 * 2**20 and all(p.stat().st_size <= 16 * 2**20 for p in parts)
    # a second call resumes nothing (both runs finished) and says so in the same status line
    res = subprocess.run(["bash", str(REPO / "distill/gpu_teacher.sh"), str(tmp_path / "pack"), str(tmp_path / "cache")],
                         env=env, capture_output=True, text=True, timeout=120)
    again = res.stdout.strip().splitlines()[-1]
    assert "already finished" in res.stdout and again.rsplit("|", 1)[0] == status.rsplit("|", 1)[0]


def test_the_gpu_script_fails_in_one_line_without_its_python(tmp_path):
    res = subprocess.run(["bash", str(REPO / "distill/gpu_teacher.sh"), "/nonexistent", str(tmp_path / "cache")],
                         env={**os.environ, "PYTHON": "/nonexistent/python3", "OUT": ""}, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and res.stdout.strip().startswith("gpu_teacher: cannot run here: missing")
