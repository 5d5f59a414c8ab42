#!/usr/bin/env bash
# Build the Linux desktop bundle: dist/libreface/ with `libreface` (CLI) and `libreface-gui`, then smoke-test it.
#
#   packaging/build.sh             build (PyInstaller one-folder) + smoke test + dist/libreface-<version>-linux-x86_64.tar.gz
#   packaging/build.sh --no-smoke  build only
#   packaging/build.sh --slim      build from build/slim-venv (made on first use, needs PyPI): the runtime and GUI
#                                  dependencies with opencv-python-headless in place of the opencv-contrib-python
#                                  MediaPipe pulls in (no highgui, Qt 5, contrib modules: ~90 MB less)
#
# Without --slim: needs the runtime and GUI dependencies installed in the current Python
# (pip install -e '.[gui,bundle]'); never the training ones: torch, timm, dask, dlib, matplotlib, pyarrow are
# excluded by the spec. LIBREFACE_BUNDLE_MODELS=all ships every student (default: the default int8 one).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python}"
SMOKE=1
SLIM=0
for arg in "$@"; do
    case "$arg" in
        --no-smoke) SMOKE=0 ;;
        --slim) SLIM=1 ;;
        *) echo "build.sh: unknown option $arg (use --no-smoke, --slim)" >&2; exit 2 ;;
    esac
done

# The headless wheel has every cv2 function libreface calls (warpAffine, resize, pyrDown, cvtColor,
# copyMakeBorder, Laplacian, VideoCapture); MediaPipe's Tasks API does not import cv2 at all.
OPENCV_HEADLESS="opencv-python-headless==5.0.0.93"  # the closest to MediaPipe's 5.1 contrib: aligned crops differ by <= 1 level in 0.006 % of pixels (4.11: <= 3 levels in 10 %)
if [[ $SLIM == 1 ]]; then
    VENV="$ROOT/build/slim-venv"
    if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import cv2, PyInstaller, PySide6" 2>/dev/null; then
        echo "build.sh: making $VENV (runtime + GUI + PyInstaller, $OPENCV_HEADLESS)"
        "$PYTHON" -m venv "$VENV"
        "$VENV/bin/pip" install -q -e '.[gui,bundle]' -c constraints.txt
        "$VENV/bin/pip" uninstall -y -q opencv-contrib-python
        "$VENV/bin/pip" install -q "$OPENCV_HEADLESS" -c constraints.txt
    fi
    PYTHON="$VENV/bin/python"
fi

"$PYTHON" -c "import PyInstaller" 2>/dev/null || {
    echo "build.sh: PyInstaller is missing: pip install pyinstaller -c constraints.txt (or pip install -e '.[bundle]')" >&2
    exit 2
}
"$PYTHON" -c "import PySide6, pyqtgraph, mediapipe, onnxruntime, av, cv2" || {
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
for banned in torch timm dask distributed dlib matplotlib pyarrow scipy sklearn; do
    if [[ -e "$BUNDLE/_internal/$banned" ]]; then
        echo "build.sh: $banned is in the bundle ($BUNDLE/_internal/$banned); check EXCLUDES in packaging/libreface.spec" >&2
        exit 1
    fi
done
du -sh "$BUNDLE"

if [[ $SMOKE == 1 ]]; then
    "$PYTHON" "$ROOT/packaging/smoke.py" "$BUNDLE"
fi

ARCHIVE="$ROOT/dist/libreface-$VERSION-linux-$(uname -m).tar.gz"
tar -C "$ROOT/dist" -czf "$ARCHIVE" libreface
echo "build.sh: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
