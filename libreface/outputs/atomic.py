"""Crash-safe output files: one writer per output (`<out>.lock`), rows in `<out>.partial`, fsync + rename.

Every file libreface writes in one go or by streaming follows the same protocol:

1. `OutputLock(out)` claims the output: `<out>.lock` next to it, locked with `flock` (non-blocking)
   and holding the owner's pid and host. A second writer to the same output, in this process or
   another, fails at once with one `OutputError` line naming the output and the running pid, before
   it touches `<out>.partial`. The lock file is removed when the writer ends (success or error). A
   writer killed with SIGKILL leaves the file behind, but the kernel releases its `flock`, so the
   next writer simply takes the stale file over.
2. The data goes to `partial_path(out)` (`<out>.partial`), which is fsync'ed before it is renamed to
   `out` (`commit`), and the folder is fsync'ed so that the rename survives a power cut.

`AtomicSink` is the base class of the streaming sinks (`CsvSink`, `FeatureSink`): it takes the lock,
lets the subclass open its `.partial`, and turns `close` / `abort` / the `with` statement into
"complete, rename, unlock" / "complete, keep the `.partial`, unlock".
"""

from __future__ import annotations

import logging
import os
import socket
import time
from pathlib import Path
from typing import TypeVar

from ..errors import OutputError

log = logging.getLogger(__name__)

_S = TypeVar("_S", bound="AtomicSink")
_HOLDER_WAIT_S = 0.5  # how long to wait for a lock holder that has not yet written its pid


def partial_path(path: str | os.PathLike) -> Path:
    """Where a sink writes until it succeeds: `<path>.partial`, e.g. `out.csv.partial`."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of an output: `<path>.lock`, e.g. `out.csv.lock`."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def check_output_path(path: Path) -> None:
    """Raise OutputError, one line naming `path`, when it cannot become a file; create its folder."""
    if path.is_dir():
        example = path / ("out" + (path.suffix or ".csv"))
        raise OutputError(f"{path}: is a folder; expected a file path such as {example}")
    parent = path.parent
    if not parent.is_dir():
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{path}: cannot create the folder {parent} ({e.strerror or e}); "
                              "choose another output path") from None
    if partial_path(path).is_dir():
        raise OutputError(f"{path}: {partial_path(path)} is a folder; remove it or choose another output path")


def open_error(path: Path, e: OSError, name: str | None = None) -> OutputError:
    """The one-line error for a file next to output `path` (default its `.partial`) that cannot be created."""
    return OutputError(f"{path}: cannot write {name or partial_path(path).name} ({e.strerror or e}); "
                       "choose a writable output folder")


def fsync_dir(folder: Path) -> None:
    """Make a rename durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit(tmp: Path, final: Path) -> None:
    """Atomically move a complete, fsync'ed file to its final name."""
    try:
        os.replace(tmp, final)
    except OSError as e:
        raise OutputError(f"{final}: cannot rename {tmp.name} to it ({e.strerror or e}); "
                          f"the complete results are in {tmp}") from None
    fsync_dir(final.parent)


class OutputLock:
    """Exclusive claim on one output path, held until `release` (or the end of the process).

    Args:
        path: the output file (not the lock file); the lock is `lock_path(path)`.
        lock_file: another lock file instead (a batch locks its folder with `OUTDIR/.lock`).
        writer: what the refusal calls the running writer ("run", "batch").

    Attributes:
        path: the output file.
        lock_path: `<path>.lock`.

    Raises:
        OutputError: another writer holds the lock (the message names `path` and its pid), or the
            lock file cannot be created.
    """

    def __init__(self, path: str | os.PathLike, *, lock_file: str | os.PathLike | None = None, writer: str = "run"):
        self.path = Path(path)
        self.lock_path = Path(lock_file) if lock_file is not None else lock_path(self.path)
        self._writer = writer
        self._file = None
        while self._file is None:
            self._file = self._try_acquire()
        try:  # who holds it, for the message of a refused writer
            self._file.truncate(0)
            self._file.write(f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        except OSError as e:
            log.debug("%s: cannot write the pid (%s)", self.lock_path, e)

    def _try_acquire(self):
        """The locked lock file, or None when it was removed while we waited (then try again)."""
        try:
            f = open(os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644), "r+b", buffering=0)
        except OSError as e:
            raise open_error(self.path, e, self.lock_path.name) from None
        try:
            if not _lock_file(f, self.lock_path):
                holder = _read_holder(f)
                raise OutputError(f"{self.path}: another libreface {self._writer} is writing it "
                                  f"({holder or 'pid unknown'}); wait for it to end or choose another output")
            try:  # the holder we waited for may have removed the file: then lock the new one
                same = os.path.samestat(os.fstat(f.fileno()), os.stat(self.lock_path))
            except FileNotFoundError:
                same = False
        except BaseException:
            f.close()
            raise
        if not same:
            f.close()
            return None
        return f

    @property
    def held(self) -> bool:
        """True until `release`."""
        return self._file is not None

    def release(self) -> None:
        """Remove the lock file and unlock. Idempotent."""
        f, self._file = self._file, None
        if f is None:
            return
        try:
            if os.name != "nt":  # remove it while still holding the lock: see `_try_acquire`
                try:
                    if os.path.samestat(os.fstat(f.fileno()), os.stat(self.lock_path)):
                        os.unlink(self.lock_path)
                except OSError:
                    pass
        finally:
            f.close()  # closing releases flock / msvcrt locks
        if os.name == "nt":  # pragma: no cover - Windows cannot remove an open file
            try:
                os.unlink(self.lock_path)
            except OSError:
                pass

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self.release()
        return False


