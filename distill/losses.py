"""Losses: the task terms, feature-wise distillation and the soft-label term.

Feature-wise distillation (for each teacher, for each matched stage and for the pooled embedding):
the student's map is pooled to the stored teacher grid, projected by a learned 1x1 convolution to
the teacher's width (the common space is the teacher's, normalised per position by a parameter-free
LayerNorm on both sides), and matched by mean squared error; embeddings are projected by a learned
linear map and matched by cosine distance. The projectors train with the student and are dropped at
export. Soft labels: KL divergence to the teachers' mean expression distribution at temperature T,
MSE to their mean AU intensities and BCE to their mean AU occurrence probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._torch import torch

nn = torch.nn
F = torch.nn.functional


@dataclass
class LossWeights:
    """Weight of each term; a weight of 0 switches its term off (the no-distillation ablation sets
    `feat = emb = soft = 0`)."""

    expr: float = 1.0
    au: float = 0.5
    occ: float = 1.0
    feat: float = 1.0
    emb: float = 1.0
    soft: float = 1.0
    temperature: float = 2.0


def task_loss(out: dict, batch: dict, w: LossWeights) -> dict[str, torch.Tensor]:
    """Task terms against the labels in `batch` (masked where a label is missing)."""
    terms = {}
    m = batch["expr_mask"]
    if w.expr and m.any():
        logp = F.log_softmax(out["expr_logits"][m], dim=1)
        terms["expr"] = w.expr * -(batch["expr"][m] * logp).sum(1).mean()
    au_t = batch["au"]
    ok = ~torch.isnan(au_t)
    if w.au and ok.any():
        terms["au"] = w.au * F.smooth_l1_loss(out["au_intensity"][ok], au_t[ok])
    ow = batch["occ_w"]
    if w.occ and ow.sum() > 0:
        bce = F.binary_cross_entropy_with_logits(out["occ_logits"], batch["occ"], reduction="none")
        terms["occ"] = w.occ * (bce * ow).sum() / ow.sum()
    return terms


def _ln(x: torch.Tensor) -> torch.Tensor:
    """LayerNorm over channels of (B, C, H, W), no parameters."""
    x = x.permute(0, 2, 3, 1)
    return F.layer_norm(x, x.shape[-1:]).permute(0, 3, 1, 2)


class FeatureDistiller(nn.Module):
    """Projectors from the student's stage maps / embedding into each teacher's space, and the KD terms.

    Args:
        student_channels: channels of the student's stage maps (shallow to deep).
        student_dim: student embedding width.
        teachers: per teacher, {"channels": [C per matched stage], "grids": [side per stage], "dim": D}, and optionally
            the AU columns student and teacher share (`labels.shared_au_columns`: "s_int", "t_int", "s_occ", "t_occ";
            default: all columns, same order).
    """

    def __init__(self, student_channels: list[int], student_dim: int, teachers: list[dict]) -> None:
        super().__init__()
        self.grids = [t["grids"] for t in teachers]
        self.maps = nn.ModuleList(
            nn.ModuleList(nn.Conv2d(cs, ct, 1) for cs, ct in zip(student_channels, t["channels"])) for t in teachers
        )
        self.embs = nn.ModuleList(nn.Linear(student_dim, t["dim"]) for t in teachers)
        self.au_cols = [{k: t.get(k) for k in ("s_int", "t_int", "s_occ", "t_occ")} for t in teachers]

    def forward(self, out: dict, targets: list[dict], w: LossWeights) -> dict[str, torch.Tensor]:
        """KD terms. `targets[k]` holds teacher k's `maps` (list of (B, C, g, g)), `emb` (B, D),
        `expr_logits` (B, 8), `au_intensity` (B, A_k), `occ_prob` (B, K_k) for this batch's views; the soft AU terms
        compare the columns student and teacher share (all teachers of one run share one AU set)."""
        terms: dict[str, torch.Tensor] = {}
        if w.feat:
            feat = 0.0
            for k, tgt in enumerate(targets):
                for proj, grid, s_map, t_map in zip(self.maps[k], self.grids[k], out["maps"], tgt["maps"]):
                    s = proj(F.adaptive_avg_pool2d(s_map, grid))
                    feat = feat + F.mse_loss(_ln(s), _ln(t_map.float()))
            terms["feat"] = w.feat * feat / len(targets)
        if w.emb:
            emb = 0.0
            for k, tgt in enumerate(targets):
                emb = emb + (1 - F.cosine_similarity(self.embs[k](out["features"]), tgt["emb"].float(), dim=1)).mean()
            terms["emb"] = w.emb * emb / len(targets)
        if w.soft:
            t = w.temperature
            t_logits = torch.stack([tgt["expr_logits"].float() for tgt in targets]).mean(0)
            kl = F.kl_div(F.log_softmax(out["expr_logits"] / t, 1), F.softmax(t_logits / t, 1), reduction="batchmean") * t * t
            c = self.au_cols[0]

            def cols(x: torch.Tensor, idx: list[int] | None) -> torch.Tensor:
                return x if idx is None else x[:, idx]

            t_au = torch.stack([cols(tgt["au_intensity"].float(), c["t_int"]) for tgt in targets]).mean(0)
            t_occ = torch.stack([cols(tgt["occ_prob"].float(), c["t_occ"]) for tgt in targets]).mean(0)
            au = F.mse_loss(cols(out["au_intensity"], c["s_int"]), t_au) / 5.0
            occ = F.binary_cross_entropy_with_logits(cols(out["occ_logits"], c["s_occ"]), t_occ)
            terms["soft"] = w.soft * (kl + au + occ)
        return terms
