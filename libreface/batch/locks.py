"""Batch folder lock: one coordinating `libreface batch` per output folder (`OUTDIR/.lock`).

A thin wrapper over `libreface.outputs.atomic.OutputLock`, the one lock implementation of libreface: a second
batch on the same OUTDIR is refused at once with one line naming the running pid, the lock file is removed
when the batch ends, and a lock left by a killed batch (its `flock` released by the kernel) is taken over.
"""

from __future__ import annotations

from pathlib import Path

from ..outputs.atomic import OutputLock


def lock_folder(path: Path) -> OutputLock:
    """Lock the batch folder through its lock file `path` (`OUTDIR/.lock`), held until `unlock_folder`.

    Raises:
        OutputError: another batch holds it ("OUTDIR: another libreface batch is writing it (pid N on HOST); ..."),
            or the lock file cannot be created.
    """
    return OutputLock(path.parent, lock_file=path, writer="batch")


def unlock_folder(lock: OutputLock | None) -> None:
    """Release a lock taken by `lock_folder` and remove its file (None: nothing to release)."""
    if lock is not None:
        lock.release()
