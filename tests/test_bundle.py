"""The desktop bundle (dist/libreface, built by `packaging/build.sh`) runs without Python, offline.

Marked `bundle` and skipped unless a built bundle exists (building takes minutes, so CI does not):

    packaging/build.sh --no-smoke && python -m pytest -m bundle tests/test_bundle.py

Set LIBREFACE_BUNDLE to test a bundle somewhere else. The checks are those of `packaging/smoke.py`,
which runs every bundled program with an empty environment (like `env -i`).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = Path(os.environ.get("LIBREFACE_BUNDLE", ROOT / "dist" / "libreface"))


def _load_smoke():
    # packaging/ is not a package (and `import packaging` is PyPI's): load the script by its path.
    spec = importlib.util.spec_from_file_location("libreface_bundle_smoke", ROOT / "packaging" / "smoke.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


smoke = _load_smoke()

pytestmark = [
    pytest.mark.bundle,
    pytest.mark.skipif(not (BUNDLE / f"libreface{smoke.EXE_SUFFIX}").is_file(),
                       reason=f"no desktop bundle at {BUNDLE}; build it with packaging/build.sh"),
]


@pytest.fixture
def work(tmp_path):
    return tmp_path


def _assert(check):
    assert check.ok, f"{check.name}: {check.detail}"


def test_the_bundled_cli_names_its_version(work):
    _assert(smoke.check_version(BUNDLE, work))


def test_the_bundled_cli_verifies_every_model_inside_the_bundle(work):
    _assert(smoke.check_info(BUNDLE, work))


def test_the_bundled_cli_writes_a_row_for_each_of_the_150_example_frames_without_python(work):
    _assert(smoke.check_cli_example(BUNDLE, work))


def test_the_bundled_gui_analyses_the_example_offscreen_and_exits_0(work):
    _assert(smoke.check_gui_screenshot(BUNDLE, work))


def test_the_bundled_gui_stays_up_after_starting(work):
    _assert(smoke.check_gui_stays_up(BUNDLE, work))


def test_training_and_optional_packages_are_not_in_the_bundle():
    _assert(smoke.check_excluded(BUNDLE))


def test_the_bundle_ships_its_third_party_notices_and_licence():
    internal = BUNDLE / "_internal"
    notices = (internal / "THIRD_PARTY_NOTICES.txt").read_text(encoding="utf-8")
    for name in ("mediapipe", "onnxruntime", "PySide6", "LGPL", "face_landmarker.task", "Apache License"):
        assert name in notices, f"THIRD_PARTY_NOTICES.txt does not mention {name}"
    assert (internal / "LICENSE").is_file() and (internal / "weights" / "NOTICE").is_file()


def test_the_release_bundles_ffmpeg_is_decode_only_lgpl_with_its_licence_and_configuration():
    internal = BUNDLE / "_internal"
    if (internal / "av.libs").is_dir():
        pytest.skip("built without --slim: the bundle carries the PyAV wheel's FFmpeg")
    ffmpeg = internal / "licenses" / "ffmpeg"
    assert (ffmpeg / "COPYING.LGPLv2.1").is_file() and (ffmpeg / "LICENSE.md").is_file()
    configuration = (ffmpeg / "ffmpeg-configuration.txt").read_text()
    assert "--disable-everything" in configuration and "--enable-decoder=" in configuration
    assert "--enable-gpl" not in configuration and "--enable-nonfree" not in configuration
    assert not [p.name for p in internal.rglob("libx26*")] and not [p.name for p in internal.rglob("libSvtAv1Enc*")]
