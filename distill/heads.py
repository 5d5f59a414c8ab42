"""The task heads every network here shares (students and teachers): AU intensity, AU occurrence, expression."""

from __future__ import annotations

from ._torch import torch

nn = torch.nn


class TaskHeads(nn.Module):
    """Linear heads on a pooled embedding.

    Outputs (dict): `au_intensity` (B, n_au) on 0..5 (5 * sigmoid), `occ_logits` (B, n_occ), `expr_logits` (B, 8);
    the AU columns are in the order of the run's `labels.AUSet` (12 / 12 DISFA AUs by default).
    """

    def __init__(self, dim: int, n_au: int = 12, n_occ: int = 12, n_expr: int = 8, drop: float = 0.2) -> None:
        super().__init__()
        self.drop = nn.Dropout(drop)
        self.au = nn.Linear(dim, n_au)
        self.occ = nn.Linear(dim, n_occ)
        self.expr = nn.Linear(dim, n_expr)

    def forward(self, emb: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self.drop(emb)
        return {"au_intensity": 5.0 * torch.sigmoid(self.au(h)), "occ_logits": self.occ(h), "expr_logits": self.expr(h)}


class Net(nn.Module):
    """Base of students and teachers: `forward_features` -> (stage maps, embedding), then `TaskHeads`.

    Subclasses set `self.heads` and `self.embed_dim` and implement `forward_features(x)` returning
    a list of (B, C_i, H_i, W_i) maps (shallow to deep) and the (B, D) embedding.
    """

    embed_dim: int
    heads: TaskHeads

    def forward_features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        maps, emb = self.forward_features(x)
        out = self.heads(emb)
        out["maps"] = maps
        out["features"] = emb
        return out
