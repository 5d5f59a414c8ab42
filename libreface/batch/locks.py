"""Batch folder lock: one coordinating `libreface batch` per output folder (`OUTDIR/.lock`, flock / msvcrt)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from ..errors import OutputError


def lock_folder(path: Path) -> int:
    """Take an exclusive lock on `path` (held until `unlock_folder`); OutputError if another batch holds it."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise OutputError(f"{path}: cannot create the lock file ({e.strerror or e}); "
                          "choose a writable output folder") from None
    try:
        if os.name == "nt":  # pragma: no cover - Windows
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = ""
        try:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip()
        except OSError:
            pass
        os.close(fd)
        raise OutputError(f"{path.parent}: another libreface batch is writing this folder"
                          f"{f' ({holder})' if holder else ''}; wait for it to end or choose another -o") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
    return fd


def unlock_folder(fd: int | None) -> None:
    """Release a lock taken by `lock_folder` (None: nothing to release)."""
    if fd is not None:
        os.close(fd)  # closing the descriptor releases flock / msvcrt locks
