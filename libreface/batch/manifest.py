"""Batch inputs: manifest CSVs, folders, `.txt` lists and files -> uniquely named recordings with their metadata."""

from __future__ import annotations

import csv
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError
from ..outputs.names import safe_name, unique_names
from .records import LEDGER_COLUMNS, Recording, one_line

log = logging.getLogger(__name__)

MANIFEST_PATH_COLUMN = "path"
MANIFEST_NAME_COLUMN = "recording"
RESERVED_COLUMNS = frozenset(LEDGER_COLUMNS) | {"frame", "face_id", "person_id", "timestamp", "confidence", "success"}
"""Column names a manifest may not use: libreface writes them (the ledger's, and the per-frame CSV's keys)."""


def read_manifest(path: str | os.PathLike) -> list[tuple[Path, dict[str, str], str | None]]:
    """Rows of a manifest CSV: (input path, metadata, explicit recording name or None).

    The file is UTF-8 CSV with a header. `path` (required) is a video or image, relative to the manifest's folder or
    absolute; `recording` (optional) names the outputs; every other column is metadata, kept as text.

    Raises:
        InputError: unreadable file, no `path` column, an empty path, or a column libreface itself writes.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: cannot read the manifest ({one_line(e)}); expected a UTF-8 CSV with a "
                         f"'{MANIFEST_PATH_COLUMN}' column") from None
    if MANIFEST_PATH_COLUMN not in header:
        raise InputError(f"{path}: the manifest has no '{MANIFEST_PATH_COLUMN}' column (columns: "
                         f"{', '.join(header) or 'none'}); expected a header such as path,participant,session")
    clash = sorted(h for h in header if h in RESERVED_COLUMNS and h not in (MANIFEST_PATH_COLUMN, MANIFEST_NAME_COLUMN))
    if clash:
        raise InputError(f"{path}: manifest column(s) {', '.join(clash)} clash with columns libreface writes; "
                         "rename them (e.g. with a prefix such as meta_)")
    meta_cols = [h for h in header if h not in (MANIFEST_PATH_COLUMN, MANIFEST_NAME_COLUMN) and h]
    out = []
    for line, row in enumerate(rows, start=2):
        if not any(row.values()):
            continue
        entry = row.get(MANIFEST_PATH_COLUMN, "")
        if not entry:
            raise InputError(f"{path}: line {line} has an empty '{MANIFEST_PATH_COLUMN}'; expected a video or "
                             "image path on every row")
        p = Path(entry).expanduser()
        p = p if p.is_absolute() else path.parent / p
        name = row.get(MANIFEST_NAME_COLUMN) or None
        out.append((p, {c: row.get(c, "") for c in meta_cols}, name))
    if not out:
        raise InputError(f"{path}: the manifest lists no recordings; expected one row per video or image")
    return out


def _assign_names(items: list[tuple[Path, dict, str | None]], known: dict[str, str]) -> list[Recording]:
    """Give each input a unique (case-insensitively) name, reusing the names the ledger already has for its path."""
    taken = {name.casefold(): path for path, name in known.items()}  # folded name -> path
    names: dict[str, str] = {}  # path -> name
    for path, _, given in items:
        key = str(path)
        if key in known:
            names[key] = known[key]
        elif given:
            name = safe_name(given)
            owner = taken.get(name.casefold())
            if owner is not None and owner != key:
                raise InputError(f"recording name {given!r} is given to both {owner} and {key}; "
                                 "make the 'recording' column unique")
            names[key] = name
            taken[name.casefold()] = key
    # the others: the shortest names that tell equal stems apart (`outputs.names`)
    rest = [path for path, _, _ in items if str(path) not in names]
    for path, name in zip(rest, unique_names(rest, taken)):
        names[str(path)] = name
    return [Recording(names[str(p)], str(p), meta) for p, meta, _ in items]


def resolve_recordings(inputs: Iterable[str | os.PathLike], known: dict[str, str] | None = None,
                       recursive: bool = False) -> tuple[list[Recording], list[tuple[str, str]]]:
    """Expand the inputs of a batch into named recordings.

    Args:
        inputs: video or image files, folders (their media files, sorted), `.txt` lists, and manifest `.csv` files.
            A file that does not exist is kept: the batch records it as failed, and the others go on.
        known: input path -> recording name already in the ledger; those names are kept.
        recursive: folders give the media files of their subfolders too.

    Returns:
        (recordings in input order without duplicates, [(input, one-line error)] for folders or lists that give
        nothing).
    """
    from ..sources import iter_inputs

    items: list[tuple[Path, dict, str | None]] = []
    errors: list[tuple[str, str]] = []
    for item in inputs:
        p = Path(item).expanduser()
        try:
            if p.suffix.lower() == ".csv" and p.is_file():
                items += read_manifest(p)
            elif p.is_dir() or (p.suffix.lower() == ".txt" and p.is_file()):
                items += [(q, {}, None) for q in iter_inputs([p], recursive=recursive)]
            else:
                items.append((p, {}, None))
        except InputError as e:
            errors.append((str(item), str(e)))
    seen: dict[str, tuple[Path, dict, str | None]] = {}
    for path, meta, name in items:
        path = Path(os.path.abspath(path))
        if str(path) in seen:
            if seen[str(path)][1] != meta:
                log.warning("%s: listed twice with different metadata; the first row is used", path)
            continue
        seen[str(path)] = (path, meta, name)
    return _assign_names(list(seen.values()), known or {}), errors
