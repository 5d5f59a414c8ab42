"""The model registry and the ONNX Runtime session: sha256 checks, the card contract, shapes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from libreface.align import ALIGN_VERSION
from libreface.errors import ModelError
from libreface.models import registry
from libreface.models.session import CARD_KEY, OUTPUTS, StudentModel

REPO = Path(__file__).resolve().parents[1]


def _tiny_onnx(path: Path, card: dict | None, size: int = 16) -> None:
    """A real (tiny) ONNX graph with the contract's input and outputs, built without torch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(3, n)).astype(np.float32), f"w{n}") for n in (12, 8)]
    nodes = [
        helper.make_node("ReduceMean", ["faces"], ["pooled"], axes=[2, 3], keepdims=0),
        helper.make_node("MatMul", ["pooled", "w12"], ["z12"]),
        helper.make_node("Sigmoid", ["z12"], ["au_occurrence"]),
        helper.make_node("Mul", ["au_occurrence", "five"], ["au_intensity"]),
        helper.make_node("MatMul", ["pooled", "w8"], ["z8"]),
        helper.make_node("Softmax", ["z8"], ["expression"], axis=1),
        helper.make_node("Identity", ["pooled"], ["features"]),
    ]
    inits.append(numpy_helper.from_array(np.array(5.0, np.float32), "five"))
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info("faces", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in OUTPUTS],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if card is not None:
        model.metadata_props.add(key=CARD_KEY, value=json.dumps(card))
    onnx.save(model, str(path))


def _card(**over) -> dict:
    card = {
        "name": "tiny.v1", "version": "v1", "input_size": 16, "mean": [0.5] * 3, "std": [0.25] * 3, "color": "gray",
        "align": ALIGN_VERSION, "au_intensity": [f"AU{i:02d}" for i in (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)],
        "au_occurrence": [f"AU{i:02d}" for i in (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)], "occurrence_threshold": 0.5,
        "expressions": ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"],
        "feature_dim": 3,
    }
    card.update(over)
    return card


@pytest.fixture
def weights_copy(tmp_path, monkeypatch):
    """A private copy of weights/ with a tiny registered model, selected through LIBREFACE_WEIGHTS."""
    folder = tmp_path / "weights"
    folder.mkdir()
    shutil.copy(REPO / "weights" / "face_landmarker.task", folder)
    _tiny_onnx(folder / "tiny.v1.onnx", _card())
    manifest = {"models": [
        {"name": "tiny.v1", "file": "tiny.v1.onnx", "kind": "student", "sha256": registry.sha256_file(folder / "tiny.v1.onnx")},
        {"name": "face_landmarker", "file": "face_landmarker.task", "kind": "landmarker",
         "sha256": registry.sha256_file(folder / "face_landmarker.task")},
    ]}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    monkeypatch.setenv("LIBREFACE_WEIGHTS", str(folder))
    return folder


def test_a_registered_model_loads_and_follows_the_contract(weights_copy):
    model = StudentModel.load("tiny.v1", threads=1)
    crops = np.random.default_rng(1).integers(0, 255, (5, 16, 16, 3), dtype=np.uint8)
    out = model.run_crops(crops)
    assert out["au_intensity"].shape == (5, 12) and out["au_occurrence"].shape == (5, 12)
    assert out["expression"].shape == (5, 8) and out["features"].shape == (5, 3)
    np.testing.assert_allclose(out["expression"].sum(1), 1.0, rtol=1e-5)
    assert (out["au_intensity"] >= 0).all() and (out["au_intensity"] <= 5).all()
    assert model.card.expressions[1] == "happiness" and model.threads == 1


def test_an_empty_batch_gives_empty_outputs(weights_copy):
    model = StudentModel.load("tiny.v1", threads=1)
    out = model.run_crops(np.zeros((0, 16, 16, 3), np.uint8))
    assert out["au_intensity"].shape == (0, 12) and out["features"].shape == (0, 3)


