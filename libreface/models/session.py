"""ONNX Runtime session for one student model; labels and preprocessing come from its metadata.

Every student ONNX file carries a JSON card under the metadata key `libreface.card` (written by
`distill export`). The runtime reads the input size, normalisation, colour mode, AU lists,
occurrence threshold and class names from there, never from constants of its own, and refuses a
model aligned with another alignment version.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..align import ALIGN_VERSION, to_model_input
from ..errors import ModelError
from ..weights import verify

CARD_KEY = "libreface.card"
OUTPUTS: tuple[str, ...] = ("au_intensity", "au_occurrence", "expression", "features")
"""Output names of the model contract, in the order `StudentModel.run` returns them."""


@dataclass(frozen=True)
class ModelCard:
    """What a student model says about itself (its `libreface.card` metadata).

    Attributes:
        name: registry name, e.g. "au_r10t_int8.v7".
        version: model version string.
        input_size: side of the square aligned crop, pixels.
        mean, std: per-channel normalisation on the 0..1 scale (RGB order).
        color: "rgb", or "gray" for models trained on grey faces.
        align: `ALIGN_VERSION` the training crops were made with.
        au_intensity: AU names of the `au_intensity` output, e.g. ("AU01", ...); values 0..5.
        au_occurrence: AU names of the `au_occurrence` output; values are probabilities 0..1.
        occurrence_threshold: probability at or above which an AU counts as present.
        expressions: class names of the `expression` output (probabilities summing to 1).
        feature_dim: length of the `features` embedding.
        extra: the remaining card fields (training data, metrics, licence, ...).
    """

    name: str
    version: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    color: str
    align: str
    au_intensity: tuple[str, ...]
    au_occurrence: tuple[str, ...]
    occurrence_threshold: float
    expressions: tuple[str, ...]
    feature_dim: int
    extra: dict

    @classmethod
    def from_json(cls, text: str, source: str) -> "ModelCard":
        try:
            d = json.loads(text)
            fields = {
                "name": d["name"],
                "version": str(d["version"]),
                "input_size": int(d["input_size"]),
                "mean": tuple(float(v) for v in d["mean"]),
                "std": tuple(float(v) for v in d["std"]),
                "color": d.get("color", "rgb"),
                "align": d["align"],
                "au_intensity": tuple(d["au_intensity"]),
                "au_occurrence": tuple(d["au_occurrence"]),
                "occurrence_threshold": float(d["occurrence_threshold"]),
                "expressions": tuple(d["expressions"]),
                "feature_dim": int(d["feature_dim"]),
            }
        except (KeyError, TypeError, ValueError) as e:
            raise ModelError(f"{source}: model card is incomplete or malformed ({e!r})") from None
        return cls(**fields, extra={k: v for k, v in d.items() if k not in fields})


def default_threads() -> int:
    """All cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


class StudentModel:
    """One ONNX Runtime session for a registered student, loaded and verified once.

    >>> model = StudentModel.load("au_r10t_int8.v7", threads=2)
    >>> out = model.run_crops(crops)       # crops: (N, S, S, 3) uint8 aligned faces
    >>> out["au_intensity"].shape          # (N, 12), 0..5

    With `mirror=True` every face is also run mirrored left-right (in the same session call) and the two
    views' outputs are averaged: probabilities, intensities and the feature vector alike. The faces are
    aligned upright and centred, so the mirror image is the same face seen from the other side; averaging
    the two cancels part of each view's error for some models (au_r10t_int8.v3: FER+ test 82.7 -> 83.3 %,
    reports/mirror/) but not for the default (FER+ valid 84.6 % either way, reports/selection/), for twice the model
    time; so it is off by default.
    """

    def __init__(self, path: Path, threads: int = 0, name: str | None = None, mirror: bool = False) -> None:
        # ONNX Runtime's usage telemetry writes a device id and a database under ~/.cache; the
        # analyzer writes nothing but its outputs, so it is switched off before the first import.
        os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
        import onnxruntime as ort

        path = Path(path)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads or default_threads()
        so.inter_op_num_threads = 1
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        # the landmarker and the decoder run beside the model in the pipeline: idle ORT threads sleep
        # instead of spinning, so they do not steal the cores those stages need
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ModelError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if CARD_KEY not in meta:
            raise ModelError(f"{path}: no '{CARD_KEY}' metadata; not a libreface student")
        self.card = ModelCard.from_json(meta[CARD_KEY], str(path))
        if self.card.align != ALIGN_VERSION:
            raise ModelError(
                f"{path}: trained with alignment {self.card.align}, this libreface aligns with {ALIGN_VERSION}; "
                "use a model exported for this version"
            )
        got = [o.name for o in self.session.get_outputs()]
        missing = [o for o in OUTPUTS if o not in got]
        if missing:
            raise ModelError(f"{path}: outputs {missing} missing (has {got}); not the libreface model contract")
        self.input_name = self.session.get_inputs()[0].name
        self.path = path
        self.name = name or self.card.name
        self.threads = so.intra_op_num_threads
        self.mirror = mirror

    @classmethod
    def load(cls, name: str, threads: int = 0, mirror: bool = False) -> "StudentModel":
        """Load registered model `name` after checking its sha256 against `weights/manifest.json`.

        A path to an existing `.onnx` file (e.g. heads fine-tuned by `libreface-distill finetune-heads`)
        is loaded as it is: it is the user's own file, so only its card is checked."""
        if name.endswith(".onnx") and Path(name).is_file():
            return cls(Path(name), threads=threads, mirror=mirror)
        return cls(verify(name), threads=threads, name=name, mirror=mirror)

    def preprocess(self, crops: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 RGB aligned crops -> (N, 3, S, S) float32 normalised as the card says."""
        c = self.card
        if crops.ndim != 4 or crops.shape[1:] != (c.input_size, c.input_size, 3):
            raise ValueError(f"crops must have shape (N, {c.input_size}, {c.input_size}, 3), got {crops.shape}")
        return to_model_input(crops, c.mean, c.std, c.color)

    def run(self, faces: np.ndarray) -> dict[str, np.ndarray]:
        """Run the model on a preprocessed (N, 3, S, S) float32 batch (and its mirror image when `self.mirror`).

        Returns:
            {"au_intensity": (N, A) 0..5, "au_occurrence": (N, K) 0..1, "expression": (N, 8) probabilities,
            "features": (N, D)}, all float32; with `mirror`, each the mean of the two views.
        """
        if len(faces) == 0:
            c = self.card
            return {
                "au_intensity": np.zeros((0, len(c.au_intensity)), np.float32),
                "au_occurrence": np.zeros((0, len(c.au_occurrence)), np.float32),
                "expression": np.zeros((0, len(c.expressions)), np.float32),
                "features": np.zeros((0, c.feature_dim), np.float32),
            }
        if not self.mirror:
            return dict(zip(OUTPUTS, self.session.run(list(OUTPUTS), {self.input_name: faces})))
        n = len(faces)
        both = np.concatenate([faces, faces[..., ::-1]])
        values = self.session.run(list(OUTPUTS), {self.input_name: both})
        return {k: 0.5 * (v[:n] + v[n:]) for k, v in zip(OUTPUTS, values)}

    def run_crops(self, crops: np.ndarray) -> dict[str, np.ndarray]:
        """`run(preprocess(crops))`."""
        return self.run(self.preprocess(crops))
