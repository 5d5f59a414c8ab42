"""Model registry (names -> files + sha256) and ONNX Runtime sessions."""

from .registry import ModelEntry, get_entry, list_models, verify, weights_dir, weights_path
from .session import ModelCard, StudentModel

__all__ = ["ModelCard", "ModelEntry", "StudentModel", "get_entry", "list_models", "verify", "weights_dir", "weights_path"]
