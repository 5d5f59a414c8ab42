"""Collect step: a batch folder's per-recording CSVs + manifest metadata -> one Parquet dataset and a summary table.

```
libreface collect study/ -o study.parquet
```

writes

```
study.parquet/                 a directory dataset, one file per recording
  <recording>.parquet          metadata columns (text), then `recording` (text), then the CSV's columns and types
  _libreface.json              provenance; readers skip names starting with "_"
study/summary.csv, study/summary.parquet   one row per recording of the ledger (see `SUMMARY_COLUMNS`)
```

Read it with `pd.read_parquet("study.parquet")`, `pl.read_parquet("study.parquet/*.parquet")` (Polars) or
`arrow::open_dataset("study.parquet")` (R); filter with `filters=[("recording", "==", "s01")]` (pandas / pyarrow
skip the other files by their statistics). Each file holds one recording, and `recording` is a real text column
rather than a Hive `recording=<name>/` folder: Hive readers guess the type of folder values, and recordings named
001, 002, ... would come back as the integers 1, 2.

Column types follow the CSV layout: `frame`, `face_id`, `success` int64; `person_id`, `<AU>_presence` / `AUxx_c`
nullable int64; `expression` text; every other CSV column float64. The work is streamed one recording at a time, in
chunks of rows, so memory does not grow with the number of recordings; the summary keeps one recording's AU and
expression values (float32) for its percentiles.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from .blinks import blink_column, blink_summary
from .errors import InputError, OutputError
from .extras import exit_missing
from .outputs.reader import expression_columns_in

log = logging.getLogger(__name__)

__all__ = ["SUMMARY_COLUMNS", "CollectReport", "collect", "collect_command"]

SUMMARY_COLUMNS: tuple[str, ...] = (
    "recording", "status", "path", "frames", "face_rows", "frames_with_face", "pct_frames_with_face", "duration_s",
    "error",
)
"""First columns of the summary, followed by the manifest's metadata columns and, for each AU intensity and
expression probability column C, `C_mean, C_p10, C_p50, C_p90` over the analysed faces (success = 1).

