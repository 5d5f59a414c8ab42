"""Dataset loaders (one module per layout) and `prepare`, which aligns with `libreface.align`."""

from .affectnet import load_affectnet
from .bp4d import load_bp4d
from .ckplus import load_ckplus
from .disfa import load_disfa
from .fer2013 import load_fer2013
from .ferplus import load_ferplus
from .records import DISFA_AUS, EXPRESSIONS, Record, expression_index
from .videos import load_videos

LOADERS = {
    "ferplus": load_ferplus,
    "ckplus": load_ckplus,
    "fer2013": load_fer2013,
    "affectnet": load_affectnet,
    "disfa": load_disfa,
    "bp4d": load_bp4d,
    "videos": load_videos,
}
"""Dataset name -> loader(root) yielding `Record`s."""

ON_MISS = {"videos": "drop"}
"""Dataset name -> its `prepare` on-miss rule when not the default "mean-face" (unlabelled frames: drop)."""

__all__ = [
    "DISFA_AUS",
    "EXPRESSIONS",
    "LOADERS",
    "ON_MISS",
    "Record",
    "expression_index",
    "load_affectnet",
    "load_bp4d",
    "load_ckplus",
    "load_disfa",
    "load_fer2013",
    "load_ferplus",
    "load_videos",
]
