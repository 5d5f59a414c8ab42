"""Run a model over a prepared table: the input normalisation shared by training, evaluation and export.

Lower layer of the training package: `train`, `evaluate` and `export` import it, it imports none of them.
torch is imported on first use, so importing this module (and `evaluate`) stays light.
"""

from __future__ import annotations

import numpy as np

from .dataset import Table

NORM_MEAN = (0.5, 0.5, 0.5)
NORM_STD = (0.25, 0.25, 0.25)
"""Input normalisation on the 0..1 scale, written into every model card."""


def to_input(images):
    """(B, S, S) uint8 grey torch tensor -> (B, 3, S, S) float32 normalised (the runtime's `to_model_input`,
    grey mode)."""
    from ._torch import torch

    x = images.float().div_(255.0).unsqueeze(1).expand(-1, 3, -1, -1)
    mean = torch.tensor(NORM_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(NORM_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def predict(model, table: Table, batch: int = 512) -> dict[str, np.ndarray]:
    """Run a torch model (on the CPU or a GPU) over a table (no augmentation). Returns numpy arrays:
    `expression` (N, 8) probabilities, `au_intensity` (N, A), `au_occurrence` (N, K) probabilities (the run's AU set,
    12 / 12 DISFA AUs by default)."""
    from ._torch import torch

    outs: dict[str, list] = {"expression": [], "au_intensity": [], "au_occurrence": []}
    model.eval()
    dev = next(model.parameters()).device  # inputs go where the model is (a GPU while training there)
    with torch.no_grad():
        for i in range(0, len(table), batch):
            o = model(to_input(torch.from_numpy(table.images[i : i + batch])).to(dev))
            outs["expression"].append(torch.softmax(o["expr_logits"], 1).float().cpu().numpy())
            outs["au_intensity"].append(o["au_intensity"].float().cpu().numpy())
            outs["au_occurrence"].append(torch.sigmoid(o["occ_logits"]).float().cpu().numpy())
    if not outs["expression"]:
        heads = model.heads
        widths = {"expression": heads.expr.out_features, "au_intensity": heads.au.out_features,
                  "au_occurrence": heads.occ.out_features}
        return {k: np.zeros((0, widths[k]), np.float32) for k in outs}
    return {k: np.concatenate(v) for k, v in outs.items()}


def predict_views(model, table: Table, mirror: bool = False, batch: int = 512) -> dict[str, np.ndarray]:
    """`predict`, and with `mirror` averaged with the predictions on the mirrored crops (the view an exported student
    adds in the analyzer, `onnx_predict(mirror=True)`): same arrays as `predict`."""
    from dataclasses import replace

    out = predict(model, table, batch)
    if not mirror:
        return out
    flipped = predict(model, replace(table, images=np.ascontiguousarray(table.images[:, :, ::-1])), batch)
    return {k: (v + flipped[k]) / 2 for k, v in out.items()}


def run_grey(model, grey: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    """A runtime `StudentModel` (`libreface.models.session`) on (N, S, S) uint8 grey crops, in batches; crops whose side
    is not the card's input size are resized to it first (area when shrinking, linear when growing).

    Returns:
        the model's output arrays (`StudentModel.run`: `au_intensity` (N, A), `au_occurrence` (N, K), `expression`
        (N, 8), `features` (N, D)), in the card's column order.
    """
    s = model.card.input_size
    outs: dict[str, list] = {}
    for i in range(0, len(grey), batch):
        g = grey[i : i + batch]
        if g.shape[1] != s:
            import cv2

            interp = cv2.INTER_AREA if g.shape[1] > s else cv2.INTER_LINEAR
            g = np.stack([cv2.resize(im, (s, s), interpolation=interp) for im in g])
        for k, v in model.run_crops(np.repeat(g[..., None], 3, axis=-1)).items():
            outs.setdefault(k, []).append(v)
    if not outs:
        return model.run(np.zeros((0, 3, s, s), np.float32))
    return {k: np.concatenate(v) for k, v in outs.items()}


def onnx_predict(path, table: Table, threads: int = 2, batch: int = 256, mirror: bool = False,
                 aus: str = "disfa") -> dict[str, np.ndarray]:
    """Run an exported ONNX student (through the runtime's own session and preprocessing) over a table;
    `mirror` averages each face with its mirror image, as the analyzer does by default. Same arrays as `predict`:
    AU columns are picked by name from the model's card in the order of the AU set `aus` the table was built with
    (`labels.AU_SETS`), so a model with more AUs (e.g. OpenFace's 17) is scored on the 12 a "disfa" table carries."""
    from libreface.models.session import StudentModel

    from .labels import au_set

    a = au_set(aus)
    model = StudentModel(path, threads=threads, mirror=mirror)
    cols = {"au_intensity": [model.card.au_intensity.index(n) for n in a.intensity_names],
            "au_occurrence": [model.card.au_occurrence.index(n) for n in a.occurrence_names]}
    o = run_grey(model, table.images, batch)
    return {"expression": o["expression"], **{k: o[k][:, c] for k, c in cols.items()}}


def select_aus(pred: dict[str, np.ndarray], have: str, want: str) -> dict[str, np.ndarray]:
    """Predictions in AU set `have`'s columns -> the columns of AU set `want` (by name; `labels.AU_SETS`), e.g. an
    OpenFace-set run scored on a "disfa" table. Every AU of `want` must be in `have`."""
    from .labels import au_set

    h, w = au_set(have), au_set(want)
    missing = sorted(set(w.occurrence) - set(h.occurrence))
    if missing:
        raise ValueError(f"predictions of AU set {have!r} lack AUs {missing} of {want!r}")
    return {**pred, "au_intensity": pred["au_intensity"][:, [h.intensity.index(a) for a in w.intensity]],
            "au_occurrence": pred["au_occurrence"][:, [h.occurrence.index(a) for a in w.occurrence]]}
