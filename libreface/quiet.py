"""Native log filter: drop MediaPipe / LiteRT's C++ log lines that bypass Python and go straight to fd 2.

MediaPipe's graphs and LiteRT write lines such as ``W0000 … face_landmarker_graph.cc:181] …`` and
``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` to file descriptor 2 from their own
threads, so ``sys.stderr`` redirection and ``warnings`` filters cannot catch them. This module points
fd 2 at a pipe read by one daemon thread, which drops the lines that start with a native log prefix
and forwards every other byte at once (Python warnings, tracebacks, tqdm's ``\\r`` progress updates).

Two ways in:

* ``native_quiet()`` (the library): a reference-counted hold taken by every object that runs
  MediaPipe (`FaceFrontEnd`, hence `Analyzer` / `analyze`) and released when it closes; the filter
  is installed at the first hold and removed, after draining the pipe, at the last release (and at
  interpreter exit). ``sys.stderr`` is left alone, so a notebook or a host application keeps its own.
* ``quiet_native_logs()`` (the CLI and the GUI): installs the filter for the rest of the process and
  moves ``sys.stderr`` to a duplicate of the original descriptor, so libreface's own messages skip the pipe.

``LIBREFACE_DEBUG=1`` (set by the CLI's ``--debug``) or ``LIBREFACE_NATIVE_LOGS=1`` shows the native lines.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from contextlib import contextmanager
from typing import Iterator

NATIVE_PREFIXES: tuple[bytes, ...] = (b"W0000 ", b"I0000 ", b"E0000 ", b"INFO: ", b"WARNING: Logging before InitGoogle",
                                      b"WARNING: All log messages before absl::InitializeLog")


def native_logs_visible() -> bool:
    """True when the user asked to see native logs (`LIBREFACE_DEBUG` or `LIBREFACE_NATIVE_LOGS` set, not 0)."""
    return any(os.environ.get(k, "") not in ("", "0") for k in ("LIBREFACE_DEBUG", "LIBREFACE_NATIVE_LOGS"))


class _LineFilter:
    """Streaming filter: decides each line from its first bytes, then passes it on (or drops it) unbuffered."""

    def __init__(self) -> None:
        self._head = b""  # the start of the current line while undecided
        self._mode = "start"  # "start" (undecided), "pass" or "drop" until the next newline

    def feed(self, data: bytes) -> bytes:
        """The bytes of `data` to forward."""
        out = bytearray()
        i = 0
        while i < len(data):
            nl = data.find(b"\n", i)
            end = len(data) if nl < 0 else nl + 1
            if self._mode == "start":
                head = self._head + data[i:end]
                if any(head.startswith(p) for p in NATIVE_PREFIXES):
                    self._mode, self._head = "drop", b""
                elif nl >= 0 or not any(p.startswith(head) for p in NATIVE_PREFIXES):
                    self._mode, self._head = "pass", b""
                    out += head
                else:  # could still become a native prefix: wait for more bytes
                    self._head = head
                    return bytes(out)
            elif self._mode == "pass":
                out += data[i:end]
            i = end
            if nl >= 0:
                self._mode = "start"
        return bytes(out)

    def flush(self) -> bytes:
        """What is left undecided at the end of the stream (a partial line that is no native log)."""
        head, self._head = self._head, b""
        return b"" if any(head.startswith(p) for p in NATIVE_PREFIXES) else head


class _Redirect:
    """fd 2 -> pipe -> filter thread -> a duplicate of the original fd 2."""

    def __init__(self) -> None:
        sys.stderr.flush()
        self.saved = os.dup(2)
        read_fd, self._write_fd = os.pipe()
        try:
            import fcntl

            fcntl.fcntl(self._write_fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)  # room for bursts
        except (ImportError, OSError):  # pragma: no cover - not Linux
            pass
        os.dup2(self._write_fd, 2)
        self._thread = threading.Thread(target=self._pump, args=(read_fd,), name="libreface-native-log", daemon=True)
        self._thread.start()

    def _pump(self, read_fd: int) -> None:
        filt = _LineFilter()
        with os.fdopen(read_fd, "rb", buffering=0) as r:
            while True:
                chunk = r.read(65536)
                if not chunk:
                    break
                out = filt.feed(chunk)
                if out:
                    _write_all(self.saved, out)
        rest = filt.flush()
        if rest:
            _write_all(self.saved, rest)

    def remove(self) -> None:
        """Point fd 2 back at the original stream (if nobody redirected it since) and drain the pipe."""
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        try:
            if os.path.samestat(os.fstat(2), os.fstat(self._write_fd)):
                os.dup2(self.saved, 2)
        except OSError:
            pass
        os.close(self._write_fd)
        self._thread.join(timeout=2.0)
        os.close(self.saved)


def _write_all(fd: int, data: bytes) -> None:
    try:
        while data:
            data = data[os.write(fd, data):]
    except OSError:
        pass


_lock = threading.Lock()
_holds = 0
_active: _Redirect | None = None
_permanent = False


def _acquire() -> bool:
    """Take a hold; True when the caller must release it."""
    global _holds, _active
    if native_logs_visible():
        return False
    with _lock:
        if _active is None and not _permanent:
            try:
                _active = _Redirect()
            except (OSError, ValueError, AttributeError):  # no usable fd 2 (a windowed app): nothing to filter
                return False
        _holds += 1
        return True


def _release() -> None:
    global _holds, _active
    with _lock:
        _holds -= 1
        if _holds == 0 and _active is not None and not _permanent:
            _active.remove()
            _active = None


class NativeQuiet:
    """A hold on the native log filter; `release()` (idempotent) gives it back. See `native_quiet`."""

    def __init__(self) -> None:
        self._held = _acquire()

    def release(self) -> None:
        """Give the hold back; the filter is removed when no hold is left."""
        held, self._held = self._held, False
        if held:
            _release()

    def __enter__(self) -> NativeQuiet:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


@contextmanager
def native_quiet() -> Iterator[None]:
    """Filter native log lines from fd 2 for the duration of the block (nests; thread-safe)."""
    hold = NativeQuiet()
    try:
        yield
    finally:
        hold.release()


def quiet_native_logs() -> None:
    """Filter native log lines for the rest of the process and move `sys.stderr` off the pipe (CLI, GUI)."""
    global _active, _permanent
    if native_logs_visible():
        return
    with _lock:
        if _permanent:
            return
        if _active is None:
            try:
                _active = _Redirect()
            except (OSError, ValueError, AttributeError):  # pragma: no cover - no fd 2
                return
        _permanent = True
        if getattr(sys.stderr, "fileno", None) is not None:
            try:
                is_fd2 = sys.stderr.fileno() == 2
            except (OSError, ValueError):
                is_fd2 = False
            if is_fd2:
                sys.stderr = os.fdopen(os.dup(_active.saved), "w", buffering=1, encoding="utf-8", errors="replace")


@atexit.register
def _drain_at_exit() -> None:
    """Forward what is still in the pipe (e.g. a traceback printed just before exit)."""
    global _active
    with _lock:
        if _active is not None and not _permanent:
            _active.remove()
            _active = None
