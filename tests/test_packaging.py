"""The packaged path: sdist -> wheel -> a fresh venv, then `libreface` from an unrelated folder, offline.

The wheel must carry every file its manifest names (the default student only, the landmarker, cards, NOTICE),
stay under the size budget, and give the same CSV as the source tree. Deselect with `-m "not packaging"`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.packaging

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.mp4"
BUDGET_BYTES = 30 * 1024 * 1024
PACKAGED = "libreface/_weights/"


def _env() -> dict[str, str]:
    """The environment without anything that would point Python or libreface back at the checkout."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LIBREFACE_WEIGHTS", "PYTHONHOME")}
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INDEX": "1", "HF_HUB_OFFLINE": "1"}


def _run(cmd: list, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The sdist and the wheel built from it (`python -m build` unpacks the sdist and builds the wheel there, so the
    wheel proves the sdist is complete), both into a temp folder; nothing is written into the checkout's dist/."""
    pytest.importorskip("build", reason="the dev extra's `build` is needed to build the sdist and wheel")
    out = tmp_path_factory.mktemp("dist")
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, REPO], cwd=out)
    wheels, sdists = sorted(out.glob("*.whl")), sorted(out.glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, sorted(p.name for p in out.iterdir())
    return {"wheel": wheels[0], "sdist": sdists[0]}


def test_the_wheel_ships_exactly_its_manifest_under_budget(built):
    wheel = built["wheel"]
    assert wheel.stat().st_size < BUDGET_BYTES, f"{wheel.name}: {wheel.stat().st_size / 2**20:.1f} MiB > 30 MiB"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        manifest = json.loads(z.read(PACKAGED + "manifest.json"))
    repo_manifest = json.loads((REPO / "weights" / "manifest.json").read_text())
    assert manifest["default"] == repo_manifest["default"]
    files = {m["file"] for m in manifest["models"]}
    assert {m["name"] for m in manifest["models"] if m["kind"] == "student"} == {repo_manifest["default"]}
    assert "face_landmarker.task" in files
    expected = {PACKAGED + f for f in files | {"manifest.json", "NOTICE", f"cards/{manifest['default']}.md"}}
    shipped = {n for n in names if n.startswith(PACKAGED)}
    assert shipped == expected, f"missing {sorted(expected - shipped)}, extra {sorted(shipped - expected)}"
    assert not any(n.startswith("weights/") for n in names), "the repo's weights/ must not ship as a top-level folder"


def test_the_sdist_carries_the_same_weights_subset(built):
    with tarfile.open(built["sdist"]) as t:
        names = {n.split("/", 1)[1] for n in t.getnames() if "/" in n}
        top = t.getnames()[0].split("/")[0]
        manifest = json.loads(t.extractfile(f"{top}/weights/manifest.json").read())
    files = {f"weights/{m['file']}" for m in manifest["models"]}
    assert files <= names and "weights/NOTICE" in names and "setup.py" in names
    assert {n for n in names if n.endswith(".onnx")} == {f for f in files if f.endswith(".onnx")}


def test_the_installed_wheel_gives_the_source_trees_csv_from_another_folder(built, tmp_path):
    venv, work = tmp_path / "venv", tmp_path / "elsewhere"
    work.mkdir()
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=tmp_path)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # the venv sees the system's pip (--system-site-packages) and installs into itself: no network, no deps
    _run([py, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", built["wheel"]], cwd=tmp_path)
    where = _run([py, "-c", "import libreface, libreface.weights as w; print(libreface.__file__); print(w.weights_dir())"],
                 cwd=work).stdout.split("\n")
    assert Path(where[0]).resolve().is_relative_to(venv.resolve()), f"libreface imported from {where[0]}, not the venv"
    assert not Path(where[1]).resolve().is_relative_to(REPO), f"weights read from the checkout: {where[1]}"

    video = shutil.copy(EXAMPLE, work / "clip.mp4")
    script = venv / ("Scripts/libreface.exe" if os.name == "nt" else "bin/libreface")
    _run([script, video, "-o", work / "wheel.csv", "--quiet", "--threads", "1"], cwd=work)
    _run([sys.executable, "-m", "libreface", video, "-o", work / "source.csv", "--quiet", "--threads", "1"], cwd=REPO)

    def lines(path: Path) -> list[str]:  # provenance comments may name paths (venv vs checkout): only those differ
        text = path.read_text()
        for root in (str(venv), str(REPO), str(work)):
            text = text.replace(root, "<root>")
        return text.splitlines()

    wheel, source = lines(work / "wheel.csv"), lines(work / "source.csv")
    assert len(wheel) > 100 and wheel[0] == source[0]
    assert wheel == source, "the wheel's CSV differs from the source tree's"
