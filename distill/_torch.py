"""Import torch and timm for training, offline and reproducibly.

PyPI's torchvision wheel registers its C++ ops against a CUDA torch; beside the CPU build of torch
its Python side fails on `torchvision::nms does not exist` when timm imports it. timm uses no
torchvision op, so the two op schemas are declared here (without kernels) before timm is imported.
"""

from __future__ import annotations

import os
import random

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# OpenMP threads that spin while waiting collapse when another process holds a core (10x slower steps
# on 2 shared cores); sleeping waits keep training at full speed on an idle machine and robust on a busy one.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from libreface.extras import require

torch = require("torch", "train", "training")


def _declare_torchvision_ops() -> None:
    try:
        torch.ops.torchvision.nms  # noqa: B018 - present when torchvision's kernels loaded
        return
    except (AttributeError, RuntimeError):
        pass
    lib = torch.library.Library("torchvision", "DEF")
    lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
    lib.define("qnms(Tensor qdets, Tensor scores, float iou_threshold) -> Tensor")
    globals()["_TV_LIB"] = lib  # keep the registration alive


_declare_torchvision_ops()

timm = require("timm", "train", "training")

__all__ = ["seed_everything", "timm", "torch"]


def seed_everything(seed: int, threads: int | None = None) -> torch.Generator:
    """Seed Python, NumPy and torch; set deterministic algorithms; return a torch generator."""
    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    if threads:
        torch.set_num_threads(threads)
    g = torch.Generator()
    g.manual_seed(seed)
    return g
