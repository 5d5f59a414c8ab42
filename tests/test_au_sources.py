"""`distill au-sources`: a student with OpenFace heads takes AU45/AU28 from an earlier model's blendshape mapping
where its heads do not win; only the card changes, never the graph."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch", reason="the train extra (torch) is not installed")

from test_models import BLINK_RULE, _openface_model  # noqa: E402 - the tiny 17/18-AU graphs of the runtime tests

LIP_RULE = {"AU28": {"blendshapes": ["mouthRollLower", "mouthRollUpper"], "anchors": [0.02, 0.09, 0.41],
                     "probability": {"slope": 4.0, "intercept": -4.0}}}


def _graph(path):
    import onnx

    m = onnx.load(str(path))
    del m.metadata_props[:]
    return m.SerializeToString()


def test_without_videos_the_mapping_of_the_donor_is_copied_and_the_graph_kept(tmp_path):
    from distill.au_sources import apply_sources, choose_sources, markdown
    from libreface.models.blendshape_aus import BlendshapeAUs
    from libreface.models.session import StudentModel

    (tmp_path / "d").mkdir()
    (tmp_path / "m").mkdir()
    _, donor, _, _ = _openface_model(tmp_path / "d", {**BLINK_RULE, **LIP_RULE})
    _, model, _, _ = _openface_model(tmp_path / "m")
    before = _graph(model)
    crops = np.random.default_rng(1).integers(0, 255, (3, 16, 16, 3), dtype=np.uint8)
    out_before = StudentModel(model, threads=1).run_crops(crops)
    decision = choose_sources(model, donor, [])
    assert decision["AU45"]["source"] == "blendshapes" and "unmeasured" in decision["AU45"]["measured_against"]
    assert decision["AU28"]["source"] == "blendshapes"
    assert decision["entries"] == {**LIP_RULE, **BLINK_RULE}
    apply_sources(model, decision)
    assert _graph(model) == before  # metadata only
    loaded = StudentModel(model, threads=1)
    assert set(BlendshapeAUs.from_card(loaded.card).rules) == {"AU28", "AU45"}
    np.testing.assert_array_equal(loaded.run_crops(crops)["au_intensity"], out_before["au_intensity"])
    assert "**blendshapes**" in markdown(decision)
    with pytest.raises(SystemExit, match="already has"):  # heads are measured once, on a file without overrides
        choose_sources(model, donor, [])


def test_a_donor_without_the_mapping_is_named(tmp_path):
    from distill.au_sources import choose_sources

    (tmp_path / "d").mkdir()
    (tmp_path / "m").mkdir()
    _, donor, _, _ = _openface_model(tmp_path / "d", BLINK_RULE)
    _, model, _, _ = _openface_model(tmp_path / "m")
    with pytest.raises(SystemExit, match=r"d[/\\]tiny17.onnx: its card has no blendshape mapping for AU28"):
        choose_sources(model, donor, [])


def test_the_command_updates_the_manifest_of_a_registered_file(tmp_path):
    from distill.cli import main
    from distill.export import update_manifest
    from libreface.models.registry import sha256_file

    (tmp_path / "d").mkdir()
    w = tmp_path / "w"
    w.mkdir()
    _, donor, _, _ = _openface_model(tmp_path / "d", {**BLINK_RULE, **LIP_RULE})
    _, model, _, _ = _openface_model(w)
    update_manifest([{"name": "tiny17.v2", "file": model.name, "kind": "student"}], w)
    assert main(["au-sources", "--model", str(model), "--from", str(donor), "--out", str(tmp_path / "r")]) == 0
    entry = json.loads((w / "manifest.json").read_text())["models"][0]
    assert entry["sha256"] == sha256_file(model)
    assert json.loads((tmp_path / "r" / "au_sources.json").read_text())["AU28"]["source"] == "blendshapes"


def test_the_command_names_a_missing_file_or_model_in_one_line(tmp_path, capsys):
    from distill.cli import main

    (tmp_path / "m").mkdir()
    _, model, _, _ = _openface_model(tmp_path / "m")
    with pytest.raises(SystemExit, match=r"nope\.onnx: no such file"):
        main(["au-sources", "--model", str(tmp_path / "nope.onnx"), "--out", str(tmp_path / "r")])
    with pytest.raises(SystemExit) as err:
        main(["au-sources", "--model", str(model), "--from", "no_such_model.v1", "--out", str(tmp_path / "r")])
    assert "no_such_model.v1" in str(err.value) and "\n" not in str(err.value)
