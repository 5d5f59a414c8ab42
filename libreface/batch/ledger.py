"""Batch ledger: append-only `ledger.jsonl` (source of truth), its folded state, and the `ledger.csv` view."""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError, OutputError
from .locks import lock_folder, unlock_folder
from .records import LEDGER_COLUMNS, LEDGER_FILE, LEDGER_VIEW, LOCK_FILE, utc_now

log = logging.getLogger(__name__)


class Ledger:
    """Append-only JSON-lines ledger, written by the coordinating process only, under an exclusive lock."""

    def __init__(self, outdir: Path) -> None:
        self.outdir = outdir
        self.path = outdir / LEDGER_FILE
        self._lock = lock_folder(outdir / LOCK_FILE)
        try:
            self.state = fold(self.path)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            size = os.fstat(self._fd).st_size
            if size:
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":  # a torn last line from a crash: start on a fresh line
                        os.write(self._fd, b"\n")
        except OSError as e:
            unlock_folder(self._lock)
            raise OutputError(f"{self.path}: cannot write the ledger ({e.strerror or e}); "
                              "choose a writable output folder") from None

    def append(self, record: dict) -> None:
        data = (json.dumps(record, ensure_ascii=False, allow_nan=False, default=str) + "\n").encode("utf-8")
        try:
            os.write(self._fd, data)
            os.fsync(self._fd)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot append to the ledger ({e.strerror or e}); "
                              "free some disk space and rerun the same command") from None

    def update(self, name: str, **fields) -> dict:
        rec = {**self.state.get(name, {}), **fields, "type": "recording", "recording": name, "time": utc_now()}
        self.append(rec)
        self.state[name] = rec
        return rec

    def write_view(self) -> Path:
        return _write_view(self.outdir / LEDGER_VIEW, self.state.values())

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
        unlock_folder(self._lock)
        self._lock = None


def fold(path: Path) -> dict[str, dict]:
    """Latest record of each recording in a ledger file; torn or foreign lines are skipped."""
    state: dict[str, dict] = {}
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return state
    bad = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(rec, dict) and rec.get("type") == "recording" and rec.get("recording"):
            state[rec["recording"]] = rec
    if bad:
        log.warning("%s: skipped %d unreadable line(s) (a run that crashed mid-write)", path, bad)
    return state


def _view_rows(records: Iterable[dict]) -> tuple[list[str], list[dict]]:
    records = sorted(records, key=lambda r: (r.get("order", 1 << 62), r["recording"]))
    meta_cols: list[str] = []
    for r in records:
        for k in r.get("meta") or {}:
            if k not in meta_cols:
                meta_cols.append(k)
    rows = []
    for r in records:
        row = {c: r.get(c) for c in LEDGER_COLUMNS}
        row.update({k: (r.get("meta") or {}).get(k, "") for k in meta_cols})
        rows.append(row)
    return list(LEDGER_COLUMNS) + meta_cols, rows


def _write_view(path: Path, records: Iterable[dict]) -> Path:
    """ledger.csv: one row per recording, written to a temporary file and renamed (never half-written)."""
    cols, rows = _view_rows(records)
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for row in rows:
            w.writerow({k: "" if v is None else v for k, v in row.items()})
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_ledger(outdir: str | os.PathLike):
    """The ledger of a batch folder as a pandas DataFrame: one row per recording, columns `LEDGER_COLUMNS` then the
    manifest's metadata columns. Read from `ledger.jsonl`, so it is current even while a batch runs."""
    import pandas as pd

    path = Path(outdir) / LEDGER_FILE
    if not path.is_file():
        raise InputError(f"{path}: no batch ledger here; expected the -o folder of a `libreface batch` run")
    cols, rows = _view_rows(fold(path).values())
    return pd.DataFrame(rows, columns=cols)
