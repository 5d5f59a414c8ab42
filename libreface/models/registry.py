"""Model registry names (a re-export): the weights lookup itself lives in `libreface.weights`.

Kept so that `from libreface.models.registry import DEFAULT_MODEL, verify, ...` goes on working.
"""

from __future__ import annotations

from ..weights import (
    DEFAULT_MODEL,
    ModelEntry,
    _manifest,
    default_model,
    get_entry,
    installed,
    list_models,
    model_versions,
    sha256_file,
    verify,
    weights_dir,
    weights_path,
)

__all__ = ["DEFAULT_MODEL", "ModelEntry", "_manifest", "default_model", "get_entry", "installed", "list_models", "model_versions", "sha256_file",
           "verify", "weights_dir", "weights_path"]
