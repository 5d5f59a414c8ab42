"""Where training artefacts live: a cache folder outside git (aligned crops, checkpoints, reports)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
WEIGHTS = REPO / "weights"
SHARED_DATA = REPO.parent / "shared" / "data"


def cache_dir() -> Path:
    """`$LIBREFACE_CACHE`, else `~/.cache/libreface`; created on first use."""
    path = Path(os.environ.get("LIBREFACE_CACHE", Path.home() / ".cache" / "libreface"))
    path.mkdir(parents=True, exist_ok=True)
    return path