frames: analysed frames; face_rows: rows with an analysed face; frames_with_face: frames with at least one;
pct_frames_with_face: 100 * frames_with_face / frames; duration_s: the recording's length (from the ledger).
When the CSVs have an AU45 intensity column, `blinks` (blink events of all faces, each face track its own series)
and `blink_rate_per_min` (per minute of face time) follow; see `libreface.blinks`. Without AU45 they are absent.
Recordings that are not done (failed, partial, pending) have a row too, with their status and error and no figures.
"""

DATASET_MARKER = "_libreface.json"
_INT = ("frame", "face_id", "success")
_NULLABLE_INT = ("person_id",)
_TEXT = ("expression",)
_OPENFACE_AU = re.compile(r"AU\d+_[rc]")


@dataclass
class CollectReport:
    """What `collect` wrote.

    Attributes:
        dataset: the Parquet dataset folder; summary_csv, summary_parquet: the summary tables.
        recordings: recordings in the dataset; rows: their rows in all.
        missing: (recording, status, error) for the ledger's recordings that are not done (not in the dataset).
    """

    dataset: Path
    summary_csv: Path
    summary_parquet: Path
    recordings: list[str] = field(default_factory=list)
    rows: int = 0
    missing: list[tuple[str, str, str]] = field(default_factory=list)


def _pyarrow():
    from .extras import require

    return require("pyarrow", "parquet", "libreface collect"), require("pyarrow.parquet", "parquet", "libreface collect")


def _kind(column: str, openface: bool) -> str:
    """"int", "Int" (nullable), "str" or "float" for a CSV column, from the layout of `libreface.outputs`."""
    if column in _INT:
        return "int"
    if column in _NULLABLE_INT or column.endswith("_presence") or (openface and re.fullmatch(r"AU\d+_c", column)):
        return "Int"
    if column in _TEXT:
        return "str"
    return "float"


def _stat_columns(columns: list[str]) -> list[str]:
    """AU intensity columns, then the expression probability columns (those just before `expression`)."""
    intensity = [c for c in columns if c.endswith("_intensity")] or [c for c in columns if re.fullmatch(r"AU\d+_r", c)]
    return intensity + expression_columns_in(columns)


class _Stats:
    """Per-recording figures, accumulated chunk by chunk (rows arrive in frame order)."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = _stat_columns(columns)
        self.blink_column = blink_column(columns)
        self._blink: list[np.ndarray] = []  # (n, 3): timestamp, face_id, AU45 intensity of analysed faces
        self.frames = self.frames_with_face = self.face_rows = 0
        self._last_frame = self._last_face_frame = None
        self._values: list[np.ndarray] = []

    def add(self, chunk) -> None:
        frames = chunk["frame"].to_numpy()
        if len(frames):
            new = np.r_[frames[0] != self._last_frame, frames[1:] != frames[:-1]]
            self.frames += int(new.sum())
            self._last_frame = frames[-1]
        ok = chunk["success"].to_numpy() == 1
        face_frames = frames[ok]
        if len(face_frames):
            new = np.r_[face_frames[0] != self._last_face_frame, face_frames[1:] != face_frames[:-1]]
            self.frames_with_face += int(new.sum())
            self._last_face_frame = face_frames[-1]
        self.face_rows += int(ok.sum())
        if self.columns:
            self._values.append(chunk.loc[ok, self.columns].to_numpy(np.float32, na_value=np.nan))
        if self.blink_column is not None:
            self._blink.append(chunk.loc[ok, ["timestamp", "face_id", self.blink_column]].to_numpy(
                np.float64, na_value=np.nan))

    def row(self) -> dict:
        out = {"frames": self.frames, "face_rows": self.face_rows, "frames_with_face": self.frames_with_face,
               "pct_frames_with_face": round(100.0 * self.frames_with_face / self.frames, 3) if self.frames else None}
        values = np.concatenate(self._values) if self._values else np.zeros((0, len(self.columns)), np.float32)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (no face at all) give NaN
            mean = np.nanmean(values, axis=0) if len(values) else np.full(len(self.columns), np.nan)
            pct = (np.nanpercentile(values, [10, 50, 90], axis=0) if len(values)
                   else np.full((3, len(self.columns)), np.nan))
        for i, c in enumerate(self.columns):
            out[f"{c}_mean"] = float(mean[i])
            out[f"{c}_p10"], out[f"{c}_p50"], out[f"{c}_p90"] = (float(v) for v in pct[:, i])
        if self.blink_column is not None:
            b = np.concatenate(self._blink) if self._blink else np.zeros((0, 3))
            out.update(blink_summary(b[:, 0], b[:, 2], groups=b[:, 1]))
        return out


def _read_header(path: Path) -> tuple[list[str], bool]:
    with open(path, encoding="utf-8") as f:
        line = f.readline().rstrip("\r\n")
    if not line:
        raise InputError(f"{path}: empty CSV (no header); rerun `libreface batch` to analyse the recording again")
    openface = ", " in line
    return [c.strip().strip('"') for c in line.split(",")], openface


def _prepare_output(out: Path) -> Path:
    """The `.partial` folder to write into; refuses to replace anything `collect` did not write."""
    if out.exists() and (out.is_file() or not (out / DATASET_MARKER).is_file()):
        raise OutputError(f"{out}: exists and was not written by libreface collect; choose another -o or remove it")
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as e:
        raise OutputError(f"{out}: cannot create {tmp.name} ({e.strerror or e}); choose a writable -o") from None
    return tmp


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace `out` by the complete `tmp` folder (two renames: readers see the old or the new dataset)."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _write_table_atomic(df, path: Path) -> None:
    pa, pq = _pyarrow()
    tmp = path.with_name(path.name + ".partial")
    if path.suffix == ".csv":
        df.to_csv(tmp, index=False)
    else:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp)
    os.replace(tmp, path)


