#!/usr/bin/env bash
# Build the Linux desktop bundle: dist/libreface/ with `libreface` (CLI) and `libreface-gui`, then smoke-test it.
#
#   packaging/build.sh             build (PyInstaller one-folder) + smoke test + dist/libreface-<version>-linux-x86_64.tar.gz
#   packaging/build.sh --no-smoke  build only
#
# Needs the runtime and GUI dependencies installed in the current Python (pip install -e '.[gui,bundle]');
# never the training ones: torch, timm, dask, dlib, matplotlib, pyarrow are excluded by the spec.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python}"
SMOKE=1
[[ "${1:-}" == "--no-smoke" ]] && SMOKE=0

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
