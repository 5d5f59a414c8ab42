"""New linear AU heads on a student's `features` embedding: fitted with torch, appended to the student's ONNX graph.

The heads read the `features` output (the pooled embedding, float in both the fp32 and the int8-QDQ students),
so appending them works whether or not the base's own heads are quantized:

    au_intensity  = Gather(Concat(base au_intensity,  5 * Sigmoid(Gemm(features, W_i, b_i))), order)
    au_occurrence = Gather(Concat(base au_occurrence,     Sigmoid(Gemm(features, W_o, b_o))), order)

`order` puts the columns in the card's AU order (OpenFace's: by AU number).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .onnx_card import card_of, save_with_card


@dataclass
class LinearHeads:
    """K linear heads on D features: logits = features @ weight.T + bias.

    Attributes:
        weight: (K, D) float32.
        bias: (K,) float32.
    """

    weight: np.ndarray
    bias: np.ndarray

    def logits(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N, K) float32 logits."""
        return (np.asarray(features, np.float32) @ self.weight.T + self.bias).astype(np.float32)


def _fit(features: np.ndarray, loss_fn, k: int, steps: int, lr: float, l2: float, seed: int) -> LinearHeads:
    from ._torch import torch

    torch.manual_seed(seed)
    x = torch.from_numpy(np.asarray(features, np.float32))
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-6)
    xs = (x - mu) / sd  # standardised for a well-conditioned fit; folded back into the weights below
    lin = torch.nn.Linear(x.shape[1], k)
    torch.nn.init.zeros_(lin.weight)
    torch.nn.init.zeros_(lin.bias)
    opt = torch.optim.Adam(lin.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        loss = loss_fn(lin(xs)) + l2 * lin.weight.pow(2).sum() / k
        loss.backward()
        opt.step()
    with torch.no_grad():
        w = lin.weight / sd
        b = lin.bias - (mu / sd) @ lin.weight.T
    return LinearHeads(w.numpy().astype(np.float32), b.numpy().astype(np.float32))


def fit_intensity_heads(features: np.ndarray, target: np.ndarray, steps: int = 300, lr: float = 0.05,
                        l2: float = 1e-4, seed: int = 0) -> LinearHeads:
    """Heads whose 5 * sigmoid(logit) regresses `target`.

    Args:
        features: (N, D) float32 embeddings.
        target: (N, K) float32 intensities 0..5, NaN where unknown (left out of the loss).
    """
    from ._torch import torch

    t = torch.from_numpy(np.nan_to_num(target, nan=0.0).astype(np.float32))
    m = torch.from_numpy((~np.isnan(target)).astype(np.float32))

    def loss(z):
        return ((5 * torch.sigmoid(z) - t) ** 2 * m).sum() / m.sum().clamp_min(1.0)

    return _fit(features, loss, target.shape[1], steps, lr, l2, seed)


def fit_occurrence_heads(features: np.ndarray, target: np.ndarray, weight: np.ndarray, steps: int = 300,
                         lr: float = 0.05, l2: float = 1e-4, seed: int = 0) -> LinearHeads:
    """Heads whose sigmoid(logit) is the occurrence probability (weighted binary cross-entropy).

    Args:
        features: (N, D) float32 embeddings.
        target: (N, K) 0/1 labels.
        weight: (N, K) float32 loss weights (0 = no label).
    """
    from ._torch import torch

    t = torch.from_numpy(np.asarray(target, np.float32))
    w = torch.from_numpy(np.asarray(weight, np.float32))

    def loss(z):
        bce = torch.nn.functional.binary_cross_entropy_with_logits(z, t, reduction="none")
        return (bce * w).sum() / w.sum().clamp_min(1.0)

    return _fit(features, loss, target.shape[1], steps, lr, l2, seed)


def _widen_output(graph, name: str, width: int) -> None:
    for out in graph.output:
        if out.name == name:
            dims = out.type.tensor_type.shape.dim
            if len(dims) == 2:
                dims[1].ClearField("dim_param")
                dims[1].dim_value = width
            return
    raise ValueError(f"graph has no output {name!r}")


def append_heads(base: Path, out: Path, card: dict, intensity: LinearHeads, intensity_names: list[str],
                 occurrence: LinearHeads, occurrence_names: list[str]) -> None:
    """Write `out` = the `base` ONNX graph with the heads' columns added to `au_intensity` / `au_occurrence`.

    Args:
        base: student ONNX file with the model contract (outputs au_intensity, au_occurrence, expression, features).
        out: the file to write.
        card: the new `libreface.card`; its `au_intensity` / `au_occurrence` lists give the final column order and
            must be the base card's AUs plus `intensity_names` / `occurrence_names`.
        intensity, occurrence: the new heads (rows in `intensity_names` / `occurrence_names` order).
    """
    import onnx
    from onnx import helper, numpy_helper

    m = onnx.load(str(base))
    g = m.graph
    old = card_of(m, base)
    for output, heads, new_names, tag, scale in (
        ("au_intensity", intensity, intensity_names, "int", 5.0),
        ("au_occurrence", occurrence, occurrence_names, "occ", None),
    ):
        have = list(old[output]) + list(new_names)
        want = list(card[output])
        if sorted(have) != sorted(want):
            raise ValueError(f"{base}: {output} would be {have}, the card says {want}")
        producer = [n for n in g.node if output in n.output]
        if len(producer) != 1:
            raise ValueError(f"{base}: no single node produces {output!r}")
        base_out = f"{output}_base"
        producer[0].output[list(producer[0].output).index(output)] = base_out
        for node in g.node:  # nodes that read the old output read the base columns still
            for k, inp in enumerate(node.input):
                if inp == output:
                    node.input[k] = base_out
        p = f"added_{tag}"
        g.initializer.extend([
            numpy_helper.from_array(heads.weight.astype(np.float32), f"{p}_weight"),
            numpy_helper.from_array(heads.bias.astype(np.float32), f"{p}_bias"),
            numpy_helper.from_array(np.array([have.index(n) for n in want], np.int64), f"{p}_order"),
        ])
        g.node.append(helper.make_node("Gemm", ["features", f"{p}_weight", f"{p}_bias"], [f"{p}_logits"], transB=1,
                                       name=f"{p}_gemm"))
        g.node.append(helper.make_node("Sigmoid", [f"{p}_logits"], [f"{p}_prob"], name=f"{p}_sigmoid"))
        new_out = f"{p}_prob"
        if scale is not None:
            g.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), f"{p}_scale"))
            g.node.append(helper.make_node("Mul", [f"{p}_prob", f"{p}_scale"], [f"{p}_values"], name=f"{p}_mul"))
            new_out = f"{p}_values"
        g.node.append(helper.make_node("Concat", [base_out, new_out], [f"{p}_all"], axis=1, name=f"{p}_concat"))
        g.node.append(helper.make_node("Gather", [f"{p}_all", f"{p}_order"], [output], axis=1, name=f"{p}_order"))
        _widen_output(g, output, len(want))
    save_with_card(m, card, out)
    import onnxruntime as ort

    ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])  # the graph loads, or this raises
