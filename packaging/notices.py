"""Write THIRD_PARTY_NOTICES.txt for the desktop bundle from the bundled packages' own metadata.

    python packaging/notices.py -o THIRD_PARTY_NOTICES.txt [MODULE ...]

The PyInstaller spec calls `write_notices(path, modules)` with the top-level module names it collected,
so the file lists exactly what is inside the bundle. Each distribution gets its name, version, licence
(`License-Expression`, `License`, or the licence classifiers) and the text of its licence files when the
wheel ships them. Then come the notes that no package metadata carries: the MediaPipe model (Apache-2.0),
Qt / PySide6 (LGPL-3.0: the one-folder layout keeps the Qt libraries as separate, replaceable files),
FFmpeg (built here or inside the PyAV wheel), ICU's trimmed data, the Python interpreter, and libreface's own LICENSE and weights NOTICE.
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import re
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RULE = "=" * 100
LICENCE_FILE = re.compile(r"(^|/)(LICEN[CS]E|COPYING|NOTICE)[^/]*$", re.IGNORECASE)
# The runtime's own distributions when no module list is given (the CLI and the GUI, without extras).
DEFAULT_MODULES = ("libreface", "gui", "mediapipe", "onnxruntime", "numpy", "pandas", "av", "PIL", "tqdm",
                   "PySide6", "shiboken6", "pyqtgraph", "flatbuffers", "dateutil", "pytz", "tzdata", "six")
# Our own project is described by LICENSE below, not as a third party.
OWN = {"libreface-cpu"}

QT_NOTE = """\
Qt 6 and PySide6 / Shiboken6 (The Qt Company), used under the GNU Lesser General Public License v3.0
(LGPL-3.0-only; PySide6 is also offered under GPL and commercial licences).
- The Qt and PySide6 libraries are shipped unmodified as separate shared libraries in the bundle folder
  (_internal/PySide6/Qt/lib, _internal/PySide6/*.so and _internal/shiboken6/ on Linux; the equivalent
  folders on Windows and macOS). The bundle is a one-folder application, so you may replace these files
  with your own build of the same Qt / PySide6 version and the application will use them.
- The source code of Qt is available from https://download.qt.io/official_releases/qt/ and of PySide6
  from https://code.qt.io/pyside/pyside-setup.git; the exact versions are listed above.
- The full LGPL-3.0 and GPL-3.0 texts are in the PySide6 entry above when its wheel ships them, and at
  https://www.gnu.org/licenses/lgpl-3.0.txt and https://www.gnu.org/licenses/gpl-3.0.txt.
"""

FFMPEG_NOTE = """\
FFmpeg (libavcodec, libavformat, libavutil, libavfilter, libavdevice, libswscale, libswresample) is shipped as
separate shared libraries under the GNU Lesser General Public License v2.1 or later; you may replace them with
your own builds of the same version. In the release bundle (`packaging/build.sh --slim`) they are built by
packaging/build_ffmpeg.sh from the unmodified FFmpeg 8.1.2 source (https://ffmpeg.org/releases/, also Debian's
ffmpeg source package), configured for decoding only and without --enable-gpl or --enable-nonfree, and sit in
_internal/ next to dav1d (libdav1d, BSD-2-Clause, from Debian) for AV1. The LGPL text, FFmpeg's LICENSE.md, the
exact configuration and dav1d's copyright are in _internal/licenses/ffmpeg/; that script is the complete build
recipe. A plain `packaging/build.sh` ships the PyAV wheel's FFmpeg instead (_internal/av.libs), whose encoders
(x264, x265 under GPL; libvpx, SVT-AV1, LAME, ...) keep their own licences, listed in PyAV's licence files.

ICU (Unicode-3.0 licence, in the PySide6 wheel): its data library libicudata is rebuilt by the spec without the
display-name, spell-out and transliteration tables the app never reads (ICU's documented data customisation with
icupkg); the ICU code libraries are unmodified.
"""


MEDIAPIPE_MODEL_NOTE = """\
weights/face_landmarker.task: the Google MediaPipe Face Landmarker model bundle (face_detector.tflite,
face_landmarks_detector.tflite, face_blendshapes.tflite, geometry_pipeline_metadata_landmarks.binarypb),
Copyright 2023 Google LLC, licensed under the Apache License, Version 2.0 (text in libreface's LICENSE below).
The MediaPipe runtime library (libmediapipe) is Apache-2.0 as well (its entry above).
"""


def distributions_for(modules: Iterable[str]) -> list[md.Distribution]:
    """The installed distributions that provide the top-level `modules`, sorted by name, without duplicates."""
    owners = md.packages_distributions()
    names: set[str] = set()
    for module in modules:
        names.update(owners.get(module, ()))
    found: dict[str, md.Distribution] = {}
    for name in sorted(names, key=str.lower):
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue
        found.setdefault(dist.metadata["Name"].lower(), dist)
    return [found[k] for k in sorted(found)]


def licence_of(dist: md.Distribution) -> str:
    """One line: the SPDX expression, else the `License` field (first line), else the licence classifiers."""
    meta = dist.metadata
    if meta.get("License-Expression"):
        return meta["License-Expression"]
    text = (meta.get("License") or "").strip()
    if text and len(text) < 200 and "\n" not in text:
        return text
    classifiers = [c.split("::")[-1].strip() for c in meta.get_all("Classifier") or [] if c.startswith("License ::")]
    if classifiers:
        return "; ".join(classifiers)
    return text.splitlines()[0] + " (full text below)" if text else "see the licence files below (none declared)"


def licence_texts(dist: md.Distribution) -> list[tuple[str, str]]:
    """(file name, text) of the licence files the distribution ships (PEP 639 `License-File`, else by name)."""
    wanted = [f for f in dist.metadata.get_all("License-File") or []]
    texts: list[tuple[str, str]] = []
    seen: set[str] = set()
    for rel in wanted:
        for candidate in (f"licenses/{rel}", f"license_files/{rel}", rel):
            text = dist.read_text(candidate)
            if text:
                texts.append((rel, text))
                seen.add(Path(rel).name)
                break
    for f in dist.files or ():
        path = str(f)
        if LICENCE_FILE.search(path) and Path(path).name not in seen and path.count("/") <= 2:
            try:
                text = Path(f.locate()).read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            texts.append((path, text))
            seen.add(Path(path).name)
    if not texts:
        long_text = (dist.metadata.get("License") or "").strip()
        if "\n" in long_text or len(long_text) >= 200:
            texts.append(("License (metadata)", long_text))
    return texts


def _python_licence() -> str:
    for cand in (Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "LICENSE.txt",
                 Path(sys.base_prefix) / "LICENSE.txt"):
        if cand.is_file():
            return cand.read_text(encoding="utf-8", errors="replace")
    return "Python Software Foundation License Version 2: https://docs.python.org/3/license.html\n"


def render(modules: Iterable[str]) -> str:
    """The whole notices file for a bundle that contains the top-level `modules`."""
    dists = [d for d in distributions_for(modules) if d.metadata["Name"].lower() not in OWN]
    own_version = next((d.version for d in distributions_for(["libreface"])), "")
    parts = [
        f"libreface {own_version} desktop bundle: third-party notices".strip(),
        "",
        "This folder contains libreface (Apache-2.0, LICENSE at the end of this file), the Python interpreter and",
        "the third-party packages below, each under its own licence. Generated by packaging/notices.py from the",
        "metadata of the packages collected into the bundle.",
        "",
        "Summary",
        "-------",
        f"{'Python':32s} {sys.version.split()[0]:14s} PSF-2.0",
    ]
    parts += [f"{d.metadata['Name']:32s} {d.version:14s} {licence_of(d)}" for d in dists]
    parts += ["", RULE, "Qt / PySide6", RULE, QT_NOTE, RULE, "FFmpeg and other native libraries in the wheels", RULE,
              FFMPEG_NOTE, RULE, "MediaPipe Face Landmarker model", RULE, MEDIAPIPE_MODEL_NOTE]
    for d in dists:
        parts += [RULE, f"{d.metadata['Name']} {d.version}: {licence_of(d)}", RULE]
        home = d.metadata.get("Home-page") or next((u.split(",", 1)[-1].strip() for u in d.metadata.get_all("Project-URL") or []), "")
        if home:
            parts.append(f"Project: {home}")
        texts = licence_texts(d)
        if not texts:
            parts.append("(the wheel ships no licence file; the licence named above applies)")
        for name, text in texts:
            parts += [f"--- {name} ---", text.rstrip(), ""]
    parts += [RULE, f"Python {sys.version.split()[0]} (the interpreter and standard library inside the bundle)", RULE,
              _python_licence().rstrip(), ""]
    for title, path in (("libreface weights NOTICE", ROOT / "weights" / "NOTICE"), ("libreface LICENSE", ROOT / "LICENSE")):
        parts += [RULE, title, RULE, path.read_text(encoding="utf-8").rstrip() if path.is_file() else f"({path} missing)", ""]
    return "\n".join(parts) + "\n"


def write_notices(path: Path, modules: Iterable[str]) -> Path:
    """Write the notices for `modules` to `path` and return it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(modules), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write the bundle's THIRD_PARTY_NOTICES.txt from package metadata.")
    p.add_argument("modules", nargs="*", help=f"top-level module names in the bundle (default: {' '.join(DEFAULT_MODULES)})")
    p.add_argument("-o", "--output", type=Path, default=Path("THIRD_PARTY_NOTICES.txt"), help="file to write")
    args = p.parse_args(argv)
    out = write_notices(args.output, args.modules or DEFAULT_MODULES)
    print(f"notices: {out} ({out.stat().st_size // 1024} KiB)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
