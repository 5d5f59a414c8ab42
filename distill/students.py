"""ResNet students (timm, randomly initialised): one backbone, heads for AU intensity, AU occurrence and
the 8 expressions, and the pooled embedding as the `features` output.

Registered entry points (timm style): `au_r18` (ResNet-18) and `au_r10t` (ResNet-10-T, the smaller one).
Stage maps returned for feature distillation: layer2, layer3, layer4.
"""

from __future__ import annotations

from typing import Callable

from ._torch import timm, torch
from .heads import Net, TaskHeads

STUDENTS: dict[str, Callable[..., "Student"]] = {}


def register_student(fn: Callable[..., "Student"]) -> Callable[..., "Student"]:
    if fn.__name__ in STUDENTS:
        raise ValueError(f"student {fn.__name__!r} is registered twice")
    STUDENTS[fn.__name__] = fn
    return fn


class Student(Net):
    """A timm ResNet trunk (no classifier) + `TaskHeads` (`n_au` intensities, `n_occ` occurrences: 12 / 12 for DISFA's
    AUs, 17 / 18 for OpenFace's, `labels.AU_SETS`)."""

    def __init__(self, arch: str, drop: float = 0.2, n_au: int = 12, n_occ: int = 12) -> None:
        super().__init__()
        self.arch = arch
        self.trunk = timm.create_model(arch, pretrained=False, num_classes=0)
        self.embed_dim = self.trunk.num_features
        self.heads = TaskHeads(self.embed_dim, n_au=n_au, n_occ=n_occ, drop=drop)
        self.stage_channels = [self.trunk.feature_info[i]["num_chs"] for i in (2, 3, 4)]

    def forward_features(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        t = self.trunk
        x = t.maxpool(t.act1(t.bn1(t.conv1(x))))
        x = t.layer1(x)
        l2 = t.layer2(x)
        l3 = t.layer3(l2)
        l4 = t.layer4(l3)
        return [l2, l3, l4], l4.mean(dim=(2, 3))


def create_student(name: str, **kwargs) -> Student:
    if name not in STUDENTS:
        raise ValueError(f"unknown student {name!r}; available: {', '.join(sorted(STUDENTS))}")
    return STUDENTS[name](**kwargs)


@register_student
def au_r18(**kwargs) -> Student:
    """ResNet-18 student (11 M parameters), 64 px grey aligned crops."""
    return Student("resnet18", **kwargs)


@register_student
def au_r10t(**kwargs) -> Student:
    """ResNet-10-T student (5 M parameters), the faster one."""
    return Student("resnet10t", **kwargs)
