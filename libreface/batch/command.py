"""Batch command line: the `libreface batch` argument parser and its `main` (exit status, summary line)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..extras import exit_missing
from ..models.registry import DEFAULT_MODEL
from .coordinator import run_batch
from .executors import import_dask
from .records import BatchSettings


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="libreface batch", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Analyse many recordings into one folder, resumably: one CSV per recording and a run ledger. "
        "Rerun the same command to finish what is missing; then `libreface collect OUTDIR`.")
    p.add_argument("inputs", nargs="+", type=Path,
                   help="video or image files, folders, .txt lists, or a manifest .csv with a 'path' column (its other "
                   "columns, e.g. participant and session, are kept as metadata; an optional 'recording' column "
                   "names the outputs)")
    p.add_argument("-o", "--output", type=Path, required=True, help="output folder (created)")
    p.add_argument("-r", "--recursive", action="store_true",
                   help="also take the media files in the subfolders of folder inputs (equal file names in different "
                        "folders get names like p01__session1)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--jobs", type=int, default=0, help="local worker processes; 0 = one per core")
    where.add_argument("--dask-local", type=int, default=0, metavar="N",
                       help="run on a Dask LocalCluster of N worker processes on 127.0.0.1 (needs the dask extra)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on a Dask cluster, e.g. tcp://head:8786 (see docs/slurm.md)")
    p.add_argument("--retries", type=int, default=2,
                   help="extra tries for a recording whose worker raised or died; bad input files are not retried")
    p.add_argument("--format", choices=["native", "openface"], default="native", help="CSV column layout")
    p.add_argument("--model", default=DEFAULT_MODEL, help="student model: a registered name or an .onnx file")
    p.add_argument("--max-faces", type=int, default=1, help="most faces analysed per frame")
    p.add_argument("--every", type=int, default=1, help="analyse every N-th frame")
    p.add_argument("--fps", type=float, default=None, help="analyse at most this many frames per second of video")
    p.add_argument("--features", action="store_true", help="also write features/<recording>.parquet")
    p.add_argument("--landmarks", action="store_true", help="add the landmark columns")
    p.add_argument("--blendshapes", action="store_true", help="add the 52 blendshape columns (native format)")
    p.add_argument("--no-small-faces", action="store_true", help="skip the second detection pass for small faces")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=False,
                   help="also run each face mirrored and average the two outputs (twice the model time)")
    p.add_argument("--threads", type=int, default=0,
                   help="ONNX Runtime threads per worker; 0 = cores // workers (1 with --scheduler)")
    p.add_argument("--report", action="store_true",
                   help="also write OUTDIR/reports/<recording>.html for each finished recording (needs the report extra)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _quiet_dask_logs() -> None:
    """Keep Dask's INFO / WARNING lines (cluster start, worker restarts) for --debug: the ledger says what happened.
    Its import sets each `distributed.*` logger's level from the Dask config, so they are lowered after it."""
    import_dask()
    for name in list(logging.root.manager.loggerDict):
        if name == "distributed" or name.startswith("distributed."):
            logging.getLogger(name).setLevel(logging.ERROR)


def batch_command(argv: list[str]) -> int:
    """`libreface batch`: exit 0 when every recording is done, 1 when any failed, 2 for bad arguments, 130 / 143
    after Ctrl-C / SIGTERM (rerun the same command to finish)."""
    p = build_parser()
    args = p.parse_args(argv)
    for flag, low in (("jobs", 0), ("dask_local", 0), ("threads", 0), ("retries", 0), ("every", 1), ("max_faces", 1)):
        if getattr(args, flag) < low:
            p.error(f"--{flag.replace('_', '-')} must be >= {low}, got {getattr(args, flag)}")
    if args.fps is not None and args.fps <= 0:
        p.error(f"--fps must be > 0, got {args.fps}")
    if args.format == "openface" and args.blendshapes:
        p.error("--blendshapes is only available with --format native")
    settings = BatchSettings(model=args.model, fmt=args.format, max_faces=args.max_faces, every=args.every,
                             fps=args.fps, small_faces=not args.no_small_faces, mirror=args.mirror,
                             landmarks=args.landmarks, blendshapes=args.blendshapes, features=args.features,
                             threads=args.threads)
    try:
        if args.report:  # fail before the batch, not after it
            from ..report.figures import require_matplotlib

            require_matplotlib()
        if (args.dask_local or args.scheduler) and not args.debug:
            _quiet_dask_logs()
        report = run_batch(args.inputs, args.output, settings, jobs=args.jobs, dask_local=args.dask_local,
                           scheduler=args.scheduler, retries=args.retries, progress=not args.quiet,
                           quiet_native_logs=not args.debug, recursive=args.recursive)
    except ImportError as e:  # a missing optional extra: exit 1, as the analyze command does
        if args.debug:
            raise
        return exit_missing("libreface", e)
    except ValueError as e:
        if args.debug:
            raise
        p.error(str(e))
    if args.quiet:
        pass
    elif report.signal is not None:
        print(f"libreface: interrupted; {len(report.done)} recording(s) finished in this run, "
              f"{len(report.interrupted)} left; rerun the same command to finish them", file=sys.stderr)
    else:
        speed = f", {report.video_s / report.wall_s:.1f} video-s per s" if report.video_s and report.wall_s else ""
        print(f"libreface: {len(report.done)} analysed, {len(report.skipped)} already done, {len(report.failed)} "
              f"failed in {report.wall_s:.1f} s{speed}; ledger: {report.ledger}", file=sys.stderr)
    if report.signal is not None:
        return 128 + int(report.signal)
    if args.report:
        from ..report.command import batch_reports

        errors = batch_reports(report.outdir, report.done + report.skipped, args.model,
                               settings.output_fields(), quiet=args.quiet)
        for line in errors:
            print(f"libreface: {line}", file=sys.stderr)
        if errors:
            return 1
    return 1 if report.failed else 0
