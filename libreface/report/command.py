"""Report step 7: the `libreface report` command, and `--report` for the analyze and batch commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import LibrefaceError
from ..extras import exit_missing
from . import summaries
from .build import default_output, make_report
from .figures import require_matplotlib


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="libreface report", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="One self-contained HTML report per results CSV (native or --format openface): provenance, "
                    "analysis quality, and per person AU timelines, expression probabilities, AU and expression "
                    "summaries, head pose and blinks. Opens offline in any browser; holds no face image.")
    p.add_argument("csv", nargs="+", type=Path, help="results CSV(s) written by `libreface` or `libreface batch`")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="HTML file (one CSV) or folder (several); default: <csv name>.html next to each CSV")
    p.add_argument("--pose-threshold", type=float, default=summaries.POSE_THRESHOLD_DEG,
                   help="|yaw| or |pitch| in degrees beyond which a head pose counts as extreme")
    p.add_argument("--pose-min-seconds", type=float, default=summaries.POSE_MIN_S,
                   help="shortest extreme-pose segment listed, seconds")
    p.add_argument("--quiet", action="store_true", help="print nothing on success")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def _target(csv: Path, output: Path | None, several: bool) -> Path:
    if output is None:
        return default_output(csv)
    if several or output.is_dir() or output.suffix == "":
        return output / default_output(csv).name
    return output


def report_command(argv: list[str]) -> int:
    """`libreface report`: exit 0 when every report was written, 1 when any failed, 2 for bad arguments."""
    p = build_parser()
    args = p.parse_args(argv)
    if len(args.csv) > 1 and args.output is not None and args.output.suffix.lower() in (".html", ".htm"):
        p.error("--output must be a folder when there are several CSVs")
    if args.pose_threshold <= 0 or args.pose_min_seconds < 0:
        p.error("--pose-threshold must be > 0 and --pose-min-seconds >= 0")
    try:
        require_matplotlib()
    except ImportError as e:  # extras.MissingExtra: one line naming the extra to install
        return exit_missing("libreface", e)
    failed = 0
    for csv in args.csv:
        out = _target(csv, args.output, len(args.csv) > 1)
        try:
            make_report(csv, out, pose_threshold_deg=args.pose_threshold, pose_min_s=args.pose_min_seconds)
        except LibrefaceError as e:
            if args.debug:
                raise
            print(f"libreface: {e}", file=sys.stderr)
            failed += 1
            continue
        if not args.quiet:
            print(f"{csv} -> {out}", file=sys.stderr)
    return 1 if failed else 0


def run_provenance(model: str, source: str | None, options: dict) -> dict:
    """The provenance an analyze / batch run hands to `make_report`: model name and sha256, source, options."""
    from .. import __version__
    from .provenance import model_sha256

    return {"model": model, "model_sha256": model_sha256(model), "source": source, "options": options,
            "libreface_version": __version__}


def report_after_analysis(csv: Path, source: str, args: argparse.Namespace) -> str | None:
    """`--report` of the analyze command: write <csv>.html next to `csv`; returns an error line or None."""
    keys = ("format", "max_faces", "every", "fps", "no_small_faces", "mirror", "identity", "subject",
            "landmarks", "blendshapes", "batch_size")
    options = {k.replace("_", "-"): getattr(args, k) for k in keys if hasattr(args, k)}
    try:
        out = make_report(csv, provenance=run_provenance(args.model, str(source), options))
    except (LibrefaceError, ImportError) as e:
        return f"{csv}: report not written: {e}"
    if not getattr(args, "quiet", False):
        print(f"report -> {out}", file=sys.stderr)
    return None


def batch_reports(outdir: Path, names: list[str], model: str, options: dict, quiet: bool = False) -> list[str]:
    """`--report` of the batch command: OUTDIR/reports/<recording>.html for each recording in `names` whose CSV
    exists and whose report is missing or older than it; returns one error line per failure."""
    errors = []
    for name in names:
        csv = outdir / "csv" / f"{name}.csv"
        out = outdir / "reports" / f"{name}.html"
        if not csv.is_file() or (out.is_file() and out.stat().st_mtime >= csv.stat().st_mtime):
            continue
        try:
            make_report(csv, out, provenance=run_provenance(model, None, options))
        except (LibrefaceError, ImportError) as e:
            errors.append(f"{name}: report not written: {e}")
            continue
        if not quiet:
            print(f"report -> {out}", file=sys.stderr)
    return errors
