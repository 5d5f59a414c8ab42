"""Tests for libreface.quiet: the Python API hides MediaPipe / LiteRT native log lines unless LIBREFACE_DEBUG=1."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from libreface.quiet import NATIVE_PREFIXES, _LineFilter

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "astronaut.mp4"

# Runs analyze() in a fresh interpreter whose fd 2 is a pipe read by the test: what a notebook kernel would see.
SCRIPT = f"""
import os, sys, warnings
import libreface
df = libreface.analyze({str(EXAMPLE)!r}, every=25)
print("ROWS", len(df))
warnings.warn("python-warning-stays-visible")
os.write(2, b"W0000 after-analyze: the filter is gone once analyze returns\\n")
"""


def _run(debug: bool) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("LIBREFACE_DEBUG", "LIBREFACE_NATIVE_LOGS")}
    if debug:
        env["LIBREFACE_DEBUG"] = "1"
    return subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=240, cwd=ROOT)


def _native_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines()
            if ln.encode().startswith(NATIVE_PREFIXES) and "after-analyze" not in ln]


def test_analyze_hides_native_logs_unless_debug():
    loud = _run(debug=True)
    assert loud.returncode == 0, loud.stderr
    if not _native_lines(loud.stderr):
        pytest.skip("MediaPipe printed no native log lines on this machine even with LIBREFACE_DEBUG=1: nothing to hide")
    assert any("face_landmarker_graph.cc" in ln or "XNNPACK" in ln for ln in _native_lines(loud.stderr))

    quiet = _run(debug=False)
    assert quiet.returncode == 0, quiet.stderr
    assert "ROWS" in quiet.stdout
    assert _native_lines(quiet.stderr) == [], quiet.stderr
    assert "face_landmarker_graph.cc" not in quiet.stderr and "XNNPACK" not in quiet.stderr
    assert "python-warning-stays-visible" in quiet.stderr  # Python warnings are not filtered
    assert "after-analyze" in quiet.stderr  # fd 2 is restored when the analysis ends


def test_line_filter_drops_native_lines_in_any_chunking():
    data = (b"W0000 00:00:1.0 123 face_landmarker_graph.cc:181] Sets ...\nkeep me\n"
            b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n\r 10%|#  \r 20%|## \n"
            b"INF is not a prefix\nWARNING: Logging before InitGoogle() is written to STDERR\n"
            b"WARNING: a real warning\nTraceback (most recent call last):\nI")
    expected = b"keep me\n\r 10%|#  \r 20%|## \nINF is not a prefix\nWARNING: a real warning\nTraceback (most recent call last):\nI"
    rng = random.Random(0)
    for _ in range(200):
        filt, out, i = _LineFilter(), b"", 0
        while i < len(data):
            n = rng.randint(1, 9)
            out += filt.feed(data[i:i + n])
            i += n
        assert out + filt.flush() == expected


def test_progress_updates_pass_without_waiting_for_a_newline():
    filt = _LineFilter()
    assert filt.feed(b"\r 10%|#") == b"\r 10%|#"  # forwarded at once: a progress bar keeps moving
    assert filt.feed(b"W0000") == b"W0000"  # mid-line: part of the progress line, passed on
    assert filt.feed(b"\nW00") == b"\n"  # a new line that may be native: held back
    assert filt.feed(b"01 x\n") == b"W0001 x\n"  # not a native prefix after all
