"""Optional extras: import a module an extra provides, or fail with one line naming the extra to install.

Every entry point (`libreface`, `libreface batch`, `libreface-gui`, `libreface-distill`) turns `MissingExtra`
into that one line on stderr and a non-zero exit; library callers get an ImportError with the same text.

>>> pa = require("pyarrow", "parquet", "--features x.parquet")
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

DISTRIBUTION = "libreface-cpu"
# torch is not in the train extra on purpose (the CPU build is installed first, see the README)
INSTALL = {
    "train": "pip install torch==2.13.0 && pip install 'libreface-cpu[train]'",
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message is one line naming the extra."""


def install_command(extra: str) -> str:
    """The pip command that installs `extra`, e.g. "pip install 'libreface-cpu[gui]'"."""
    return INSTALL.get(extra, f"pip install '{DISTRIBUTION}[{extra}]'")


def require(module: str, extra: str, what: str) -> ModuleType:
    """Import `module` (dotted name), or raise MissingExtra: "<what> needs the <extra> extra: pip install ...".

    Args:
        module: the module to import, e.g. "PySide6" or "pyarrow.parquet".
        extra: the `[project.optional-dependencies]` name that provides it, e.g. "gui".
        what: the feature asking, as the user typed it, e.g. "--identity" or "libreface-gui".
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        why = f"{e.name or module} is not installed" if isinstance(e, ModuleNotFoundError) else str(e).splitlines()[0]
        raise MissingExtra(f"{what} needs the {extra} extra: {install_command(extra)} ({why})") from e


def exit_missing(prog: str, error: ImportError) -> int:
    """Print `error` as one line `prog: ...` on stderr; returns the exit status (1)."""
    print(f"{prog}: {str(error).splitlines()[0]}", file=sys.stderr)
    return 1