def _lock_file(f, path: Path) -> bool:
    """Take a non-blocking exclusive lock on open file `f`; False when another writer holds it."""
    try:
        if os.name == "nt":  # pragma: no cover - Windows
            import msvcrt

            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as e:
        if os.name == "nt":  # pragma: no cover - msvcrt reports a held lock as EACCES / EDEADLK
            return False
        log.warning("%s: cannot lock (%s); a second run on the same output would not be refused",
                    path, e.strerror or e)
    return True


def _read_holder(f) -> str:
    """The 'pid N on HOST' line of a held lock file; '' when it cannot be read in time."""
    deadline = time.monotonic() + _HOLDER_WAIT_S
    while True:
        try:
            f.seek(0)
            text = f.read(200).decode("utf-8", "replace").strip()
        except OSError:
            return ""
        if text or time.monotonic() >= deadline:
            return text
        time.sleep(0.02)  # the holder has locked the file but not yet written its pid


def write_atomic(path: str | os.PathLike, data: bytes | str) -> Path:
    """Write a whole file in one go: `data` (str as UTF-8) to `<path>.partial` under `<path>.lock`, fsync, rename.

    Returns `path`; OutputError (one line naming it) when it cannot be written.
    """
    path = Path(path)
    check_output_path(path)
    with OutputLock(path):
        tmp = partial_path(path)
        try:
            with open(tmp, "wb") as f:
                f.write(data.encode("utf-8") if isinstance(data, str) else data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise open_error(path, e) from None
        commit(tmp, path)
    return path


class AtomicSink:
    """Base of the crash-safe sinks; a context manager.

    `__init__` checks `path`, takes its `OutputLock`, then calls `_start` to create (or reopen) the
    `.partial`. `close` calls `_finish` (write everything, fsync, close the `.partial`) and renames the
    `.partial` to `path`; `abort` calls `_finish` and leaves the `.partial` in place (a failure to
    finish is logged, not raised). Both release the lock and are idempotent. The `with` statement
    closes on a normal exit and aborts on an exception (including KeyboardInterrupt).

    Attributes:
        path: the final output file.
        partial_path: `<path>.partial`.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.partial_path = partial_path(self.path)
        self._open = False
        check_output_path(self.path)
        self._lock = OutputLock(self.path)
        try:
            self._start()
        except BaseException:
            self._lock.release()
            raise
        self._open = True

    def _start(self) -> None:
        """Create or reopen `self.partial_path`; the lock is held."""
        raise NotImplementedError

    def _finish(self) -> None:
        """Write everything appended to `self.partial_path`, fsync and close it."""
        raise NotImplementedError

    def close(self) -> None:
        """Complete the `.partial` and rename it to `path`. Idempotent."""
        self._close()

    def _close(self, before_commit=None) -> None:
        """`close`, calling `before_commit()` (if given) between `_finish` and the rename."""
        if not self._open:
            return
        self._open = False
        try:
            self._finish()
            if before_commit is not None:
                before_commit()
            commit(self.partial_path, self.path)
        finally:
            self._lock.release()

    def abort(self) -> None:
        """Complete the `.partial` with what was appended and leave it there (no rename). Idempotent."""
        if not self._open:
            return
        self._open = False
        try:
            self._finish()
        except OutputError as e:
            log.warning("%s", e)
        finally:
            self._lock.release()

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.close()
        else:
            self.abort()
        return False