def collect(outdir: str | os.PathLike, output: str | os.PathLike | None = None, *,
            summary_dir: str | os.PathLike | None = None, chunk_rows: int = 100_000,
            progress: bool = False) -> CollectReport:
    """Merge the CSVs of a `libreface batch` folder into one Parquet dataset, and write the per-recording summary.

    Args:
        outdir: the batch's output folder (it has `ledger.jsonl`).
        output: dataset folder to write; default `<outdir>/study.parquet`. Replaced only if `collect` wrote it.
        summary_dir: where `summary.csv` and `summary.parquet` go; default `outdir`.
        chunk_rows: CSV rows read (and written as one row group) at a time.
        progress: a progress bar on stderr.

    Returns:
        A `CollectReport`. Recordings that are not done are listed in `missing` and left out of the dataset.

    Raises:
        InputError: no ledger, recordings made with different settings, a CSV with other columns, or a metadata
            column that has the name of a CSV column.
        OutputError: `output` exists and is not a dataset written by `collect`.
    """
    import pandas as pd

    from .batch import LEDGER_COLUMNS, read_ledger

    pa, pq = _pyarrow()
    outdir = Path(outdir)
    ledger = read_ledger(outdir)
    out = Path(output) if output is not None else outdir / "study.parquet"
    summary_dir = Path(summary_dir) if summary_dir is not None else outdir
    meta_cols = [c for c in ledger.columns if c not in LEDGER_COLUMNS]
    ledger = ledger.sort_values("recording", kind="stable")

    done = ledger[(ledger["status"] == "done")
                  & ledger["csv"].map(lambda c: isinstance(c, str) and bool(c) and (outdir / c).is_file())]
    done_names = set(done["recording"])
    settings = sorted(set(done["settings"]))
    if len(settings) > 1:
        counts = ", ".join(f"{s} ({(done['settings'] == s).sum()} recordings)" for s in settings)
        raise InputError(f"{outdir}: recordings were analysed with {len(settings)} different settings or models "
                         f"({counts}); rerun `libreface batch` on all of them with one set of options first")

    report = CollectReport(out, summary_dir / "summary.csv", summary_dir / "summary.parquet")
    tmp = _prepare_output(out)
    summary_rows = []
    columns = openface = schema = None
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(ledger), unit="file", desc="collect", dynamic_ncols=True, file=sys.stderr)
    try:
        for rec in ledger.to_dict("records"):
            name = rec["recording"]
            meta = {c: (rec.get(c) or None) for c in meta_cols}
            base = {"recording": name, "status": rec["status"], "path": rec["path"], "duration_s": rec["duration_s"],
                    "error": rec["error"] or None, **meta}
            if name not in done_names:
                if rec["status"] == "done":
                    base.update(status="missing", error=f"{outdir / str(rec['csv'])}: not found")
                report.missing.append((name, base["status"], base["error"] or ""))
                summary_rows.append(base)
                if bar is not None:
                    bar.update(1)
                continue
            csv_path = outdir / rec["csv"]
            cols, of = _read_header(csv_path)
            if columns is None:
                columns, openface = cols, of
                clash = sorted(set(meta_cols) & (set(cols) | {"recording"}))
                if clash:
                    raise InputError(f"{outdir}: manifest column(s) {', '.join(clash)} have the names of output "
                                     "columns; rename them in the manifest and rerun `libreface batch`")
                kinds = {c: _kind(c, openface) for c in columns}
                arrow = {"int": pa.int64(), "Int": pa.int64(), "str": pa.string(), "float": pa.float64()}
                schema = pa.schema([pa.field(c, pa.string()) for c in meta_cols] + [pa.field("recording", pa.string())]
                                   + [pa.field(c, arrow[kinds[c]]) for c in columns])
                dtypes = {c: {"int": "int64", "Int": "Int64", "str": "string", "float": "float64"}[kinds[c]]
                          for c in columns}
            elif cols != columns:
                raise InputError(f"{csv_path}: its columns differ from those of the other recordings; rerun "
                                 "`libreface batch` on all of them with one set of options first")
            provenance = {"recording": name, "source": rec["path"], "model": rec["model"],
                          "model_sha256": rec["model_sha256"], "settings": rec["settings"],
                          "libreface_version": rec["libreface_version"], "metadata": meta}
            file_schema = schema.with_metadata({"libreface": json.dumps(provenance)})
            stats = _Stats(columns)
            rows = 0
            with pq.ParquetWriter(str(tmp / f"{name}.parquet"), file_schema) as writer:
                chunks = pd.read_csv(csv_path, dtype=dtypes, chunksize=max(1, chunk_rows), skipinitialspace=openface)
                wrote = False
                for chunk in chunks:
                    stats.add(chunk)
                    for i, c in enumerate(meta_cols):
                        chunk.insert(i, c, pd.Series([meta[c]] * len(chunk), index=chunk.index, dtype="string"))
                    chunk.insert(len(meta_cols), "recording", pd.Series([name] * len(chunk), index=chunk.index,
                                                                        dtype="string"))
                    writer.write_table(pa.Table.from_pandas(chunk, schema=file_schema, preserve_index=False))
                    rows += len(chunk)
                    wrote = True
                if not wrote:
                    writer.write_table(file_schema.empty_table())
            summary_rows.append({**base, **stats.row()})
            report.recordings.append(name)
            report.rows += rows
            if bar is not None:
                bar.update(1)
        (tmp / DATASET_MARKER).write_text(json.dumps({
            "libreface_version": __version__, "batch": str(outdir.resolve()), "settings": settings[0] if settings
            else None, "recordings": report.recordings, "rows": report.rows,
            "metadata_columns": meta_cols}, indent=1))
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()

    stat_cols = [k for row in summary_rows for k in row if k not in SUMMARY_COLUMNS and k not in meta_cols]
    order = list(dict.fromkeys(list(SUMMARY_COLUMNS[:1]) + meta_cols + list(SUMMARY_COLUMNS[1:]) + stat_cols))
    summary = pd.DataFrame(summary_rows, columns=order)
    for c in ("frames", "face_rows", "frames_with_face"):
        summary[c] = summary[c].astype("Int64")
    summary_dir.mkdir(parents=True, exist_ok=True)
    _write_table_atomic(summary, report.summary_csv)
    _write_table_atomic(summary, report.summary_parquet)
    return report


