"""CSV output: number formatting, the crash-safe streaming `CsvSink`, and resuming its `.partial`.

Rows go to `<path>.partial`, flushed and fsync'ed every couple of seconds, and the file is renamed
to `<path>` only when the run ends normally (see `atomic`). A `.partial` CSV always starts with its
header and (unless the machine lost power mid-write) holds whole lines only; `CsvSink(...,
resume=True)` continues it.
"""

from __future__ import annotations

import logging
import os
import time

from ..errors import OutputError
from ..results import FrameResult, OutputLabels
from .atomic import AtomicSink, open_error
from .rows import layout_rows
from .schema import KIND_DECIMALS, layout_for

log = logging.getLogger(__name__)

# -- CSV text -----------------------------------------------------------------------------------


def _format_float(v: float, decimals: int) -> str:
    """`v` rounded to `decimals`, without trailing zeros; "" for NaN, "0" for minus zero."""
    if v != v:  # NaN
        return ""
    s = f"{v:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _quote(s: str) -> str:
    """A CSV field: quoted when it holds a separator, a quote, a newline or outer spaces."""
    if any(c in s for c in ',"\n\r') or s != s.strip():
        return '"' + s.replace('"', '""') + '"'
    return s


def _format_row(row: list, kinds: tuple[str, ...]) -> list[str]:
    """The text fields of one row, each written as its column kind says (see `KIND_DECIMALS`)."""
    out = []
    for v, kind in zip(row, kinds):
        if kind in KIND_DECIMALS:
            out.append(_format_float(float(v), KIND_DECIMALS[kind]))
        elif isinstance(v, float) and v != v:
            out.append("")
        elif kind == "str":
            out.append(_quote(str(v)))
        else:
            out.append(str(int(v)))
    return out


# -- resume scanning ----------------------------------------------------------------------------


def _rfind_newline_end(f, lo: int, hi: int, chunk: int = 1 << 20) -> int:
    """Offset just past the last b"\\n" in f[lo:hi], or `lo` when there is none."""
    pos = hi
    while pos > lo:
        n = min(chunk, pos - lo)
        pos -= n
        f.seek(pos)
        i = f.read(n).rfind(b"\n")
        if i >= 0:
            return pos + i + 1
    return lo


def _lines_backward(f, lo: int, hi: int, chunk: int = 1 << 16):
    """Yield (offset, line) for the lines of f[lo:hi], last line first; f[hi-1] is b"\\n"."""
    buf, pos = b"", hi
    while True:
        i = buf.rfind(b"\n", 0, len(buf) - 1) if buf else -1
        if i >= 0:
            yield pos + i + 1, buf[i + 1:]
            buf = buf[: i + 1]
            continue
        if pos == lo:
            if buf:
                yield pos, buf
            return
        n = min(chunk, pos - lo)
        pos -= n
        f.seek(pos)
        buf = f.read(n) + buf


# -- the sink -----------------------------------------------------------------------------------


