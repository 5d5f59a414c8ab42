"""`libreface elan RESULTS.csv [-o out.eaf] [--events out.csv]`: a results CSV -> ELAN `.eaf` and/or events CSV."""

from __future__ import annotations

import argparse
import csv
import json
import os
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
    p.add_argument("--media", type=Path, default=None,
                   help="the recording to link; default: the one the batch ledger or the summary names, "
                        "else a video with the CSV's name next to it")
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


def default_media(csv_path: Path) -> Path | None:
    """The recording a results CSV came from: the batch ledger's `path`, a summary's `source`, or `<stem>.<video>`."""
    csv_path = Path(os.path.abspath(csv_path))
    ledger = csv_path.parent.parent / "ledger.csv"
    if csv_path.parent.name == "csv" and ledger.is_file():  # a batch folder: OUTDIR/csv/<recording>.csv
        try:
            with open(ledger, encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    if row.get("recording") == csv_path.stem and row.get("path"):
                        return Path(row["path"])
        except (OSError, csv.Error, UnicodeDecodeError):
            pass
    for side in (csv_path.with_suffix(".summary.json"), csv_path.with_name(csv_path.name + ".summary.json")):
        try:
            meta = json.loads(side.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        for holder in (meta, meta.get("provenance") if isinstance(meta, dict) else None):
            if isinstance(holder, dict):
                for key in ("source", "recording", "media", "path", "input"):
                    if isinstance(holder.get(key), str) and holder[key]:
                        return (side.parent / holder[key]) if not os.path.isabs(holder[key]) else Path(holder[key])
    for suffix in VIDEO_SUFFIXES:
        for cand in (csv_path.with_suffix(suffix), csv_path.with_suffix(suffix.upper())):
            if cand.is_file():
                return cand
    return None


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
        media = media if media is not None else default_media(results)
        doc = build_eaf(segs, tier_names(table), media, eaf, author=f"libreface {__version__}")
        write_atomic(eaf, eaf_bytes(doc))
        link = f"linked to {media}" if media is not None else "not linked to a recording (use --media)"
        lines.append(f"{eaf}: {len(segs)} segments on {len(tier_names(table))} tiers, {link}")
        if media is not None and not Path(media).is_file():
            lines.append(f"warning: {media} does not exist; ELAN will ask for the recording")
    if events is not None:
        write_atomic(events, events_bytes(segs))
        lines.append(f"{events}: {len(segs)} events")
    return lines