def test_mirror_averaging_is_the_mean_of_the_face_and_its_mirror_image(weights_copy):
    crops = np.random.default_rng(2).integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    plain = StudentModel.load("tiny.v1", threads=1)
    mirrored = StudentModel.load("tiny.v1", threads=1, mirror=True)
    a, b, both = plain.run_crops(crops), plain.run_crops(crops[:, :, ::-1]), mirrored.run_crops(crops)
    for k in OUTPUTS:
        assert both[k].shape == a[k].shape
        np.testing.assert_allclose(both[k], 0.5 * (a[k] + b[k]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(both["expression"].sum(1), 1.0, rtol=1e-5)
    assert mirrored.run_crops(np.zeros((0, 16, 16, 3), np.uint8))["features"].shape == (0, 3)


def test_the_shipped_default_gives_a_symmetric_face_the_same_outputs_with_or_without_mirror():
    from libreface.models.registry import DEFAULT_MODEL

    half = np.random.default_rng(3).integers(0, 255, (2, 64, 32, 3), dtype=np.uint8)
    crops = np.concatenate([half, half[:, :, ::-1]], axis=2)  # left-right symmetric faces
    plain = StudentModel.load(DEFAULT_MODEL, threads=1).run_crops(crops)
    mirrored = StudentModel.load(DEFAULT_MODEL, threads=1, mirror=True).run_crops(crops)
    for k in OUTPUTS:
        np.testing.assert_allclose(mirrored[k], plain[k], rtol=1e-4, atol=1e-4)


def test_tampered_weights_are_refused_with_one_line(weights_copy):
    path = weights_copy / "tiny.v1.onnx"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the manifest") as err:
        StudentModel.load("tiny.v1")
    assert "tiny.v1.onnx" in str(err.value) and "\n" not in str(err.value)


def test_a_missing_weights_file_is_named(weights_copy):
    (weights_copy / "tiny.v1.onnx").unlink()
    with pytest.raises(ModelError, match="missing"):
        registry.verify("tiny.v1")


def test_an_unknown_model_name_lists_the_choices(weights_copy):
    with pytest.raises(ValueError, match="available: .*tiny.v1"):
        registry.get_entry("nope.v9")


@pytest.mark.parametrize("card, message", [
    (None, "no 'libreface.card' metadata"),
    (_card(align="other-align.v0"), "trained with alignment other-align.v0"),
    ({"name": "broken"}, "model card is incomplete"),
])
def test_a_model_without_a_matching_card_is_refused(tmp_path, card, message):
    path = tmp_path / "m.onnx"
    _tiny_onnx(path, card)
    with pytest.raises(ModelError, match=message):
        StudentModel(path)


def test_a_file_that_is_not_onnx_is_refused(tmp_path):
    path = tmp_path / "m.onnx"
    path.write_text("not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        StudentModel(path)


@pytest.mark.parametrize("name", registry.list_models())
def test_every_shipped_model_matches_its_card(name, monkeypatch):
    monkeypatch.delenv("LIBREFACE_WEIGHTS", raising=False)
    model = StudentModel.load(name, threads=1)
    c = model.card
    out = model.run_crops(np.full((2, c.input_size, c.input_size, 3), 128, np.uint8))
    assert out["au_intensity"].shape == (2, len(c.au_intensity))
    assert out["au_occurrence"].shape == (2, len(c.au_occurrence))
    assert out["expression"].shape == (2, len(c.expressions)) and out["features"].shape == (2, c.feature_dim)
    assert model.card.align == ALIGN_VERSION


def test_the_shipped_landmarker_matches_its_manifest_hash():
    assert registry.verify("face_landmarker").name == "face_landmarker.task"
    assert registry.get_entry("face_landmarker").sha256.startswith("64184e22")


# -- OpenFace's 17 / 18 AUs: heads appended to a 12-AU graph, blendshape rules from the card ---------------------------

OPENFACE_I = [f"AU{i:02d}" for i in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 45)]
OPENFACE_O = [f"AU{i:02d}" for i in (1, 2, 4, 5, 6, 7, 9, 10, 12, 14, 15, 17, 20, 23, 25, 26, 28, 45)]
ADDED_I = ["AU07", "AU10", "AU14", "AU23", "AU45"]
ADDED_O = ["AU07", "AU10", "AU14", "AU23", "AU28", "AU45"]
BLINK_RULE = {"AU45": {"blendshapes": ["eyeBlinkLeft", "eyeBlinkRight"], "anchors": [0.1, 0.4, 0.9],
                       "probability": {"slope": 4.0, "intercept": -4.0}}}


def _openface_model(tmp_path: Path, rules: dict | None = None):
    from distill.au_heads import LinearHeads, append_heads

    base = tmp_path / "base.onnx"
    _tiny_onnx(base, _card())
    rng = np.random.default_rng(5)
    heads_i = LinearHeads(rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=5).astype(np.float32))
    heads_o = LinearHeads(rng.normal(size=(6, 3)).astype(np.float32), rng.normal(size=6).astype(np.float32))
    card = _card(name="tiny17.v2", au_intensity=OPENFACE_I, au_occurrence=OPENFACE_O,
                 **({"blendshape_aus": rules} if rules else {}))
    path = tmp_path / "tiny17.onnx"
    append_heads(base, path, card, heads_i, ADDED_I, heads_o, ADDED_O)
    return base, path, heads_i, heads_o


def test_a_model_with_openfaces_17_and_18_aus_keeps_the_base_columns_and_adds_the_heads(tmp_path):
    base, path, heads_i, heads_o = _openface_model(tmp_path)
    model, old = StudentModel(path, threads=1), StudentModel(base, threads=1)
    assert list(model.card.au_intensity) == OPENFACE_I and list(model.card.au_occurrence) == OPENFACE_O
    crops = np.random.default_rng(6).integers(0, 255, (4, 16, 16, 3), dtype=np.uint8)
    out, ref = model.run_crops(crops), old.run_crops(crops)
    assert out["au_intensity"].shape == (4, 17) and out["au_occurrence"].shape == (4, 18)
    for k in ("expression", "features"):
        np.testing.assert_array_equal(out[k], ref[k])
    for j, name in enumerate(old.card.au_intensity):  # the 12 DISFA AUs: the base's values, at their OpenFace place
        np.testing.assert_allclose(out["au_intensity"][:, OPENFACE_I.index(name)], ref["au_intensity"][:, j], rtol=1e-6)
        np.testing.assert_allclose(out["au_occurrence"][:, OPENFACE_O.index(name)], ref["au_occurrence"][:, j], rtol=1e-6)
    z_i, z_o = heads_i.logits(out["features"]), heads_o.logits(out["features"])
    for j, name in enumerate(ADDED_I):
        np.testing.assert_allclose(out["au_intensity"][:, OPENFACE_I.index(name)], 5 / (1 + np.exp(-z_i[:, j])), rtol=1e-5)
    for j, name in enumerate(ADDED_O):
        np.testing.assert_allclose(out["au_occurrence"][:, OPENFACE_O.index(name)], 1 / (1 + np.exp(-z_o[:, j])), rtol=1e-5)


def test_blendshape_aus_of_the_card_overwrite_only_their_au(tmp_path):
    from libreface.landmarks import BLENDSHAPE_NAMES
    from libreface.models.blendshape_aus import BlendshapeAUs

    _, path, _, _ = _openface_model(tmp_path, BLINK_RULE)
    model = StudentModel(path, threads=1)
    rules = BlendshapeAUs.from_card(model.card)
    out = model.run_crops(np.full((1, 16, 16, 3), 90, np.uint8))
    vals = {k: v[0] for k, v in out.items()}
    bs = np.zeros(52, np.float32)
    for eyes, want_i in ((0.4, 1.0), (0.65, 3.0), (0.05, 0.0), (1.0, 5.0)):  # trace -> 1, halfway to top -> 3, clipped
        bs[[BLENDSHAPE_NAMES.index("eyeBlinkLeft"), BLENDSHAPE_NAMES.index("eyeBlinkRight")]] = eyes
        new = rules.apply(bs, vals)
        i, o = OPENFACE_I.index("AU45"), OPENFACE_O.index("AU45")
        assert new["au_intensity"][i] == pytest.approx(want_i)
        assert new["au_occurrence"][o] == pytest.approx(1 / (1 + np.exp(-(4 * want_i - 4))))
        keep_i, keep_o = np.arange(17) != i, np.arange(18) != o
        np.testing.assert_array_equal(new["au_intensity"][keep_i], vals["au_intensity"][keep_i])
        np.testing.assert_array_equal(new["au_occurrence"][keep_o], vals["au_occurrence"][keep_o])
    assert vals["au_intensity"][OPENFACE_I.index("AU45")] == out["au_intensity"][0, OPENFACE_I.index("AU45")]  # not mutated
    assert np.isnan(rules.apply(np.full(52, np.nan, np.float32), vals)["au_intensity"][OPENFACE_I.index("AU45")])


def test_a_12_au_card_has_no_blendshape_rules_and_a_broken_rule_is_named(weights_copy):
    from libreface.models.blendshape_aus import BlendshapeAUs
    from libreface.models.session import ModelCard

    assert BlendshapeAUs.from_card(StudentModel.load("tiny.v1", threads=1).card) is None
    for rule, message in (({"AU45": {"blendshapes": ["eyeBlinkLeft"], "anchors": [0.5, 0.4, 0.9],
                                     "probability": {"slope": 1, "intercept": 0}}}, "AU45.*malformed"),
                          ({"AU45": {"blendshapes": ["noSuchShape"], "anchors": [0.1, 0.4, 0.9],
                                     "probability": {"slope": 1, "intercept": 0}}}, "malformed"),
                          (BLINK_RULE, "does not report")):  # the 12-AU card has no AU45
        card = ModelCard.from_json(json.dumps(_card(blendshape_aus=rule)), "x.onnx")
        with pytest.raises(ModelError, match=message) as err:
            BlendshapeAUs.from_card(card)
        assert "\n" not in str(err.value)
