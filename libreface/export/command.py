"""`libreface elan RESULTS.csv [-o out.eaf] [--events out.csv] [--media VIDEO]`: results CSV -> ELAN `.eaf`, events."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import LibrefaceError, OutputError
from ..outputs.atomic import write_atomic
from .segments import SegmentOptions

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


def build_parser() -> argparse.ArgumentParser:
    d = SegmentOptions()
    p = argparse.ArgumentParser(
        prog="libreface elan", formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Turn a results CSV (native or OpenFace layout) into an ELAN 3.0 .eaf linked to the recording: "
                    "per person, a tier of dominant-expression segments and one tier of activations per AU. "
                    "--events also writes them as a plain CSV (person, tier, label, onset_s, offset_s).")
    p.add_argument("results", type=Path, help="results CSV written by libreface (analyze or batch)")
    p.add_argument("-o", "--output", type=Path, default=None, help="the .eaf file; default: <results stem>.eaf next to it")
    p.add_argument("--events", type=Path, default=None, help="also write the segments to this CSV")
    p.add_argument("--no-eaf", action="store_true", help="write only --events, no .eaf")
    p.add_argument("--media", type=Path, default=None, metavar="VIDEO",
                   help="the recording to link. A results CSV does not record its source video, so without --media "
                        "the .eaf links the video the batch ledger names (for OUTDIR/csv/<recording>.csv of "
                        "`libreface batch`) if that file exists, else a video with the CSV's name next to it "
                        f"({', '.join(VIDEO_SUFFIXES)}); when neither is found the .eaf is written unlinked and "
                        "a warning line asks for --media VIDEO")
    p.add_argument("--min-duration", type=float, default=d.min_duration_s,
                   help="shortest expression segment, seconds (shorter ones join their neighbour)")
    p.add_argument("--margin", type=float, default=d.margin,
                   help="probability lead a new expression needs over the current one to start a segment")
    p.add_argument("--min-frames", type=int, default=d.min_frames,
                   help="consecutive frames a new expression must lead before the segment switches")
    p.add_argument("--min-switch", type=float, default=d.min_switch_s,
                   help="seconds a new expression must lead before the segment switches (with --min-frames)")
    p.add_argument("--max-gap-frames", type=int, default=d.max_gap_frames,
                   help="frames without the face that do not end an expression segment")
    p.add_argument("--au-min-duration", type=float, default=d.au_min_duration_s, help="shortest AU activation, seconds")
    p.add_argument("--au-gap", type=float, default=d.au_merge_gap_s,
                   help="AU activations closer than this many seconds are merged")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def find_media(csv_path: Path) -> tuple[Path | None, str]:
    """The recording a results CSV came from, and why not when it is not found.

    The CSV and its `.summary.json` sidecar do not record the source; the batch ledger does, for a CSV in a batch
    folder (`OUTDIR/csv/<recording>.csv`, its `path`). Tried in order: that path if the file exists, then
    `<csv stem>.<video suffix>` next to the CSV.

    Returns:
        (the video, "") or (None, one clause saying what was looked for).
    """
    from ..report.provenance import batch_ledger_row

    csv_path = Path(csv_path)
    named = (batch_ledger_row(csv_path) or {}).get("path")
    if named and Path(named).is_file():
        return Path(named), ""
    for suffix in VIDEO_SUFFIXES:
        for cand in (csv_path.with_suffix(suffix), csv_path.with_suffix(suffix.upper())):
            if cand.is_file():
                return cand, ""
    beside = f"no {csv_path.stem}.<video> is next to it"
    if named:
        return None, f"the batch ledger names {named}, which does not exist, and {beside}"
    return None, f"the CSV does not record its source video and {beside}"


def default_media(csv_path: Path) -> Path | None:
    """The recording `find_media` finds for a results CSV, or None."""
    return find_media(csv_path)[0]


def elan_command(argv: list[str]) -> int:
    """`libreface elan`: exit 0 on success, 1 on an error (one line on stderr), 2 for bad arguments."""
    p = build_parser()
    args = p.parse_args(argv)
    try:
        options = SegmentOptions(margin=args.margin, min_frames=args.min_frames, min_switch_s=args.min_switch,
                                 min_duration_s=args.min_duration, max_gap_frames=args.max_gap_frames,
                                 au_min_duration_s=args.au_min_duration, au_merge_gap_s=args.au_gap)
    except ValueError as e:
        p.error(str(e))
    if args.no_eaf and args.events is None:
        p.error("--no-eaf needs --events")
    try:
        written = export(args.results, None if args.no_eaf else (args.output or args.results.with_suffix(".eaf")),
                         args.events, args.media, options)
    except (LibrefaceError, OSError) as e:
        if args.debug:
            raise
        print(f"libreface: {e}", file=sys.stderr)
        return 1
    for line in written:
        print(f"libreface: {line}", file=sys.stderr)
    return 0


def export(results: Path, eaf: Path | None, events: Path | None, media: Path | None = None,
           options: SegmentOptions = SegmentOptions()) -> list[str]:
    """Segment `results` and write the `.eaf` (if `eaf`) and the events CSV (if `events`); one line per file written."""
    from .. import __version__
    from .elan import build_eaf, eaf_bytes
    from .events import events_bytes
    from .segments import segments, tier_names
    from .table import read_table

    table = read_table(results)
    segs = segments(table, options)
    lines = []
    if eaf is not None:
        if eaf.suffix.lower() != ".eaf":
            raise OutputError(f"{eaf}: an ELAN file must end in .eaf")
        why = ""
        if media is None:
            media, why = find_media(results)
        doc = build_eaf(segs, tier_names(table), media, eaf, author=f"libreface {__version__}")
        write_atomic(eaf, eaf_bytes(doc))
        link = f"linked to {media}" if media is not None else "not linked to a recording"
        lines.append(f"{eaf}: {len(segs)} segments on {len(tier_names(table))} tiers, {link}")
        if media is None:
            lines.append(f"warning: {results}: no recording to link: {why}; pass --media VIDEO")
        elif not Path(media).is_file():
            lines.append(f"warning: {media} does not exist; ELAN will ask for the recording")
    if events is not None:
        write_atomic(events, events_bytes(segs))
        lines.append(f"{events}: {len(segs)} events")
    return lines
