"""The training side: AU teacher signal, losses, and the whole chain on generated fixtures (`distill smoke`)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the train extra (torch) is not installed")

from distill.labels import AU_NAMES, Calibration, au_scores, fit_calibration  # noqa: E402
from libreface.landmarks import BLENDSHAPE_NAMES  # noqa: E402


def test_blendshapes_map_to_the_12_disfa_aus():
    bs = np.zeros((2, 52), np.float32)
    bs[1, BLENDSHAPE_NAMES.index("mouthSmileLeft")] = 0.8
    bs[1, BLENDSHAPE_NAMES.index("mouthSmileRight")] = 0.6
    s = au_scores(bs)
    assert s.shape == (2, 12) and AU_NAMES[6] == "AU12"
    assert s[0, 6] == 0 and s[1, 6] == pytest.approx(0.7)


def test_calibration_maps_neutral_to_0_trace_to_1_and_top_to_5():
    cal = Calibration(neutral=[0.1] * 12, trace=[0.3] * 12, top=[0.9] * 12, trace_source=["x"] * 12)
    out = cal.intensity(np.array([[0.0] * 12, [0.3] * 12, [0.9] * 12, [np.nan] * 12], np.float32))
    assert (out[0] == 0).all() and np.allclose(out[1], 1) and np.allclose(out[2], 5) and np.isnan(out[3]).all()


def test_calibration_anchors_are_ordered_even_for_a_flat_blendshape():
    rng = np.random.default_rng(0)
    fer = rng.random((200, 12)).astype(np.float32)
    fer[:, 4] = 0.001  # a blendshape that never fires
    ck = rng.random((40, 12)).astype(np.float32)
    occ = (rng.random((40, 12)) < 0.4).astype(np.int8)
    cal = fit_calibration(fer, rng.random(200) < 0.3, ck, occ)
    for n, t, top in zip(cal.neutral, cal.trace, cal.top):
        assert n < t < top


def test_ck_subjects_split_into_train_validation_and_test_by_number():
    from distill.dataset import ck_split

    got = ck_split(np.array(["S005", "S010", "S006", "S011", "S007", "S009", ""]))
    assert got.tolist() == ["test", "test", "valid", "valid", "train", "train", "train"]


def test_feature_distillation_terms_are_finite_and_vanish_without_weights():
    from distill.losses import FeatureDistiller, LossWeights

    d = FeatureDistiller([8, 16], 16, [{"channels": [4, 4], "grids": [2, 1], "dim": 6}])
    out = {"maps": [torch.randn(3, 8, 4, 4), torch.randn(3, 16, 2, 2)], "features": torch.randn(3, 16),
           "expr_logits": torch.randn(3, 8), "au_intensity": torch.rand(3, 12) * 5, "occ_logits": torch.randn(3, 12)}
    tgt = [{"maps": [torch.randn(3, 4, 2, 2), torch.randn(3, 4, 1, 1)], "emb": torch.randn(3, 6),
            "expr_logits": torch.randn(3, 8), "au_intensity": torch.rand(3, 12) * 5, "occ_prob": torch.rand(3, 12)}]
    terms = d(out, tgt, LossWeights())
    assert set(terms) == {"feat", "emb", "soft"} and all(torch.isfinite(v) for v in terms.values())
    assert d(out, tgt, LossWeights(feat=0, emb=0, soft=0)) == {}


@pytest.mark.train
def test_the_smoke_chain_exports_students_the_runtime_loads(smoke):
    from libreface.models.session import StudentModel

    fp32, int8 = smoke["weights"]
    for path in (fp32, int8):
        model = StudentModel(path, threads=1)
        assert model.card.au_intensity == AU_NAMES and model.card.color == "gray"
        out = model.run_crops(np.full((2, 64, 64, 3), 100, np.uint8))
        assert out["expression"].shape == (2, 8) and np.allclose(out["expression"].sum(1), 1, atol=1e-4)
    assert json.loads(StudentModel(int8).session.get_modelmeta().custom_metadata_map["libreface.card"])["precision"] == "int8-qdq"


@pytest.mark.train
def test_the_smoke_chain_reports_every_model_and_the_baseline(smoke):
    names = [r["model"] for r in smoke["rows"]]
    assert names[0] == "blendshape baseline" and any(n.endswith("int8.v0.onnx") for n in names)
    onnx_rows = [r for r in smoke["rows"] if r["kind"] == "onnx"]
    assert all(r["ms_per_face_batch1"] > 0 for r in onnx_rows)
    assert all(0 <= r["fer_accuracy"] <= 1 for r in onnx_rows)
    plain = {r["model"] for r in onnx_rows if not r["model"].endswith(" +mirror")}
    assert {f"{n} +mirror" for n in plain} == {r["model"] for r in onnx_rows} - plain  # each also as the analyzer runs it
    ensemble = [r for r in smoke["rows"] if r["kind"] == "ensemble"]
    assert [r["model"].endswith(" +mirror") for r in ensemble] == [False, True]
    assert all(0 <= r["fer_accuracy"] <= 1 for r in ensemble)
    assert all(r["model"].startswith("ensemble of 3: ") and smoke["runs"]["teacher_swin"] in r["model"] for r in ensemble)


@pytest.mark.train
def test_an_ensemble_of_one_run_scores_as_the_run_and_its_mirror_view_averages_two_views(smoke, tmp_path, monkeypatch):
    from pathlib import Path

    from distill.evaluate import report

    monkeypatch.setenv("LIBREFACE_CACHE", str(Path(smoke["root"]) / "cache"))
    run = smoke["runs"]["teacher_swin"]
    result = report([run], [], tmp_path, ensemble=[run], split="valid")
    rows = {r["model"]: r for r in result["rows"]}
    alone, together = rows[run], rows[f"ensemble of 1: {run}"]
    assert together["fer_accuracy"] == alone["fer_accuracy"] and together["au_mean_auc"] == alone["au_mean_auc"]
    assert f"ensemble of 1: {run} +mirror" in rows


@pytest.mark.train
def test_a_torch_runs_mirror_view_averages_it_with_its_mirrored_crops(smoke, monkeypatch):
    from dataclasses import replace
    from pathlib import Path

    from distill.dataset import build_tables
    from distill.predict import predict, predict_views
    from distill.runs import load_run

    monkeypatch.setenv("LIBREFACE_CACHE", str(Path(smoke["root"]) / "cache"))
    model, _ = load_run(smoke["runs"]["teacher_swin"])
    table = build_tables(Path(smoke["root"]) / "cache" / "prepared")[0]["valid"]
    plain, both = predict_views(model, table), predict_views(model, table, mirror=True)
    flipped = predict(model, replace(table, images=table.images[:, :, ::-1].copy()))
    for k in plain:
        assert np.allclose(both[k], (plain[k] + flipped[k]) / 2, atol=1e-6)
    assert not np.allclose(both["expression"], plain["expression"])  # the faces are not symmetric: a second view


@pytest.mark.train
def test_a_finished_stage_is_not_trained_again(smoke, tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from distill.train import TrainConfig, train

    run_dir = Path(smoke["weights"][0]).parent.parent / "cache"
    monkeypatch.setenv("LIBREFACE_CACHE", str(run_dir))
    cfg = TrainConfig(name="smoke_teacher_swin.v1", stage="teacher", arch="swin", epochs=1)
    train(cfg)
    assert "already finished" in capsys.readouterr().out


@pytest.mark.train
def test_finetuned_heads_learn_the_corrected_labels_without_the_video(smoke, tmp_path):
    from pathlib import Path

    import pandas as pd

    from distill.finetune import finetune_heads
    from libreface.pipeline import Analyzer, AnalyzerOptions

    int8 = smoke["weights"][1]
    example = Path(__file__).resolve().parents[1] / "examples" / "astronaut.mp4"
    with Analyzer(AnalyzerOptions(model=int8, every=10, threads=2)) as a:
        a.analyze_to_files(example, tmp_path / "a.csv", features_path=tmp_path / "a.parquet")
    rows = pd.read_csv(tmp_path / "a.csv").query("success == 1")
    labels = pd.DataFrame({"frame": rows["frame"], "face_id": rows["face_id"], "expression": "surprise", "AU12": 1})
    labels.to_csv(tmp_path / "a.labels.csv", index=False)
    summary = finetune_heads(int8, tmp_path / "a.parquet", tmp_path / "a.labels.csv", tmp_path / "ft.onnx")
    assert summary["expression"]["labelled"] == len(rows)
    with Analyzer(AnalyzerOptions(model=str(tmp_path / "ft.onnx"), every=10, threads=2)) as a:
        after = a.analyze(example).query("success == 1")
    assert after["surprise"].mean() > rows["surprise"].mean() + 0.3
    assert after["AU12_probability"].mean() > rows["AU12_probability"].mean()


@pytest.mark.train
def test_a_shipped_fp32_student_rebuilds_its_run_to_teach_again(smoke, tmp_path, monkeypatch):
    """On a new machine the checkpoints are gone; `distill recover` rebuilds a run from the fp32 ONNX file, with
    the same outputs and the same stage maps (what feature-wise distillation matches) as the trained network."""
    from dataclasses import asdict
    from pathlib import Path

    import yaml

    from distill.export import recover_run
    from distill.train import load_run

    fp32, int8 = map(Path, smoke["weights"])
    monkeypatch.setenv("LIBREFACE_CACHE", str(fp32.parent.parent / "cache"))
    original, cfg = load_run("smoke_au_r18.v1")
    config = tmp_path / "student.yaml"
    config.write_text(yaml.safe_dump(asdict(cfg)))
    monkeypatch.setenv("LIBREFACE_CACHE", str(tmp_path / "new_machine"))
    trained = json.loads((fp32.parent.parent / "cache" / "runs" / "smoke_au_r18.v1" / "done.json").read_text())
    out = recover_run(fp32, config)
    done = json.loads((out / "done.json").read_text())
    assert done["max_abs_diff"] < 1e-3
    assert done["wall_seconds"] == trained["wall_seconds"]  # the training time travels with the weights, for the card
    assert done["devices"] == ["cpu"]  # and where it trained
    rebuilt, _ = load_run("smoke_au_r18.v1")
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        a, b = original(x), rebuilt(x)
    for key in ("au_intensity", "occ_logits", "expr_logits", "features"):
        torch.testing.assert_close(a[key], b[key], atol=1e-4, rtol=1e-4)
    for map_a, map_b in zip(a["maps"], b["maps"], strict=True):
        torch.testing.assert_close(map_a, map_b, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="int8"):
        recover_run(int8, config)


@pytest.mark.train
def test_a_bfloat16_stage_distils_with_finite_losses_and_checks_its_config(smoke, tmp_path, monkeypatch):
    from pathlib import Path

    from distill.train import TrainConfig, train

    cache = Path(smoke["weights"][0]).parent.parent / "cache"
    monkeypatch.setenv("LIBREFACE_CACHE", str(cache))
    cfg = TrainConfig(name="smoke_bf16.v0", stage="student", arch="au_r10t", teachers=["smoke_au_r18.v1"], epochs=1,
                      batch_size=32, limit=96, amp="bf16", weights={"feat": 0.5})
    out = train(cfg)
    rec = json.loads((out / "history.jsonl").read_text().splitlines()[-1])
    losses = {k: v for k, v in rec.items() if k.startswith("loss_")}
    assert {"loss_expr", "loss_feat", "loss_emb", "loss_soft"} <= set(losses)
    assert all(np.isfinite(v) and v > 0 for v in losses.values())
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nstage: student\narch: au_r10t\namp: fp16\n")
    with pytest.raises(ValueError, match="bad.yaml: amp must be"):
        TrainConfig.from_yaml(bad)
    with pytest.raises(ValueError, match="amp must be"):
        TrainConfig(name="x", stage="student", arch="au_r10t", amp="fp16")


@pytest.mark.train
def test_a_swin_teacher_continues_from_a_run_and_learns_from_a_student(smoke, monkeypatch, capsys):
    """The teacher_swin_v3 path: a transformer teacher initialised from an earlier teacher's weights and
    distilled from a finished ResNet student (all KD terms present, finite)."""
    from dataclasses import replace
    from pathlib import Path

    from distill.smoke import CONFIGS
    from distill.train import TrainConfig, train

    cache = Path(smoke["weights"][0]).parent.parent / "cache"
    monkeypatch.setenv("LIBREFACE_CACHE", str(cache))
    cfg = TrainConfig.from_yaml(CONFIGS / "teacher_swin_v3.yaml")
    assert cfg.stage == "teacher" and cfg.init_from and cfg.teachers
    cfg = replace(cfg, name="smoke_teacher_swin.v3", init_from="smoke_teacher_swin.v1", teachers=["smoke_au_r18.v1"],
                  epochs=1, batch_size=32, limit=96)
    out = train(cfg)
    assert "initialised from smoke_teacher_swin.v1 (0 new tensors)" in capsys.readouterr().out
    rec = json.loads((out / "history.jsonl").read_text().splitlines()[-1])
    losses = {k: v for k, v in rec.items() if k.startswith("loss_")}
    assert {"loss_expr", "loss_feat", "loss_emb", "loss_soft"} <= set(losses)
    assert all(np.isfinite(v) and v > 0 for v in losses.values())


@pytest.mark.train
def test_the_model_card_states_wall_time_metrics_and_mirrored_rows(smoke, tmp_path, monkeypatch):
    from pathlib import Path

    from distill.cards import write_card
    from distill.train import finished

    fp32, int8 = map(Path, smoke["weights"])
    monkeypatch.setenv("LIBREFACE_CACHE", str(fp32.parent.parent / "cache"))
    wall = finished("smoke_au_r18.v1")["wall_seconds"]
    card = write_card("smoke_r18.v0", "smoke_au_r18.v1", fp32.parent.parent / "report" / "metrics.json", tmp_path,
                      [fp32.name, int8.name]).read_text()
    assert f"wall time {wall / 60:.0f} min on 2 CPU cores" in card
    for row in (fp32.name, int8.name, f"{fp32.name} +mirror", f"{int8.name} +mirror", "smoke_teacher_swin.v1"):
        assert f"| {row} |" in card
    # rewritten for a rebuilt run (no wall time of its own) from two reports: the earlier card's time is kept
    report = fp32.parent.parent / "report" / "metrics.json"
    monkeypatch.setattr("distill.cards.finished", lambda run: {} if run == "smoke_au_r18.v1" else finished(run))
    again = write_card("smoke_r18.v0", "smoke_au_r18.v1", [report, report], tmp_path, [fp32.name, int8.name]).read_text()
    assert f"wall time {wall / 60:.0f} min on 2 CPU cores" in again and "Rows merged from" in again
    assert "not recorded" in write_card("other.v0", "smoke_au_r18.v1", report, tmp_path, [fp32.name]).read_text()
    # a run trained on a GPU says so, and a card rewritten later keeps the phrase
    monkeypatch.setattr("distill.cards.finished", finished)
    monkeypatch.setattr("distill.cards.trained_on", lambda run: ["cuda (NVIDIA H200)"])
    gpu = write_card("gpu.v0", "smoke_au_r18.v1", report, tmp_path, [fp32.name]).read_text()
    assert f"wall time {wall / 60:.0f} min on one NVIDIA H200 GPU" in gpu
    monkeypatch.setattr("distill.cards.finished", lambda run: {} if run == "smoke_au_r18.v1" else finished(run))
    assert f"wall time {wall / 60:.0f} min on one NVIDIA H200 GPU" in write_card(
        "gpu.v0", "smoke_au_r18.v1", report, tmp_path, [fp32.name]).read_text()


def test_a_run_names_the_devices_it_trained_on_and_its_card_carries_them(tmp_path, monkeypatch):
    from distill.runs import run_dir, trained_on, where_trained

    monkeypatch.setenv("LIBREFACE_CACHE", str(tmp_path))
    d = run_dir("r.v0")
    d.mkdir(parents=True)
    rows = [{"epoch": 1, "seconds": 1.0}, {"epoch": 2, "seconds": 1.0, "device": "cpu"},
            {"epoch": 3, "seconds": 1.0, "device": "cuda (NVIDIA H200)"}]
    (d / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert trained_on("r.v0") == ["cpu", "cuda (NVIDIA H200)"]  # no device recorded: the CPU (histories before devices)
    assert where_trained(trained_on("r.v0")) == "2 CPU cores and one NVIDIA H200 GPU"
    assert where_trained(["cpu"], threads=4) == "4 CPU cores" and where_trained([]) == ""
    rebuilt = run_dir("rebuilt.v0")  # `distill recover`: no history, the devices its ONNX card carried
    rebuilt.mkdir()
    (rebuilt / "done.json").write_text(json.dumps({"recovered_from": "x.onnx", "devices": ["cpu"]}))
    assert trained_on("rebuilt.v0") == ["cpu"] and trained_on("missing.v0") == []


def test_amp_auto_follows_the_cpu_flags_and_extra_train_is_for_mae_only():
    from distill.train import TrainConfig, resolve_amp

    assert resolve_amp("auto", "flags : fpu avx512f avx512_bf16 sse") == "bf16"
    assert resolve_amp("auto", "flags : fpu amx_bf16 amx_tile") == "bf16"
    assert resolve_amp("auto", "flags : fpu avx512f avx2") == "none"
    assert resolve_amp("none", "flags : avx512_bf16") == "none" and resolve_amp("bf16", "") == "bf16"
    with pytest.raises(ValueError, match="extra_train"):
        TrainConfig(name="x", stage="teacher", arch="swin", extra_train=["valid"])
    with pytest.raises(ValueError, match="extra_train"):
        TrainConfig(name="x", stage="mae", arch="mae_vit", extra_train=["test"])


def test_the_vit_teachers_cpu_attention_is_plain_matrix_products_with_the_same_result():
    from distill.teachers import create_teacher, math_attention, set_fused_attention

    torch.manual_seed(0)
    model = create_teacher("mae_vit").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        fused = model(x)
        assert math_attention(model) == 10  # 8 encoder blocks + 2 decoder blocks
        plain = model(x)
    assert not any(getattr(m, "fused_attn", False) for m in model.modules())
    for key in ("expr_logits", "features"):
        torch.testing.assert_close(plain[key], fused[key], rtol=1e-5, atol=1e-5)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    with torch.no_grad():
        loss_plain = model.mae_loss(x, 0.75, generator=g1)
        assert set_fused_attention(model, True) == 10
        loss_fused = model.mae_loss(x, 0.75, generator=g2)
    torch.testing.assert_close(loss_plain, loss_fused, rtol=1e-5, atol=1e-6)
    assert math_attention(model) == 10 and math_attention(model) == 0  # idempotent


def test_the_scaling_fit_finds_a_plateau_below_the_bar_and_a_crossing_above_it():
    from dataclasses import replace

    from distill.scaling import Curve, Point, fit_curve, verdict

    e = np.array([1, 2, 5, 10, 25, 50])
    low = [Point(int(x), 60.0 * x, 0.80 - 0.2 * x ** -0.7) for x in e]
    high = [Point(int(x), 60.0 * x, 0.90 - 0.3 * x ** -0.5) for x in e]
    f = fit_curve(low, bar=0.848, target=0.868)
    assert f["a"] == pytest.approx(0.80, abs=0.005) and f["bar"] is None
    assert "stop" in verdict(Curve("s", "training history", low, f), 0.848, 0.868)
    g = fit_curve(high, bar=0.848, target=0.868)
    assert g["target"]["epochs"] == pytest.approx((0.3 / 0.032) ** 2, rel=0.05)
    assert "continue" in verdict(Curve("m", "fine-tune", high, g), 0.848, 0.868)
    assert fit_curve(high[3:], 0.848, 0.868) is None  # a training history needs 4 points
    three = fit_curve(high[3:], 0.848, 0.868, min_points=3)  # 10, 25, 50 snapshots: exact, the curve's asymptote
    assert three["exact"] and three["rmse"] < 1e-4 and three["a"] == pytest.approx(0.90, abs=0.005)
    # snapshots probed by a short fine-tune: a probe levelling off says "pause the pretraining", with its projections
    flat = [Point(int(x), 60.0 * x, 0.815 - 0.61 * x ** -0.82) for x in (10, 25, 50)]
    said = verdict(Curve("m", "fine-tune (probe.yaml)", flat, fit_curve(flat, 0.848, 0.868, 3)), 0.848, 0.868)
    assert "pause the pretraining" in said and "at 100 and" in said and "exact through 3 points" in said
    assert "continue" in verdict(Curve("m", "fine-tune (probe.yaml)", high[3:], three), 0.848, 0.868)
    # a teacher whose schedule ended is judged by its best epoch, however its fit extrapolates
    ended = [Point(k, 480.0 * k, a) for k, a in enumerate([0.70, 0.78, 0.82, 0.84, 0.853, 0.858, 0.856], 1)]
    said = verdict(Curve("t", "fine-tune of m@50", ended, fit_curve(ended, 0.848, 0.868), finished=True), 0.848, 0.868)
    assert "best 85.8 % at epoch 6 of 7" in said and "+1.0 points over the bar, 1.0 short of bar + 2" in said
    assert "continue" not in said
    below = [replace(p, valid_accuracy=p.valid_accuracy - 0.03) for p in ended]
    assert "2.0 points below the bar" in verdict(Curve("t", "x", below, fit_curve(below, 0.848, 0.868), finished=True), 0.848, 0.868)
    above = [replace(p, valid_accuracy=p.valid_accuracy + 0.015) for p in ended]
    assert "a teacher for the next student" in verdict(Curve("t", "x", above, None, finished=True), 0.848, 0.868)


@pytest.mark.train
def test_mae_snapshots_survive_a_resume_and_feed_the_scaling_report(smoke, tmp_path, monkeypatch):
    from dataclasses import replace
    from pathlib import Path

    from distill.scaling import Curve, HistorySpec, Point, snapshots, study, verdict
    from distill.scaling_report import write_report
    from distill.smoke import CONFIGS
    from distill.train import TrainConfig, train

    cache = Path(smoke["weights"][0]).parent.parent / "cache"
    monkeypatch.setenv("LIBREFACE_CACHE", str(cache))
    cfg = TrainConfig.from_yaml(CONFIGS / "pretrain_mae_v2.yaml")
    assert cfg.extra_train == ["valid", "videos"] and 200 in cfg.snapshots and cfg.amp == "auto"
    cfg = replace(cfg, name="smoke_mae_snap.v0", epochs=1, batch_size=32, limit=48, snapshots=[1, 2, 5], warmup_epochs=0,
                  extra_train=["valid"])  # the smoke fixtures have no videos
    out = train(cfg)
    assert [e for e, _ in snapshots(cfg.name)] == [1]
    (out / "done.json").unlink()  # as if stopped after epoch 1 of 2: the same command resumes from last.pt
    train(replace(cfg, epochs=2))
    hist = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [h["epoch"] for h in hist] == [1, 2]
    snaps = snapshots(cfg.name)
    assert [e for e, _ in snaps] == [1, 2]
    walls = [torch.load(p, weights_only=False)["wall_seconds"] for _, p in snaps]
    assert walls[1] == pytest.approx(hist[0]["seconds"] + hist[1]["seconds"], abs=0.2)
    swin = tmp_path / "history_swin.jsonl"
    swin.write_text("".join(json.dumps({"epoch": e, "seconds": 100.0, "valid_fer_accuracy": 0.8 - 0.2 / e}) + "\n"
                            for e in range(1, 7)))
    bar = tmp_path / "history_best.v0.jsonl"
    bar.write_text(json.dumps({"epoch": 1, "seconds": 1.0, "valid_fer_accuracy": 0.848}) + "\n")
    result = study([cfg.name], [HistorySpec(str(swin))], bar, prepared=cache / "prepared")
    mae, sw = result["curves"]
    assert [p["epochs"] for p in mae["points"]] == [1, 2] and mae["fit"] is None
    assert all(0 <= p["valid_accuracy"] <= 1 for p in mae["points"]) and "unconstrained" in mae["verdict"]
    assert sw["fit"]["a"] == pytest.approx(0.8, abs=0.01) and "stop" in sw["verdict"]
    assert result["bar"] == {"model": "best.v0", "valid_accuracy": 0.848, "source": str(bar)}
    paths = write_report(result, tmp_path / "scaling")
    assert all(p.stat().st_size > 0 for p in paths) and "84.8 %" in paths[1].read_text()
    # a fine-tune curve beside the linear probe, on the snapshots asked for only
    result = study([cfg.name], [], bar, prepared=cache / "prepared", finetune=[CONFIGS / "teacher_mae_probe.yaml"],
                   finetune_epochs=[2])
    linear, tuned = result["curves"]
    assert linear["probe"] == "linear probe" and [p["epochs"] for p in linear["points"]] == [1, 2]
    assert tuned["probe"].startswith("fine-tune") and [p["epochs"] for p in tuned["points"]] == [2]
    assert 0 <= tuned["points"][0]["valid_accuracy"] <= 1
    # a later call for another snapshot keeps the finished fine-tune on the curve (reused, not retrained)
    done = (cache / "runs" / "teacher_mae_probe.v2_smoke_mae_snap.v0_e0002" / "done.json").stat().st_mtime_ns
    result = study([cfg.name], [], bar, prepared=cache / "prepared", finetune=[CONFIGS / "teacher_mae_probe.yaml"],
                   finetune_epochs=[1])
    tuned2 = result["curves"][1]
    assert [p["epochs"] for p in tuned2["points"]] == [1, 2] and tuned2["points"][1] == tuned["points"][0]
    assert (cache / "runs" / "teacher_mae_probe.v2_smoke_mae_snap.v0_e0002" / "done.json").stat().st_mtime_ns == done
    # a teacher's own history as a curve: fine-tune epochs, hours after its snapshot's pretraining; an unknown run waits
    result = study([], [], bar, teachers=["teacher_mae_probe.v2_smoke_mae_snap.v0_e0002", "no_such_teacher.v0"])
    (teacher,) = result["curves"]
    ft_hist = [json.loads(line) for line in (cache / "runs" / "teacher_mae_probe.v2_smoke_mae_snap.v0_e0002" /
                                             "history.jsonl").read_text().splitlines()]
    assert teacher["probe"] == "fine-tune of smoke_mae_snap.v0@2" and len(teacher["points"]) == len(ft_hist)
    assert teacher["notes"][0].endswith(f"finished: {len(ft_hist)} epochs")
    assert not teacher["running"] and teacher["finished"] and teacher["verdict"].startswith("best ")
    running = Curve("t", "fine-tune of x@2", [Point(e, 60.0 * e, 0.80) for e in range(1, 6)], running=True)
    assert "still training, no verdict" in verdict(running, 0.848, 0.868)
    assert teacher["points"][0]["wall_seconds"] == pytest.approx(walls[1] + ft_hist[0]["seconds"], abs=0.2)
    cpu = torch.load(snaps[1][1], weights_only=False)["cpu_seconds"] + sum(h["cpu_seconds"] for h in ft_hist)
    assert teacher["points"][-1]["cpu_seconds"] == pytest.approx(cpu, abs=0.3)  # so far, like the wall time
    assert teacher["points"][-1]["valid_accuracy"] == ft_hist[-1]["valid_fer_accuracy"]
    assert result["pending"] == [next(p for p in result["pending"] if p.startswith("no_such_teacher.v0: not measured"))]


def test_au_sets_name_openfaces_columns_and_map_shared_aus_by_name():
    from distill.labels import AU_SETS, au_set, shared_au_columns

    of, disfa = AU_SETS["openface"], AU_SETS["disfa"]
    assert len(of.intensity) == 17 and len(of.occurrence) == 18 and 28 in of.occurrence and 28 not in of.intensity
    assert of.occurrence_names[of.intensity_cols[-1]] == "AU45"
    cols = shared_au_columns(of, disfa)
    assert [of.intensity[j] for j in cols["s_int"]] == [disfa.intensity[j] for j in cols["t_int"]]
    assert sorted(disfa.intensity[j] for j in cols["t_int"]) == sorted(disfa.intensity)  # all 12 shared
    assert len(cols["s_occ"]) == 12 and 7 not in [of.occurrence[j] for j in cols["s_occ"]]
    with pytest.raises(ValueError, match="aus must be one of"):
        au_set("bp4d")


@pytest.mark.train
def test_an_openface_student_with_the_filming_augmentations_learns_from_disfa_teachers_and_exports_its_aus(
        smoke, tmp_path, monkeypatch):
    """The next student's recipe on the smoke fixtures: OpenFace's 17 / 18 AU heads of its own, AU04 from landmark
    geometry, yaw / occlusion / lighting augmentations, a balanced sampler, distilled from a 12-AU (DISFA) teacher;
    the export's card lists OpenFace's AUs in the runtime's column order and the runtime runs it."""
    from pathlib import Path

    from distill.dataset import build_tables
    from distill.evaluate import report
    from distill.export import export
    from distill.labels import AU_SETS
    from distill.train import TrainConfig, prepared_dir, train
    from libreface.models.session import StudentModel
    from libreface.outputs import schema

    cache = Path(smoke["weights"][0]).parent.parent / "cache"
    monkeypatch.setenv("LIBREFACE_CACHE", str(cache))
    cfg = TrainConfig(name="smoke_openface.v0", stage="student", arch="au_r10t", teachers=["smoke_au_r18.v1"], epochs=1,
                      batch_size=32, limit=96, aus="openface", au_sources={"AU04": "geometry"}, yaw_deg=45,
                      occlusion=0.3, lighting=0.3, balance="sampler")
    tables, _ = build_tables(prepared_dir(cfg), aus="openface")
    assert tables["train"].au.shape[1] == 18 and (tables["train"].occ_human[:, AU_SETS["openface"].occurrence.index(28)] == -1).all()
    out = train(cfg)
    rec = json.loads((out / "history.jsonl").read_text().splitlines()[-1])
    losses = {k: v for k, v in rec.items() if k.startswith("loss_")}
    assert {"loss_expr", "loss_au", "loss_feat", "loss_soft"} <= set(losses)
    assert all(np.isfinite(v) for v in losses.values())
    fp32, int8 = export("smoke_openface.v0", "smoke_of.v0", weights_dir=tmp_path / "weights", calib=32)
    model = StudentModel(int8)
    assert model.card.au_intensity == schema.OPENFACE_AU_INTENSITY and model.card.au_occurrence == schema.OPENFACE_AU_OCCURRENCE
    o = model.run_crops(np.zeros((2, 64, 64, 3), np.uint8))
    assert o["au_intensity"].shape == (2, 17) and o["au_occurrence"].shape == (2, 18)
    res = report(["smoke_openface.v0"], [int8], tmp_path / "report", aus="openface")
    names = [r["model"] for r in res["rows"]]
    assert "smoke_openface.v0" in names and int8.name in names
    assert res["aus"] == "openface" and "AU07" in res["details"]["blendshape baseline"]["au"]


