"""Weights lookup, the lowest layer under landmarks and models: a model name -> a file in `weights/` and its sha256.

The table is `manifest.json` in the weights folder, written by `distill export` (and, for a wheel, by the
build hook in `setup.py`, which ships only the default student); it also names the default student, the
one place that name is kept. Every file is verified against the table before it is loaded; entries whose
file is absent are simply not installed. Only the standard library is used here, so `libreface.landmarks`
(the MediaPipe landmarker file) and `libreface.models` (the ONNX students) both import it without importing
each other. `libreface.models.registry` re-exports these names.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from .errors import ModelError

PACKAGED = "_weights"  # the weights folder inside an installed wheel: libreface/_weights/
DEFAULT_ALIAS = "default"  # a model name that always means the manifest's default student
FULL_SET_HINT = "for other models point LIBREFACE_WEIGHTS at a full weights folder (a checkout's weights/)"


@dataclass(frozen=True)
class ModelEntry:
    """A shipped weights file.

    Attributes:
        name: registry name, "task_arch.version" (e.g. "au_r18.v1").
        file: path relative to the weights folder.
        sha256: hex digest the file must have.
        kind: "student" (ONNX, the model contract), "teacher" (an fp32 student kept for `distill recover`, not
            offered to users) or "landmarker" (MediaPipe bundle).
    """

    name: str
    file: str
    sha256: str
    kind: str = "student"


def weights_dir() -> Path:
    """The weights folder: `$LIBREFACE_WEIGHTS`, else the installed package's `libreface/_weights/` (a wheel),
    else `weights/` beside the package (a source checkout or editable install; the desktop bundle)."""
    env = os.environ.get("LIBREFACE_WEIGHTS")
    if env:
        return Path(env)
    packaged = resources.files(__package__) / PACKAGED
    if isinstance(packaged, Path) and (packaged / "manifest.json").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "weights"


@lru_cache(maxsize=4)
def _read(folder: str) -> tuple[dict[str, ModelEntry], str | None]:
    path = Path(folder) / "manifest.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: weights manifest not found; reinstall libreface or set LIBREFACE_WEIGHTS") from None
    except json.JSONDecodeError as e:
        raise ModelError(f"{path}: weights manifest is not valid JSON ({e})") from None
    try:
        entries = {m["name"]: ModelEntry(m["name"], m["file"], m["sha256"], m.get("kind", "student"))
                   for m in data["models"]}
    except (KeyError, TypeError) as e:
        raise ModelError(f"{path}: weights manifest lacks {e} (expected {{'default': ..., 'models': [...]}})") from None
    return entries, data.get("default")


def _manifest(folder: str) -> dict[str, ModelEntry]:
    """Every entry of `folder`'s manifest by name, installed or not."""
    return _read(folder)[0]


def default_model() -> str:
    """Name of the default student: the manifest's `"default"` (ModelError when it names none)."""
    folder = weights_dir()
    entries, default = _read(str(folder))
    if default not in entries:
        raise ModelError(f"{folder / 'manifest.json'}: names no default student (a \"default\" key naming one of its models)")
    return default


def __getattr__(name: str) -> str:
    """`DEFAULT_MODEL`, read from the manifest when first imported (the alias "default" when it cannot be read,
    so that importing never fails; using the alias then reports the manifest's problem)."""
    if name == "DEFAULT_MODEL":
        try:
            return default_model()
        except ModelError:
            return DEFAULT_ALIAS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def installed(kind: str | None = None) -> list[ModelEntry]:
    """Manifest entries whose file is present in the weights folder (of `kind` when given), sorted by name."""
    folder = weights_dir()
    return [e for _, e in sorted(_manifest(str(folder)).items())
            if (kind is None or e.kind == kind) and (folder / e.file).is_file()]


def list_models(pattern: str = "*", kind: str | None = "student") -> list[str]:
    """Installed model names matching a glob `pattern` (usable students only by default; teachers, kept for
    training, have kind "teacher"; the MediaPipe bundle "landmarker")."""
    names = [e.name for e in installed(kind)]
    return sorted(fnmatch.filter(names, pattern))


def _available() -> str:
    return ", ".join(list_models()) or "(none installed)"


def model_versions() -> list[str]:
    """One line per installed weights file, `name  file  sha256 <hex>` (+ `  (default)` on the default
    student), for `--version`, `info` and About boxes."""
    default = default_model()
    return [f"{e.name}  {e.file}  sha256 {e.sha256}" + ("  (default)" if e.name == default else "")
            for e in installed()]


def get_entry(name: str) -> ModelEntry:
    """The manifest entry of `name` ("default" = the default student); ValueError listing the installed students
    when unknown."""
    if name == DEFAULT_ALIAS:
        name = default_model()
    entries = _manifest(str(weights_dir()))
    if name not in entries:
        raise ValueError(f"unknown model {name!r}; available: {_available()}")
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
        raise ModelError(f"{path}: model {entry.name!r} is not installed; available: {_available()} "
                         f"({FULL_SET_HINT})")
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
