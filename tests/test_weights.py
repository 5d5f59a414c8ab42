"""The installed weights set: what the manifest lists and the folder holds, the default named once, the build hook."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from libreface import weights

REPO = Path(__file__).resolve().parents[1]
MANIFEST = json.loads((REPO / "weights" / "manifest.json").read_text())
DEFAULT = MANIFEST["default"]


def _folder(tmp_path: Path, names: set[str], default: str = DEFAULT) -> Path:
    """A weights folder whose manifest is the repo's (default replaced) but which holds only `names` (symlinks)."""
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps({**MANIFEST, "default": default}))
    for m in MANIFEST["models"]:
        if m["name"] in names:
            (folder / m["file"]).symlink_to(REPO / "weights" / m["file"])
    return folder


def test_only_students_whose_file_is_present_are_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("LIBREFACE_WEIGHTS", str(_folder(tmp_path, {DEFAULT, "face_landmarker"})))
    assert weights.list_models() == [DEFAULT]
    assert weights.default_model() == DEFAULT and weights.get_entry("default").name == DEFAULT
    absent = next(m["name"] for m in MANIFEST["models"] if m["name"] != DEFAULT and m.get("kind") == "student")
    with pytest.raises(weights.ModelError, match=rf"{absent}.*not installed; available: {DEFAULT} \("):
        weights.verify(absent)
    with pytest.raises(ValueError, match=rf"unknown model 'nope'; available: {DEFAULT}$"):
        weights.get_entry("nope")


def test_teachers_are_kept_for_training_but_never_offered():
    teachers = [m["name"] for m in MANIFEST["models"] if m.get("kind") == "teacher"]
    assert teachers and not set(teachers) & set(weights.list_models(kind="student"))
    assert MANIFEST["models"][[m["name"] for m in MANIFEST["models"]].index(DEFAULT)]["kind"] == "student"


def test_the_default_is_read_from_the_manifest(tmp_path, monkeypatch):
    other = next(m["name"] for m in MANIFEST["models"] if m["name"] != DEFAULT and m.get("kind") == "student")
    monkeypatch.setenv("LIBREFACE_WEIGHTS", str(_folder(tmp_path, {other, "face_landmarker"}, default=other)))
    assert weights.default_model() == other and weights.DEFAULT_MODEL == other
    assert [v.split()[0] for v in weights.model_versions() if v.endswith("(default)")] == [other]


def test_info_and_model_list_exactly_what_is_installed(tmp_path):
    folder = _folder(tmp_path, {DEFAULT, "face_landmarker"})
    env = {**os.environ, "LIBREFACE_WEIGHTS": str(folder)}
    r = subprocess.run([sys.executable, "-m", "libreface", "info"], env=env, capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr
    listed = [line.split()[0] for line in r.stdout.splitlines() if line.startswith("  ") and "sha256" in line]
    assert listed == sorted([DEFAULT, "face_landmarker"])
    r = subprocess.run([sys.executable, "-m", "libreface", "x.mp4", "--model", "au_r18.v1"], env=env,
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 2 and f"unknown model 'au_r18.v1'; available: {DEFAULT} or an .onnx file" in r.stderr


def test_the_build_hook_ships_the_manifests_default_only(tmp_path):
    spec = importlib.util.spec_from_file_location("libreface_setup", REPO / "setup.py")
    setup = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup)  # defines the hook; setup() itself only runs as __main__
    other = next(m["name"] for m in MANIFEST["models"] if m["name"] != DEFAULT and m.get("kind") == "student")
    folder = _folder(tmp_path, {other, "face_landmarker"}, default=other)
    (folder / "NOTICE").write_text("notice\n")
    out = setup.copy_weights(folder, tmp_path / "pkg")
    shipped = json.loads((tmp_path / "pkg" / "manifest.json").read_text())
    assert shipped["default"] == other and [m["name"] for m in shipped["models"]] == [other, "face_landmarker"]
    assert sorted(p.name for p in out if p.suffix == ".onnx") == [f"{other}.onnx"]
    (folder / f"{other}.onnx").unlink()
    (folder / f"{other}.onnx").write_bytes(b"not the model")
    with pytest.raises(SystemExit, match="sha256 does not match"):
        setup.copy_weights(folder, tmp_path / "pkg2")
