"""Dataset loaders (one module per layout) and `prepare`, which aligns with `libreface.align`."""

from .ckplus import load_ckplus
from .ferplus import load_ferplus
from .records import DISFA_AUS, EXPRESSIONS, Record, expression_index

LOADERS = {"ferplus": load_ferplus, "ckplus": load_ckplus}
"""Dataset name -> loader(root) yielding `Record`s."""

__all__ = ["DISFA_AUS", "EXPRESSIONS", "LOADERS", "Record", "expression_index", "load_ckplus", "load_ferplus"]
