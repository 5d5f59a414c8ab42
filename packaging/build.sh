#!/usr/bin/env bash
# Build the Linux desktop bundle: dist/libreface/ with `libreface` (CLI) and `libreface-gui`, then smoke-test it.
#
#   packaging/build.sh             build (PyInstaller one-folder) + smoke test + dist/libreface-<version>-linux-x86_64.tar.gz
#   packaging/build.sh --no-smoke  build only
#   packaging/build.sh --slim      the release build: from build/slim-venv (made on first use, needs PyPI and
#                                  Debian) with PyAV built on a decode-only LGPL FFmpeg (packaging/build_ffmpeg.sh,
#                                  cached in build/ffmpeg; the first build takes ~10 min on 2 cores)
#
# Without --slim: needs the runtime and GUI dependencies installed in the current Python
# (pip install -e '.[gui,bundle]'); never the training ones: torch, timm, dask, dlib, matplotlib, pyarrow are
# excluded by the spec. LIBREFACE_BUNDLE_MODELS=all ships every student (default: the default int8 one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python}"
SMOKE_PYTHON="$PYTHON"   # the smoke test encodes a clip: the bundle's decode-only PyAV cannot
SMOKE=1
SLIM=0
for arg in "$@"; do
    case "$arg" in
        --no-smoke) SMOKE=0 ;;
        --slim) SLIM=1 ;;
        *) echo "build.sh: unknown option $arg (use --no-smoke, --slim)" >&2; exit 2 ;;
    esac
done

if [[ $SLIM == 1 ]]; then
    VENV="$ROOT/build/slim-venv"
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import PyInstaller, PySide6, libreface" 2>/dev/null; then
        echo "build.sh: making $VENV (runtime + GUI + PyInstaller)"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install -q -e '.[gui,bundle]' -c constraints.txt
    fi
    "$ROOT/packaging/build_ffmpeg.sh" "$ROOT/build/ffmpeg" "$VENV/bin/python"
    export LIBREFACE_FFMPEG_PREFIX="$ROOT/build/ffmpeg"
    PYTHON="$VENV/bin/python"
fi

"$PYTHON" -c "import PyInstaller" 2>/dev/null || {
    echo "build.sh: PyInstaller is missing: pip install pyinstaller -c constraints.txt (or pip install -e '.[bundle]')" >&2
    exit 2
}
"$PYTHON" -c "import PySide6, pyqtgraph, mediapipe, onnxruntime, av" || {
    echo "build.sh: install the app first: pip install -e '.[gui]' -c constraints.txt" >&2
    exit 2
}

VERSION="$("$PYTHON" -c 'import libreface; print(libreface.__version__)')"
start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" \
    "$ROOT/packaging/libreface.spec"
echo "build.sh: built dist/libreface in $(( $(date +%s) - start )) s"

BUNDLE="$ROOT/dist/libreface"
# Guard: what the runtime never imports must not have slipped in.
for banned in torch timm dask distributed dlib matplotlib pyarrow scipy sklearn cv2; do
    if [[ -e "$BUNDLE/_internal/$banned" ]]; then
        echo "build.sh: $banned is in the bundle ($BUNDLE/_internal/$banned); check EXCLUDES in packaging/libreface.spec" >&2
        exit 1
    fi
done
du -sh "$BUNDLE"

if [[ $SMOKE == 1 ]]; then
    "$SMOKE_PYTHON" "$ROOT/packaging/smoke.py" "$BUNDLE"
fi

ARCHIVE="$ROOT/dist/libreface-$VERSION-linux-$(uname -m).tar.gz"
tar -C "$ROOT/dist" -czf "$ARCHIVE" libreface
echo "build.sh: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
