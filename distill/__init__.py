"""Training side of libreface: datasets, teachers, feature-wise distillation, evaluation, export.

Needs the `train` extra (torch, timm). Nothing under `libreface/` imports this package.
"""

__version__ = "0.1.0"
