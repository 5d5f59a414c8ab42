"""Exception classes: one per kind of failure. Messages are one line naming the file and the problem."""


class LibrefaceError(Exception):
    """Base class of every error libreface raises on purpose."""


class InputError(LibrefaceError):
    """An input file or folder cannot be read (missing, empty, not media, corrupt, unsupported)."""


class OutputError(LibrefaceError):
    """An output path cannot be written."""


class ModelError(LibrefaceError):
    """A weights file is missing, tampered with, or does not match the runtime's contract."""
