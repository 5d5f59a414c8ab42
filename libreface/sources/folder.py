"""Frame sources, inputs: expand the files, folders and list files a user named into the media files to analyse."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..errors import InputError
from .base import IMAGE_SUFFIXES, VIDEO_SUFFIXES, _is_webcam_index, _one_line

LIST_SUFFIX = ".txt"  # a text file listing inputs, one path per line


def iter_inputs(inputs: Iterable[str | Path], recursive: bool = False) -> list[Path]:
    """Expand the inputs a user named into the media files to analyse, in order, without duplicates.

    Args:
        inputs: Files, folders, and list files. A folder gives its video and image files (VIDEO_SUFFIXES,
            IMAGE_SUFFIXES, any case; hidden files skipped), sorted by path. A `.txt` file lists inputs one per line,
            relative to the list's folder; blank lines and lines starting with # are ignored. Other files are kept
            as they are (their content decides how they are opened). A bare integer such as "0" that is not an
            existing file is kept too: `open_source` reads it as a webcam index.
        recursive: Also search the subfolders of folders.

    Returns:
        The files as Paths, in the order given (folders expanded in place).

    Raises:
        InputError: For a path that does not exist, a folder without media files, or an empty list file.
    """
    out: dict[Path, None] = {}  # ordered set
    for item in inputs:
        for path in _expand(Path(item), recursive, listed_in=None):
            out.setdefault(path, None)
    return list(out)


def _expand(path: Path, recursive: bool, listed_in: str | None) -> list[Path]:
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        suffixes = VIDEO_SUFFIXES + IMAGE_SUFFIXES
        found = sorted(p for p in path.glob(pattern) if p.suffix.lower() in suffixes and p.is_file()
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))  # skip hidden
        if not found:
            where = "" if recursive else (" (subfolders are not searched: --recursive on the command line, "
                                          "recursive=True in Python)")
            raise InputError(f"{path}: no video or image files found{where}; expected files ending in "
                             f"{' '.join(suffixes)}")
        return found
    if path.is_file():
        return _read_list(path, recursive) if path.suffix.lower() == LIST_SUFFIX and listed_in is None else [path]
    if listed_in is None and _is_webcam_index(path):
        return [path]
    raise InputError(f"{path}: not found; check the path{listed_in or ''}")


def _read_list(list_path: Path, recursive: bool) -> list[Path]:
    """The inputs listed in a text file, one per line, relative to the list's folder."""
    try:
        lines = list_path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{list_path}: cannot read the list of inputs ({_one_line(str(e))}); "
                         "expected a UTF-8 text file") from e
    out: list[Path] = []
    for number, line in enumerate(lines, start=1):
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        path = Path(entry).expanduser()
        path = path if path.is_absolute() else list_path.parent / path
        out += _expand(path, recursive, listed_in=f" (listed in {list_path}, line {number}, relative to its folder)")
    if not out:
        raise InputError(f"{list_path}: the list of inputs is empty; expected one video, image or folder per line")
    return out
