"""`distill keep` / `distill recover KEPT.pt`: a run's hours survive a new machine (an empty cache)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")
pytestmark = pytest.mark.train


def _outputs(run: str) -> dict:
    from distill.runs import load_run

    model, _ = load_run(run)
    x = torch.randn(6, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(x)
    return {"expr": out["expr_logits"].softmax(-1), "au": out["au_intensity"], "features": out["features"]}


def test_a_kept_teacher_comes_back_in_an_empty_cache_and_predicts_as_before(smoke, tmp_path, monkeypatch, capsys):
    from distill.keep import keep_run, restore_run
    from distill.runs import finished, history, trained_on
    from distill.train import TrainConfig, train

    run = smoke["runs"]["teacher_mae"]
    monkeypatch.setenv("LIBREFACE_CACHE", str(Path(smoke["root"]) / "cache"))
    before, hist, devices = _outputs(run), history(run), trained_on(run)
    kept = keep_run(run, out=tmp_path / "kept")
    assert kept == tmp_path / "kept" / f"{run}.pt"
    monkeypatch.setenv("LIBREFACE_CACHE", str(tmp_path / "new_machine"))
    d = restore_run(kept)
    assert d == tmp_path / "new_machine" / "runs" / run
    after = _outputs(run)
    for key in before:  # float16 weights: the same teacher to within their rounding
        torch.testing.assert_close(after[key], before[key], rtol=0, atol=2e-2 if key != "expr" else 5e-3)
    assert history(run) == hist and trained_on(run) == devices
    assert finished(run)["restored_from"] == str(kept)
    train(TrainConfig.from_yaml(d / "config.yaml"))
    assert "already finished" in capsys.readouterr().out
    with pytest.raises(ValueError, match="already has checkpoints"):
        restore_run(kept)


def test_an_unfinished_pretraining_resumes_from_its_kept_file_with_fresh_optimiser_moments(smoke, tmp_path, monkeypatch,
                                                                                           capsys):
    from distill.keep import keep_run, restore_run
    from distill.scaling import snapshots
    from distill.smoke import CONFIGS
    from distill.train import TrainConfig, train

    prepared = Path(smoke["root"]) / "cache" / "prepared"
    monkeypatch.setenv("LIBREFACE_CACHE", str(tmp_path / "old_machine"))
    cfg = replace(TrainConfig.from_yaml(CONFIGS / "pretrain_mae_v2.yaml"), name="kept_mae.v0", epochs=2, batch_size=32,
                  limit=48, snapshots=[1], warmup_epochs=0, extra_train=["valid"], prepared=str(prepared), max_minutes=0)
    out = train(cfg)  # a zero-minute budget: stops after epoch 1 of 2, as a session that ended would
    assert not (out / "done.json").exists()
    kept = keep_run(cfg.name, snapshots=[1], out=tmp_path / "kept")
    monkeypatch.setenv("LIBREFACE_CACHE", str(tmp_path / "new_machine"))
    restore_run(kept)
    assert [e for e, _ in snapshots(cfg.name)] == [1]
    capsys.readouterr()
    train(replace(cfg, max_minutes=None))
    log = capsys.readouterr().out
    assert "resuming after epoch 1/2" in log and "AdamW restarts its moments" in log
    d = tmp_path / "new_machine" / "runs" / cfg.name
    assert [json.loads(x)["epoch"] for x in (d / "history.jsonl").read_text().splitlines()] == [1, 2]
    assert json.loads((d / "done.json").read_text())["epochs"] == 2


def test_keep_and_recover_name_the_missing_run_or_file_in_one_line(tmp_path, monkeypatch):
    from distill.cli import main

    monkeypatch.setenv("LIBREFACE_CACHE", str(tmp_path))
    with pytest.raises(SystemExit, match=r"distill keep: .*no_such\.v1.*no trained run 'no_such\.v1'") as err:
        main(["keep", "no_such.v1", "--out", str(tmp_path / "kept")])
    assert "\n" not in str(err.value)
    not_kept = tmp_path / "x.pt"
    torch.save({"model": {}}, not_kept)
    with pytest.raises(SystemExit, match=r"distill recover: .*x\.pt: not a kept run"):
        main(["recover", str(not_kept)])
    with pytest.raises(SystemExit, match=r"distill recover: .*missing\.pt"):
        main(["recover", str(tmp_path / "missing.pt")])
    with pytest.raises(SystemExit, match="needs the YAML config"):
        main(["recover", str(tmp_path / "student.onnx")])