class CsvSink(AtomicSink):
    """Streams results to a CSV that survives crashes; a context manager (see `AtomicSink`).

    Rows go to `<path>.partial`, which always starts with the header. They are written and
    fsync'ed at least every `flush_every_s` seconds (checked on each `append`), always at a frame
    boundary. On a normal exit the file is renamed atomically to `path`, so `path` never holds a
    half-written file; on an exception (including KeyboardInterrupt) the rows so far are flushed and
    the `.partial` file stays, a valid CSV.

    Args:
        path: final CSV path; its folder is created if needed.
        labels: names of the model outputs (from the model card).
        fmt: "native" or "openface" (see `libreface.outputs.schema`).
        landmarks, blendshapes: add those column groups.
        flush_every_s: longest time rows wait in memory; 0 writes every frame.
        resume: continue an existing `<path>.partial` of the same columns. Its last frame is dropped
            (it may lack faces), as is a trailing incomplete line; `resume_from_frame` tells where
            to restart, and results for frames already in the file are ignored by `append`.

    Attributes:
        columns: the header.
        resume_after_frame: last 0-based frame kept from the `.partial`, -1 when none.
        resume_from_frame: 0-based frame to restart the analysis from (0 when nothing was resumed).
        rows_written: rows appended by this sink (not counting resumed rows).

    Raises:
        OutputError: `path` cannot be written, another run is writing it (the message names its pid),
            or (resume) the `.partial` has other columns.

    Example:
        >>> with CsvSink("out.csv", labels) as sink:          # doctest: +SKIP
        ...     for result in analyzer.process(source):
        ...         sink.append(result)
    """

    def __init__(
        self,
        path: str | os.PathLike,
        labels: OutputLabels,
        *,
        fmt: str = "native",
        landmarks: bool = False,
        blendshapes: bool = False,
        flush_every_s: float = 2.0,
        resume: bool = False,
    ):
        self.labels = labels
        self.fmt = fmt
        self._layout = layout_for(labels, fmt, landmarks, blendshapes)
        self.columns = list(self._layout.names)
        self._sep = ", " if fmt == "openface" else ","
        self._header = (self._sep.join(_quote(c) for c in self.columns) + "\n").encode("utf-8")
        self.flush_every_s = float(flush_every_s)
        self.resume_after_frame = -1
        self.resume_from_frame = 0
        self.rows_written = 0
        self._pending: list[bytes] = []
        self._file = None
        self._resume = resume
        super().__init__(path)

    def _start(self) -> None:
        try:
            if self._resume and self.partial_path.is_file():
                self._file = self._reopen()
            else:
                self._file = open(self.partial_path, "wb", buffering=0)
                self._write_all(self._header)
                os.fsync(self._file.fileno())
        except OSError as e:
            if self._file is not None:
                self._file.close()
                self._file = None
            raise open_error(self.path, e) from None
        self._size = self._file.tell()  # bytes known to be whole lines
        self._last_flush = time.monotonic()

    # -- resume ---------------------------------------------------------------------------------

    def _reopen(self):
        f = open(self.partial_path, "r+b", buffering=0)
        try:
            size = os.fstat(f.fileno()).st_size
            head = f.read(len(self._header))
            if head != self._header:
                if len(head) < len(self._header) and self._header.startswith(head):  # died writing the header
                    f.seek(0)
                    f.truncate(0)
                    f.write(self._header)
                    os.fsync(f.fileno())
                    return f
                raise OutputError(f"{self.partial_path}: this partial has different columns (other model, "
                                  "format or options?); delete it or drop --resume")
            lo = len(self._header)
            end = _rfind_newline_end(f, lo, size)
            last = None
            cut = end
            for offset, line in _lines_backward(f, lo, end):
                frame = self._frame_of(line, offset)
                if last is None or frame == last:
                    last, cut = frame, offset
                else:
                    self.resume_after_frame = frame
                    break
            if last is not None:
                self.resume_from_frame = last
            f.truncate(cut)
            f.seek(cut)
            os.fsync(f.fileno())
            log.info("%s: resuming after frame %d (%d bytes kept)", self.partial_path, self.resume_after_frame, cut)
            return f
        except BaseException:
            f.close()
            raise

    def _frame_of(self, line: bytes, offset: int) -> int:
        try:
            value = int(line.split(b",", 1)[0].strip())
        except ValueError:
            raise OutputError(f"{self.partial_path}: the line at byte {offset} does not start with a frame "
                              "number; delete the file or drop --resume") from None
        return value - 1 if self.fmt == "openface" else value

    # -- writing --------------------------------------------------------------------------------

    def append(self, result: FrameResult) -> None:
        """Add one frame's rows (one per face, or one `success=0` row)."""
        if not self._open:
            raise ValueError(f"{self.path}: append() after close()")
        if result.frame <= self.resume_after_frame:
            return
        rows = layout_rows(result, self.labels, self._layout)
        kinds = self._layout.kinds
        text = "".join(self._sep.join(_format_row(row, kinds)) + "\n" for row in rows)
        self._pending.append(text.encode("utf-8"))
        self.rows_written += len(rows)
        if time.monotonic() - self._last_flush >= self.flush_every_s:
            self.flush()

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = self._file.write(view)
            view = view[n:]

    def flush(self) -> None:
        """Write the rows waiting in memory and fsync them."""
        if self._file is None:
            return
        data = b"".join(self._pending)
        self._pending.clear()
        try:
            if data:
                self._write_all(data)
            os.fsync(self._file.fileno())
        except OSError as e:
            try:  # keep the partial file whole lines only
                self._file.truncate(self._size)
                self._file.seek(self._size)
            except OSError:
                pass
            raise OutputError(f"{self.partial_path}: cannot write ({e.strerror or e}); free some disk space "
                              "and resume with --resume") from None
        self._size += len(data)
        self._last_flush = time.monotonic()

    def close(self, person_of=None, subject: int | None = None) -> None:
        """Flush, then rename `<path>.partial` to `path` and release the lock. Idempotent.

        Args:
            person_of: optional `(frame, face_id) -> person_id` (0-based frame; `libreface.identity`
                resolves identities only at the end of a recording): the `.partial` is rewritten with it,
                streaming, before the rename.
            subject: with `person_of`, keep only this person's rows; a frame left without a row gets a
                faceless `success=0` row, so every analysed frame still has one.
        """
        self._close(None if person_of is None else lambda: self._rewrite_persons(person_of, subject))

    def _finish(self) -> None:
        try:
            self.flush()
        finally:
            self._file.close()
            self._file = None

    def _rewrite_persons(self, person_of, subject: int | None) -> None:
        cols = self.columns
        i_frame, i_face = cols.index("frame"), cols.index("face_id")
        i_person = cols.index("person_id") if "person_id" in cols else None
        i_success = cols.index("success")
        keep_always = {i_frame, cols.index("timestamp")}
        first = 1 if self.fmt == "openface" else 0
        no_face_id = "0" if self.fmt == "openface" else "-1"
        sep = self._sep
        tmp = self.partial_path.with_name(self.partial_path.name + ".rewrite")

        def faceless(fields: list[str]) -> str:
            out = [f if i in keep_always else "" for i, f in enumerate(fields)]
            out[i_face], out[i_success] = no_face_id, "0"
            return sep.join(out)

        try:
            with open(self.partial_path, encoding="utf-8") as src, open(tmp, "w", encoding="utf-8") as dst:
                dst.write(src.readline())
                frame_rows: list[str] = []
                dropped: list[str] | None = None
                current = None

                def emit() -> None:
                    if frame_rows:
                        dst.write("\n".join(frame_rows) + "\n")
                    elif dropped is not None:
                        dst.write(faceless(dropped) + "\n")

                for line in src:
                    fields = line.rstrip("\n").split(sep)
                    frame = int(fields[i_frame]) - first
                    if frame != current:
                        emit()
                        frame_rows, dropped, current = [], None, frame
                    face_id = int(fields[i_face]) if fields[i_face] else -1
                    has_face = face_id >= 0 if self.fmt == "native" else fields[i_success].strip() == "1"
                    if has_face:
                        pid = int(person_of(frame, face_id))
                        if i_person is not None:
                            fields[i_person] = str(pid)
                        if subject is not None and pid != subject:
                            dropped = fields
                            continue
                    frame_rows.append(sep.join(fields))
                emit()
                dst.flush()
                os.fsync(dst.fileno())
            os.replace(tmp, self.partial_path)
        except OSError as e:
            raise OutputError(f"{self.partial_path}: cannot rewrite with person ids ({e.strerror or e})") from None
