"""`libreface-distill finetune-heads`: retrain only a student's heads on stored feature vectors + corrected labels.

The GUI's label-correction loop: the analyzer stores each face's `features` (the pooled embedding the heads read,
`libreface.outputs.FeatureSink`), the user marks frames with the right expression and/or AU presence
(`<features>.labels.csv`: `frame, face_id, expression[, AU01, AU02, ...]` with AU values 0/1, empty = unknown), and
this command refits the expression and AU-occurrence heads on those pairs, starting from the shipped heads and
pulled towards them by an L2 term (so a few dozen labels adjust the model instead of replacing it). The result is
a copy of the student ONNX with the new head weights and an updated card; no video is needed again.

    libreface-distill finetune-heads --model au_r18_int8.v1 --features rec.parquet --labels rec.labels.csv --out my.onnx
    libreface rec.mp4 --model my.onnx -o rec.csv
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .onnx_card import card_of, save_with_card

HEADS = {"expression": "net.heads.expr", "au_occurrence": "net.heads.occ"}
"""Initializer prefixes of the two heads in an exported student (`distill.export`)."""


def _read_labels(path: Path, expressions: tuple[str, ...], aus: tuple[str, ...]):
    import pandas as pd

    df = pd.read_csv(path)
    missing = {"frame", "face_id"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}; expected frame, face_id, expression[, AU01, ...]")
    if "expression" in df:
        bad = sorted(set(df["expression"].dropna()) - set(expressions))
        if bad:
            raise ValueError(f"{path}: unknown expression labels {bad}; known: {', '.join(expressions)}")
    return df


def finetune_heads(model: str | Path, features: Path, labels: Path, out: Path, epochs: int = 300, l2: float = 1e-2,
                   lr: float = 0.05, seed: int = 0) -> dict:
    """Fit new expression / AU-occurrence heads; write `out` (ONNX). Returns a summary dict."""
    import onnx
    from onnx import numpy_helper

    from libreface.models.registry import verify
    from libreface.outputs import feature_columns, read_features
    from libreface.results import OutputLabels

    from ._torch import seed_everything, torch

    seed_everything(seed)
    path = Path(model) if str(model).endswith(".onnx") else verify(str(model))
    m = onnx.load(str(path))
    card = card_of(m, path)
    feats = read_features(features)
    lab = _read_labels(labels, tuple(card["expressions"]), tuple(card["au_occurrence"]))
    data = feats.merge(lab, on=["frame", "face_id"], how="inner")
    if data.empty:
        raise ValueError(f"{labels}: no labelled (frame, face_id) matches a row of {features}")
    dims = OutputLabels((), (), 0.5, (), int(card["feature_dim"]))
    x = torch.tensor(data[feature_columns(dims)].to_numpy(np.float32))
    inits = {i.name: i for i in m.graph.initializer}
    summary = {"base": str(path), "labelled_faces": int(len(data))}
    for head, prefix in HEADS.items():
        w0 = torch.tensor(numpy_helper.to_array(inits[f"{prefix}.weight"]).copy())
        b0 = torch.tensor(numpy_helper.to_array(inits[f"{prefix}.bias"]).copy())
        if head == "expression":
            if "expression" not in data or data["expression"].isna().all():
                continue
            rows = data["expression"].notna().to_numpy()
            y = torch.tensor([card["expressions"].index(v) for v in data.loc[rows, "expression"]])
            xs, mask = x[torch.tensor(rows)], None  # a copy: pandas may hand out a read-only mask
        else:
            cols = [c for c in card["au_occurrence"] if c in data]
            if not cols:
                continue
            y_np = np.full((len(data), len(card["au_occurrence"])), np.nan, np.float32)
            for c in cols:
                y_np[:, card["au_occurrence"].index(c)] = data[c].to_numpy(np.float32)
            mask = torch.tensor(~np.isnan(y_np))
            y, xs = torch.tensor(np.nan_to_num(y_np)), x
        w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        opt = torch.optim.Adam([w, b], lr=lr)
        for _ in range(epochs):
            logits = xs @ w.T + b
            if head == "expression":
                loss = torch.nn.functional.cross_entropy(logits, y)
            else:
                bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y, reduction="none")
                loss = (bce * mask).sum() / mask.sum().clamp(min=1)
            loss = loss + l2 * (((w - w0) ** 2).sum() + ((b - b0) ** 2).sum())
            opt.zero_grad()
            loss.backward()
            opt.step()
        for name, value in ((f"{prefix}.weight", w), (f"{prefix}.bias", b)):
            inits[name].CopyFrom(numpy_helper.from_array(value.detach().numpy().astype(np.float32), name))
        summary[head] = {"labelled": int(len(xs) if mask is None else int(mask.any(1).sum())), "final_loss": float(loss.detach())}
    card["finetuned"] = {"from": card.get("name"), **summary, "labels": str(labels)}
    card["name"] = Path(out).stem
    save_with_card(m, card, Path(out))
    return summary
