"""libreface: per-frame facial action units, expression and head pose on the CPU, offline.

>>> import libreface
>>> df = libreface.analyze("interview.mp4")                 # pandas: one row per frame and face
>>> with libreface.Analyzer(max_faces=2) as analyzer:        # streaming, constant memory
...     for result in analyzer.process("interview.mp4"):
...         ...

Heavy modules (MediaPipe, ONNX Runtime, PyAV) load on first use, so `import libreface` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "Analyzer": ".pipeline",
    "AnalyzerOptions": ".pipeline",
    "analyze": ".pipeline",
    "FrameResult": ".results",
    "FaceResult": ".results",
    "OutputLabels": ".results",
    "list_models": ".weights",
    "open_source": ".sources",
    "align_face": ".align",
    "LibrefaceError": ".errors",
    "InputError": ".errors",
    "OutputError": ".errors",
    "ModelError": ".errors",
}

__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover
    from .align import align_face as align_face
    from .errors import InputError as InputError
    from .errors import LibrefaceError as LibrefaceError
    from .errors import ModelError as ModelError
    from .errors import OutputError as OutputError
    from .weights import list_models as list_models
    from .pipeline import Analyzer as Analyzer
    from .pipeline import AnalyzerOptions as AnalyzerOptions
    from .pipeline import analyze as analyze
    from .results import FaceResult as FaceResult
    from .results import FrameResult as FrameResult
    from .results import OutputLabels as OutputLabels
    from .sources import open_source as open_source


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module 'libreface' has no attribute {name!r}")
