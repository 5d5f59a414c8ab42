"""libreface: per-frame facial action units, expression and head pose on the CPU."""

__version__ = "0.1.0"
