"""Missing extras: each entry point that needs one prints one line naming it and exits non-zero, no traceback.

Each case runs the entry point (as pyproject.toml's [project.scripts] names it) in a subprocess whose imports of
the extra's packages are blocked by a meta-path finder, as if the extra were not installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from libreface.extras import MissingExtra, install_command, require

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.mp4"
SCRIPTS = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]

RUNNER = """
import sys
class Blocker:
    def __init__(self, names):
        self.names = set(names)
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
blocked, script, argv = sys.argv[1].split(","), sys.argv[2], sys.argv[3:]
for name in list(sys.modules):
    if name.split(".")[0] in blocked:
        del sys.modules[name]
sys.meta_path.insert(0, Blocker(blocked))
module, func = script.split(":")
sys.exit(getattr(__import__(module, fromlist=[func]), func)(argv))
"""

CASES = {  # id: (script, blocked top-level packages, arguments, extra)
    "gui": ("libreface-gui", ["PySide6"], [], "gui"),
    "identity": ("libreface", ["dlib"], [EXAMPLE, "--identity", "-o", "{tmp}/id.csv"], "identity"),
    "parquet": ("libreface", ["pyarrow"], [EXAMPLE, "--features", "{tmp}/x.parquet", "-o", "{tmp}/f.csv"], "parquet"),
    "dask": ("libreface", ["dask", "distributed"], ["batch", EXAMPLE, "-o", "{tmp}/batch", "--dask-local", "1"], "dask"),
    "report": ("libreface", ["matplotlib"], ["report", "{tmp}/missing.csv"], "report"),
    "--report": ("libreface", ["matplotlib"], [EXAMPLE, "--report", "-o", "{tmp}/r.csv"], "report"),
    "train": ("libreface-distill", ["torch"], ["train-student", REPO / "distill/configs/student_r10t.yaml"], "train"),
}


@pytest.mark.parametrize("case", CASES)
def test_a_missing_extra_is_one_line_naming_it(case, tmp_path):
    script, blocked, args, extra = CASES[case]
    argv = [str(a).replace("{tmp}", str(tmp_path)) for a in args]
    pythonpath = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))  # this checkout, from any cwd
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": pythonpath}
    r = subprocess.run([sys.executable, "-c", RUNNER, ",".join(blocked), SCRIPTS[script], *argv], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0, r.stderr
    assert "Traceback" not in r.stderr, r.stderr
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"{script}: ") and f"the {extra} extra" in lines[0], lines[0]
    assert f"libreface-cpu[{extra}]" in lines[0], lines[0]
    assert not list(tmp_path.glob("*.csv")), "nothing is written when the run cannot start"


def test_require_returns_the_module_or_names_the_extra():
    assert require("json", "none", "x").dumps([]) == "[]"
    with pytest.raises(MissingExtra, match=r"^--thing needs the demo extra: pip install 'libreface-cpu\[demo\]' "
                                            r"\(libreface_no_such_module is not installed\)$"):
        require("libreface_no_such_module", "demo", "--thing")
    assert isinstance(MissingExtra("x"), ImportError)  # library callers can keep catching ImportError
    assert install_command("train").startswith("pip install torch")
