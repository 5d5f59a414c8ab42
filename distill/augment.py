"""Training augmentations for faces as users film them (head yaw, occlusion, lighting) and rare-class balance.

All image functions take a (B, S, S) float32 batch of aligned grey crops in 0..1 and a `torch.Generator`, return the
same shape and dtype, and draw random numbers only from that generator (a seed gives the same batch). They are off by
default: `distill.train.augment` calls them only when the run's `TrainConfig` switches them on (`yaw_deg`,
`occlusion`, `lighting`), so existing configs draw exactly the same random numbers as before.

* `yaw_warp`: an out-of-plane head turn simulated on the 2-D crop. The face is taken as a **plane** through the crop
  centre, rotated about the vertical axis by the yaw angle and re-projected by a pinhole camera at `distance` half-crop
  widths (focal length = distance, so yaw 0 is the identity). It is a planar approximation: the nose does not occlude
  the far cheek and depth (nose, ears) is ignored; it reproduces the foreshortening and perspective of a turned face,
  not its self-occlusion.
* `occlude`: one hand- or glasses-like shape per chosen face: a bar across the eyes, a rectangle or an ellipse,
  filled with noise or a flat grey; its bounding box covers at most `max_area` of the crop.
* `relight`: random gamma, contrast and a linear illumination gradient across the face (a side light).
* `class_weights` / `balanced_order`: inverse-power class weights from the training votes (capped), used as a weighted
  sampler (`balance: sampler`) or as a class-weighted expression loss (`balance: loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._torch import torch

F = torch.nn.functional

EYE_ROW = 0.40
"""Height of the eyes in the aligned crop, as a fraction of its side (libreface.align's template, approximately)."""


@dataclass
class AugmentOptions:
    """What `distill.train.augment` adds (all off by default).

    Attributes:
        yaw_deg: maximum |yaw| of the planar head-turn warp, degrees (0 = off; the issue's target is 45).
        yaw_p: share of rows warped when `yaw_deg` > 0.
        occlusion: share of rows given one occluder (0 = off).
        occlusion_max_area: largest share of the crop an occluder's bounding box may cover.
        lighting: share of rows relit (0 = off).
    """

    yaw_deg: float = 0.0
    yaw_p: float = 0.5
    occlusion: float = 0.0
    occlusion_max_area: float = 0.3
    lighting: float = 0.0

    @property
    def active(self) -> bool:
        return self.yaw_deg > 0 or self.occlusion > 0 or self.lighting > 0


def _uniform(n: int, lo: float, hi: float, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def yaw_grid(yaw_deg: torch.Tensor, size: int, distance: float = 3.0) -> torch.Tensor:
    """Sampling grid (B, S, S, 2) for `F.grid_sample(..., align_corners=True)` of the planar yaw warp.

    Coordinates are normalised to -1..1 (the crop's half width = 1). A plane point (X, Y, 0), rotated by yaw t about
    the vertical axis, lands at depth d + X sin t and projects to x = d X cos t / (d + X sin t), y = d Y / (d + X sin t).
    Inverted for every output pixel: X = x d / (d cos t - x sin t), Y = y (d + X sin t) / d.
    """
    t = torch.deg2rad(yaw_deg.float())[:, None, None]
    lin = torch.linspace(-1, 1, size)
    y, x = torch.meshgrid(lin, lin, indexing="ij")
    x, y = x[None], y[None]
    d = distance
    X = x * d / (d * torch.cos(t) - x * torch.sin(t))
    Y = y * (d + X * torch.sin(t)) / d
    return torch.stack([X, Y], -1)


def yaw_warp(x: torch.Tensor, max_deg: float, g: torch.Generator, p: float = 1.0, distance: float = 3.0,
             fixed: bool = False) -> torch.Tensor:
    """Warp a share `p` of the (B, S, S) batch by a yaw uniform in [-max_deg, max_deg] (planar approximation, see the
    module docstring); pixels from outside the crop repeat its border. `fixed` (evaluation at a set angle,
    `distill.robustness`): every warped row turns by exactly `max_deg` degrees, to the left or to the right (a coin
    drawn from `g`); the default draws the same random numbers as before the option existed."""
    b, s, _ = x.shape
    if fixed:
        yaw = max_deg * torch.where(torch.rand(b, generator=g) < 0.5, -1.0, 1.0) * (torch.rand(b, generator=g) < p)
    else:
        yaw = _uniform(b, -max_deg, max_deg, g) * (torch.rand(b, generator=g) < p)
    out = F.grid_sample(x[:, None], yaw_grid(yaw, s, distance), mode="bilinear", padding_mode="border",
                        align_corners=True)[:, 0]
    return torch.where((yaw == 0)[:, None, None], x, out)


def occlusion_masks(b: int, s: int, g: torch.Generator, max_area: float = 0.3) -> torch.Tensor:
    """(B, S, S) bool masks: per row a bar across the eyes, a rectangle or an ellipse whose bounding box covers
    0.05..`max_area` of the crop (a bar: 12-22 % of the height, centred near the eyes)."""
    if not 0 < max_area <= 1:
        raise ValueError(f"occlusion max_area must be in (0, 1], got {max_area}")
    kind = torch.randint(0, 3, (b,), generator=g)  # 0 bar (glasses), 1 rectangle (hand), 2 ellipse (hand)
    area = _uniform(b, min(0.05, max_area), max_area, g) * s * s
    aspect = torch.exp(_uniform(b, -0.7, 0.7, g))
    w = torch.sqrt(area * aspect)
    bar_h = _uniform(b, 0.12, 0.22, g) * s
    h = torch.where(kind == 0, bar_h, area / w.clamp(min=1))
    w = torch.where(kind == 0, area / bar_h, w)
    w, h = w.clamp(1, s).floor(), h.clamp(1, s).floor()
    w = torch.minimum(w, (max_area * s * s / h).floor())  # the floor keeps w * h <= max_area * s^2
    x0 = (torch.rand(b, generator=g) * (s - w + 1)).floor()
    eye_y0 = (EYE_ROW * s - h / 2 + _uniform(b, -0.05, 0.05, g) * s).clamp(min=0)
    y0 = torch.where(kind == 0, eye_y0, torch.rand(b, generator=g) * (s - h + 1)).floor().clamp(max=s - h)
    i = torch.arange(s, dtype=torch.float32)
    yy, xx = i[None, :, None], i[None, None, :]
    x0, y0, w, h, kind = (v[:, None, None] for v in (x0, y0, w, h, kind))
    box = (xx >= x0) & (xx < x0 + w) & (yy >= y0) & (yy < y0 + h)
    cx, cy = x0 + (w - 1) / 2, y0 + (h - 1) / 2
    ellipse = ((xx - cx) / (w / 2)) ** 2 + ((yy - cy) / (h / 2)) ** 2 <= 1
    return box & ((kind != 2) | ellipse)


def occlude(x: torch.Tensor, p: float, g: torch.Generator, max_area: float = 0.3) -> torch.Tensor:
    """Give a share `p` of the (B, S, S) batch one occluder (`occlusion_masks`), half filled with uniform noise, half
    with a flat grey."""
    b, s, _ = x.shape
    chosen = torch.rand(b, generator=g) < p
    mask = occlusion_masks(b, s, g, max_area) & chosen[:, None, None]
    noisy = torch.rand(b, generator=g) < 0.5
    fill = torch.where(noisy[:, None, None], torch.rand(b, s, s, generator=g), torch.rand(b, 1, 1, generator=g))
    return torch.where(mask, fill, x)


def relight(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    """Relight a share `p` of the (B, S, S) batch: gamma 1/1.8..1.8, contrast 0.6..1.4 about the row's mean, and a
    linear illumination gradient (gain 1 -/+ up to 0.4 across the face, random direction)."""
    b, s, _ = x.shape
    chosen = (torch.rand(b, generator=g) < p)[:, None, None]
    gamma = torch.exp(_uniform(b, -np.log(1.8), np.log(1.8), g))[:, None, None]
    contrast = _uniform(b, 0.6, 1.4, g)[:, None, None]
    angle = _uniform(b, 0, 2 * np.pi, g)[:, None, None]
    strength = _uniform(b, 0, 0.4, g)[:, None, None]
    lin = torch.linspace(-1, 1, s)
    yy, xx = lin[None, :, None], lin[None, None, :]
    gain = 1 + strength * (xx * torch.cos(angle) + yy * torch.sin(angle)) / np.sqrt(2)
    y = x.clamp(0, 1) ** gamma
    mean = y.mean(dim=(1, 2), keepdim=True)
    y = ((y - mean) * contrast + mean) * gain
    return torch.where(chosen, y.clamp(0, 1), x)


def apply(x: torch.Tensor, opts: AugmentOptions, g: torch.Generator) -> torch.Tensor:
    """The switched-on augmentations of `opts`, in filming order: pose, then light, then occluder (which is lit by
    nothing). Draws no random numbers for a switched-off one."""
    if opts.yaw_deg > 0:
        x = yaw_warp(x, opts.yaw_deg, g, p=opts.yaw_p)
    if opts.lighting > 0:
        x = relight(x, opts.lighting, g)
    if opts.occlusion > 0:
        x = occlude(x, opts.occlusion, g, opts.occlusion_max_area)
    return x


# ---------------------------------------------------------------------------------------------
# class balance


def class_weights(expr: np.ndarray, mask: np.ndarray, power: float = 0.5, cap: float = 5.0) -> np.ndarray:
    """Per-class weights from the training votes: (frequency / largest frequency) ** -power, capped at `cap`, then
    scaled so that the vote-weighted mean weight is 1 (the loss keeps its scale).

    Args:
        expr: (N, C) vote distributions (rows sum to 1 where labelled).
        mask: (N,) bool, the row has an expression label.
        power: 0.5 = inverse square root of the frequency, 1 = inverse frequency.
        cap: largest weight relative to the most frequent class (before the scaling).

    Returns:
        (C,) float32 weights.
    """
    freq = expr[mask].sum(0).astype(np.float64)
    freq = np.maximum(freq / max(freq.sum(), 1e-12), 1e-6)
    w = np.minimum((freq / freq.max()) ** -power, cap)
    return (w / (freq * w).sum()).astype(np.float32)


def balanced_order(row_multiplicity: np.ndarray, expr: np.ndarray, mask: np.ndarray, weights: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """One epoch of row indices drawn with replacement, as many as `row_multiplicity.sum()`, each row with probability
    proportional to its multiplicity (CK+ oversampling) times its class weight (`expr @ weights`; 1 when unlabelled)."""
    row_w = np.where(mask, expr @ weights, 1.0) * row_multiplicity
    n = int(row_multiplicity.sum())
    return rng.choice(len(row_w), size=n, replace=True, p=row_w / row_w.sum())