def test_every_shipped_training_config_loads_and_names_a_run_of_its_own():
    from distill.config import TrainConfig
    from distill.smoke import CONFIGS

    paths = sorted(CONFIGS.glob("*.yaml"))
    assert len(paths) >= 20
    names = [TrainConfig.from_yaml(p).name for p in paths]  # unknown keys and bad values raise here
    assert len(set(names)) == len(names), "two configs would write the same run folder"


def test_cached_teacher_targets_are_remade_when_the_teacher_changed_after_them(tmp_path, monkeypatch):
    import os

    import distill.train as tr

    monkeypatch.setenv("LIBREFACE_CACHE", str(tmp_path))
    calls = []

    def fake_targets(teacher, images, grids):
        calls.append(teacher)
        return {"meta": {"grids": list(grids)}, "n": len(calls)}

    monkeypatch.setattr(tr, "teacher_targets", fake_targets)
    table = type("T", (), {"__len__": lambda self: 5, "images": np.zeros((5, 1, 8, 8), np.uint8)})()
    run = tmp_path / "runs" / "t.v0"
    run.mkdir(parents=True)
    (run / "best.pt").write_bytes(b"epoch 1")
    assert tr._load_targets("t.v0", table, [8, 4])["n"] == 1
    assert tr._load_targets("t.v0", table, [8, 4])["n"] == 1  # cached
    assert tr._load_targets("t.v0", table, [4, 2])["n"] == 2  # other grids
    later = (run / "targets_train_5.pt").stat().st_mtime + 10
    (run / "best.pt").write_bytes(b"epoch 2")  # the teacher trained on: its old targets are stale
    os.utime(run / "best.pt", (later, later))
    assert tr._load_targets("t.v0", table, [4, 2])["n"] == 3 and len(calls) == 3