def collect_command(argv: list[str]) -> int:
    """`libreface collect OUTDIR [-o DATASET]`: exit 0 when the dataset is written (recordings that are not done are
    listed on stderr and kept out of it), 1 on an error, 2 for bad arguments."""
    p = argparse.ArgumentParser(
        prog="libreface collect", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Merge the per-recording CSVs of a `libreface batch` folder, with their manifest metadata, into "
        "one Parquet dataset (one file per recording), and write summary.csv / summary.parquet (one row per "
        "recording: frames, % frames with a face, mean and 10th/50th/90th percentiles of each AU and expression).")
    p.add_argument("outdir", type=Path, help="the -o folder of `libreface batch`")
    p.add_argument("-o", "--output", type=Path, default=None, help="dataset folder; default OUTDIR/study.parquet")
    p.add_argument("--summary-dir", type=Path, default=None, help="folder for summary.csv/.parquet; default OUTDIR")
    p.add_argument("--chunk-rows", type=int, default=100_000, help="CSV rows read at a time")
    p.add_argument("--report", action="store_true",
                   help="also write OUTDIR/reports/study.html: one row per recording and person (needs the report extra)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    args = p.parse_args(argv)
    if args.chunk_rows < 1:
        p.error(f"--chunk-rows must be >= 1, got {args.chunk_rows}")
    try:
        report = collect(args.outdir, args.output, summary_dir=args.summary_dir, chunk_rows=args.chunk_rows,
                         progress=not args.quiet)
    except ImportError as e:  # a missing optional extra: exit 1, as the analyze command does
        if args.debug:
            raise
        return exit_missing("libreface", e)
    if not args.quiet:
        for name, status, error in report.missing:
            print(f"libreface: {name}: {status}{f' ({error})' if error else ''}; not in the dataset", file=sys.stderr)
        print(f"libreface: {len(report.recordings)} recordings, {report.rows} rows -> {report.dataset}; "
              f"summary: {report.summary_csv}", file=sys.stderr)
    if args.report:
        from .report.study import make_study_report

        try:
            page = make_study_report(args.outdir)
        except (ImportError, InputError, OutputError) as e:
            print(f"libreface: {str(e).splitlines()[0]}", file=sys.stderr)
            return 1
        if not args.quiet:
            print(f"libreface: study report -> {page}", file=sys.stderr)
    return 0
