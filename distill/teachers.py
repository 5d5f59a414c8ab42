"""Teachers, trained here from scratch (no pretrained downloads): a Swin Transformer and a ViT pretrained
as a masked autoencoder (MAE) on the face crops, both from timm, both with the shared `TaskHeads`.

Sized for 2 CPU cores at 64 px: Swin (patch 4, window 4, embed 64, depths 2-2-6-2, 27 M params) and
ViT (patch 8 -> 8x8 tokens, width 256, depth 8, 6.4 M params; MAE decoder width 128, depth 2).
Stage maps for feature distillation: Swin stages 2-4; ViT blocks 4, 6, 8 (as 8x8 maps).

On the CPU the attention runs as plain matrix products (`math_attention`): torch's fused CPU attention kernel is slow
in bfloat16 for these short sequences (`bench/train_step.py` measures both).
"""

from __future__ import annotations

from typing import Callable

from ._torch import torch
from .heads import Net, TaskHeads

nn = torch.nn
TEACHERS: dict[str, Callable[..., Net]] = {}


def register_teacher(fn):
    if fn.__name__ in TEACHERS:
        raise ValueError(f"teacher {fn.__name__!r} is registered twice")
    TEACHERS[fn.__name__] = fn
    return fn


class SwinTeacher(Net):
    def __init__(self, img_size: int = 64, embed_dim: int = 64, depths=(2, 2, 6, 2), heads=(2, 4, 8, 16), drop_path: float = 0.1,
                 n_au: int = 12, n_occ: int = 12):
        super().__init__()
        from timm.models.swin_transformer import SwinTransformer

        self.trunk = SwinTransformer(img_size=img_size, patch_size=4, window_size=4, embed_dim=embed_dim, depths=depths,
                                     num_heads=heads, num_classes=0, drop_path_rate=drop_path)
        self.embed_dim = self.trunk.num_features
        self.heads = TaskHeads(self.embed_dim, n_au=n_au, n_occ=n_occ)

    def forward_features(self, x):
        final, inter = self.trunk.forward_intermediates(x)
        return inter[1:], self.trunk.forward_head(final, pre_logits=True)


class ViTTeacher(Net):
    """ViT encoder (timm VisionTransformer, no class token, mean pooling) + heads; `mae_loss` for pretraining."""

    def __init__(self, img_size: int = 64, patch: int = 8, width: int = 256, depth: int = 8, n_heads: int = 8,
                 dec_width: int = 128, dec_depth: int = 2, drop_path: float = 0.1, n_au: int = 12, n_occ: int = 12):
        super().__init__()
        from timm.models.vision_transformer import Block, VisionTransformer

        self.trunk = VisionTransformer(img_size=img_size, patch_size=patch, embed_dim=width, depth=depth, num_heads=n_heads,
                                       num_classes=0, global_pool="avg", class_token=False, fc_norm=False,
                                       drop_path_rate=drop_path)
        self.embed_dim = width
        self.heads = TaskHeads(width, n_au=n_au, n_occ=n_occ)
        self.patch = patch
        self.grid = img_size // patch
        self.taps = [depth // 2 - 1, 3 * depth // 4 - 1, depth - 1]
        # MAE decoder (used by `mae_loss` only; not exported, not used for fine-tuning)
        self.dec_embed = nn.Linear(width, dec_width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dec_width))
        self.dec_pos = nn.Parameter(torch.zeros(1, self.grid * self.grid, dec_width))
        nn.init.trunc_normal_(self.dec_pos, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.dec_blocks = nn.Sequential(*[Block(dec_width, 4) for _ in range(dec_depth)])
        self.dec_norm = nn.LayerNorm(dec_width)
        self.dec_pred = nn.Linear(dec_width, patch * patch)

    def forward_features(self, x):
        final, inter = self.trunk.forward_intermediates(x, indices=self.taps)
        return inter, self.trunk.forward_head(final, pre_logits=True)

    def _patchify_grey(self, x):
        """(B, 3, S, S) -> (B, L, p*p) grey pixel patches."""
        g = x[:, :1]
        b, _, s, _ = g.shape
        p = self.patch
        g = g.reshape(b, 1, s // p, p, s // p, p).permute(0, 2, 4, 3, 5, 1)
        return g.reshape(b, (s // p) ** 2, p * p)

    def mae_loss(self, x: torch.Tensor, mask_ratio: float = 0.75, generator: torch.Generator | None = None) -> torch.Tensor:
        """Masked-autoencoder loss: reconstruct the per-patch-normalised pixels of the masked patches."""
        t = self.trunk
        tokens = t.patch_embed(x) + t.pos_embed
        b, n, d = tokens.shape
        keep = max(1, int(round(n * (1 - mask_ratio))))
        noise = torch.rand(b, n, generator=generator).to(x.device)  # drawn on the CPU generator on every device
        order = noise.argsort(dim=1)
        restore = order.argsort(dim=1)
        kept = torch.gather(tokens, 1, order[:, :keep, None].expand(-1, -1, d))
        enc = t.norm(t.blocks(t.norm_pre(kept)))
        dec = self.dec_embed(enc)
        dec = torch.cat([dec, self.mask_token.expand(b, n - keep, -1)], dim=1)
        dec = torch.gather(dec, 1, restore[:, :, None].expand(-1, -1, dec.shape[-1])) + self.dec_pos
        pred = self.dec_pred(self.dec_norm(self.dec_blocks(dec)))
        target = self._patchify_grey(x)
        target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        mask = torch.ones(b, n, device=x.device)
        mask[:, :keep] = 0
        mask = torch.gather(mask, 1, restore)
        per_patch = ((pred - target) ** 2).mean(-1)
        return (per_patch * mask).sum() / mask.sum()


@register_teacher
def swin(**kwargs) -> SwinTeacher:
    """Swin Transformer teacher."""
    return SwinTeacher(**kwargs)


@register_teacher
def mae_vit(**kwargs) -> ViTTeacher:
    """ViT teacher, MAE-pretrained on the face crops (`distill pretrain-mae`) before fine-tuning."""
    return ViTTeacher(**kwargs)


def set_fused_attention(model: nn.Module, fused: bool) -> int:
    """Make every timm attention layer of `model` use torch's fused `scaled_dot_product_attention` (`fused=True`) or
    plain matrix products (`False`); returns how many layers changed."""
    n = 0
    for m in model.modules():
        if hasattr(m, "fused_attn") and m.fused_attn != fused:
            m.fused_attn = fused
            n += 1
    return n


def math_attention(model: nn.Module) -> int:
    """Make every timm attention layer of `model` use plain matrix products instead of
    `scaled_dot_product_attention`; returns how many layers changed.

    Same result (to float rounding), different kernel: under bfloat16 autocast on the CPU, torch's fused attention
    (its flash kernel for the CPU) spends most of a ViT training step in its backward pass for the short sequences
    here (16-64 tokens, head width 32), while the math path uses the bf16 matrix units (AMX where the CPU has them).
    For the CPU only: on a GPU the fused kernel is the fast one.
    """
    return set_fused_attention(model, False)


def create_teacher(name: str, **kwargs) -> Net:
    if name not in TEACHERS:
        raise ValueError(f"unknown teacher {name!r}; available: {', '.join(sorted(TEACHERS))}")
    return TEACHERS[name](**kwargs)
