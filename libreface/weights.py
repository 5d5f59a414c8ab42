"""Weights lookup, the lowest layer under landmarks and models: a model name -> a file in `weights/` and its sha256.

The table is `weights/manifest.json`, written by `distill export`; every file is verified against it
before it is loaded. Only the standard library is used here, so `libreface.landmarks` (the MediaPipe
landmarker file) and `libreface.models` (the ONNX students) both import it without importing each other.
`libreface.models.registry` re-exports these names.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ModelError

DEFAULT_MODEL = "au_r10t_int8.v3"


@dataclass(frozen=True)
class ModelEntry:
    """A shipped weights file.

    Attributes:
        name: registry name, "task_arch.version" (e.g. "au_r18.v1").
        file: path relative to the weights folder.
        sha256: hex digest the file must have.
        kind: "student" (ONNX, the model contract) or "landmarker" (MediaPipe bundle).
    """

    name: str
    file: str
    sha256: str
    kind: str = "student"


def weights_dir() -> Path:
    """The weights folder: `$LIBREFACE_WEIGHTS`, else the installed package's, else the repo's."""
    env = os.environ.get("LIBREFACE_WEIGHTS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent  # the `libreface` package folder
    for cand in (here / "weights", here.parent / "weights"):
        if (cand / "manifest.json").exists():
            return cand
    return here.parent / "weights"


@lru_cache(maxsize=4)
def _manifest(folder: str) -> dict[str, ModelEntry]:
    path = Path(folder) / "manifest.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: weights manifest not found; reinstall libreface or set LIBREFACE_WEIGHTS") from None
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: weights manifest is not valid JSON ({e})") from None
    return {m["name"]: ModelEntry(m["name"], m["file"], m["sha256"], m.get("kind", "student")) for m in data["models"]}


def list_models(pattern: str = "*", kind: str | None = "student") -> list[str]:
    """Registered model names matching a glob `pattern` (students only by default)."""
    entries = _manifest(str(weights_dir()))
    return sorted(n for n in fnmatch.filter(entries, pattern) if kind is None or entries[n].kind == kind)


def model_versions() -> list[str]:
    """One line per shipped weights file, `name  file  sha256 <hex>` (+ `  (default)` on the default
    student), for `--version`, `info` and About boxes."""
    entries = _manifest(str(weights_dir()))
    return [f"{e.name}  {e.file}  sha256 {e.sha256}" + ("  (default)" if e.name == DEFAULT_MODEL else "")
            for _, e in sorted(entries.items())]


def get_entry(name: str) -> ModelEntry:
    """The registry entry of `name`; ValueError listing the choices when unknown."""
    entries = _manifest(str(weights_dir()))
    if name not in entries:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(sorted(entries))}")
    return entries[name]


def sha256_file(path: Path) -> str:
    """Hex sha256 digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify(name: str) -> Path:
    """Path of model `name` after checking its sha256 against the manifest (ModelError if not)."""
    entry = get_entry(name)
    path = weights_dir() / entry.file
    if not path.exists():
        raise ModelError(f"{path}: weights file of model {name!r} is missing; reinstall libreface")
    got = sha256_file(path)
    if got != entry.sha256:
        raise ModelError(
            f"{path}: sha256 {got[:12]}… does not match the manifest ({entry.sha256[:12]}…); the file is damaged or was replaced, reinstall libreface"
        )
    return path


def weights_path(file: str) -> Path:
    """Verified path of a weights file given by its file name (e.g. "face_landmarker.task")."""
    for name, entry in _manifest(str(weights_dir())).items():
        if entry.file == file:
            return verify(name)
    raise ModelError(f"{weights_dir() / file}: not listed in the weights manifest")
