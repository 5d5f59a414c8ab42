"""Build hook: put the default student, the MediaPipe landmarker, their manifest, cards and NOTICE into the wheel.

Everything else is in pyproject.toml. The binaries stay in the repo's `weights/` only (never duplicated in git):
`build_py` copies the files that `weights/manifest.json` ships (its `"default"` student and every "landmarker")
into `libreface/_weights/` of the build, checking each sha256 against the manifest, and writes a manifest that
lists exactly those files. `sdist` carries the same subset under `weights/`, so a wheel built from the sdist is the
same. An editable install copies nothing: it reads the checkout's `weights/`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
WEIGHTS = "weights"
PACKAGED = Path("libreface") / "_weights"  # must match libreface.weights.PACKAGED


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def shipped(weights: Path) -> tuple[dict, list[str]]:
    """The manifest to ship (the default student + the landmarker(s)) and every file that goes with it, relative
    to `weights`: the weights files, their model cards (cards/<name>.md, when present) and NOTICE."""
    path = weights / "manifest.json"
    data = json.loads(path.read_text())
    default = data.get("default")
    models = [m for m in data["models"] if m["name"] == default or m.get("kind") == "landmarker"]
    if default not in {m["name"] for m in models}:
        raise SystemExit(f"{path}: \"default\" ({default!r}) names no model of the manifest")
    files = [m["file"] for m in models]
    files += [f"cards/{m['name']}.md" for m in models if (weights / "cards" / f"{m['name']}.md").is_file()]
    files += ["NOTICE", "manifest.json"]
    return {"default": default, "models": models}, files


def copy_weights(src: Path, dst: Path) -> list[Path]:
    """Copy the shipped subset of weights folder `src` into `dst` (sha256-checked); returns the written paths."""
    manifest, files = shipped(src)
    sums = {m["file"]: m["sha256"] for m in manifest["models"]}
    out = []
    for rel in files:
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()  # sdist hard-links files: never write through a link into the checkout
        if rel == "manifest.json":
            target.write_text(json.dumps(manifest, indent=1) + "\n")
        else:
            if not (src / rel).is_file():
                raise SystemExit(f"{src / rel}: missing; it is listed in {src / 'manifest.json'}")
            shutil.copyfile(src / rel, target)
            if rel in sums and _sha256(target) != sums[rel]:
                raise SystemExit(f"{src / rel}: sha256 does not match {src / 'manifest.json'}; not packaging it")
        out.append(target)
    return out


class BuildPyWithWeights(build_py):
    """`build_py` that also writes `libreface/_weights/` (not in editable mode: the checkout's weights/ is used)."""

    def run(self) -> None:
        super().run()
        if not getattr(self, "editable_mode", False):
            dst = Path(self.build_lib) / PACKAGED
            shutil.rmtree(dst, ignore_errors=True)  # a model of an earlier build (an older default) never lingers
            self._weights = copy_weights(ROOT / WEIGHTS, dst)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *map(str, getattr(self, "_weights", []))]


class SdistWithWeights(sdist):
    """`sdist` that carries the shipped subset of weights/ (and a manifest listing only that subset)."""

    def make_release_tree(self, base_dir: str, files: list[str]) -> None:
        super().make_release_tree(base_dir, files)
        copy_weights(ROOT / WEIGHTS, Path(base_dir) / WEIGHTS)


if __name__ == "__main__":  # setuptools runs this file as __main__
    setup(cmdclass={"build_py": BuildPyWithWeights, "sdist": SdistWithWeights})
