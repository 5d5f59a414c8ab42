"""Output names for input files: one unique, file-system-safe name per recording, shared by `libreface` (one CSV per
input) and `libreface batch` (its ledger and `csv/<recording>.csv`), so `p01/session1.mp4` and `p02/session1.mp4`
never write the same file.

A name is the file's stem where that is unique among the inputs (case-insensitively, for macOS and Windows file
systems), else the shortest of `parent__stem`, `grandparent__parent__stem`, ... that tells the files apart.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["candidate_names", "safe_name", "unique_names"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str) -> str:
    """`text` with every run of characters outside `A-Z a-z 0-9 . _ -` replaced by `_` ("recording" if nothing is left)."""
    return _UNSAFE.sub("_", text).strip("._") or "recording"


def candidate_names(path: Path) -> Iterator[str]:
    """Names for `path`, shortest first: stem, parent__stem, grandparent__parent__stem, ..., then with the suffix,
    then with a hash of the full path."""
    stem = safe_name(path.stem)
    parents = [safe_name(p) for p in path.parent.parts if _UNSAFE.sub("", p).strip("._")]  # not "/", "..", "C:\\"
    yield stem
    for k in range(1, len(parents) + 1):
        yield "__".join(parents[-k:] + [stem])
    with_suffix = "__".join(parents + [stem]) + ("_" + safe_name(path.suffix) if path.suffix else "")
    yield with_suffix
    yield f"{with_suffix}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"


def unique_names(paths: Iterable[Path], taken: Iterable[str] = ()) -> list[str]:
    """One name per path (`paths` in order, without duplicates), unique case-insensitively among themselves and
    against `taken`: by groups of equal stems, the shortest level of `candidate_names` that is unique for the whole
    group (so names within a group have the same shape). Paths are used as given (make them absolute first for names
    that say which folder a file came from)."""
    paths = [Path(p) for p in paths]
    used = {t.casefold() for t in taken}
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(paths):
        groups.setdefault(safe_name(p.stem).casefold(), []).append(i)
    names: list[str] = [""] * len(paths)
    for group in groups.values():
        cands = [list(candidate_names(paths[i])) for i in group]
        for level in range(max(len(c) for c in cands)):
            chosen = [c[min(level, len(c) - 1)] for c in cands]
            folded = [n.casefold() for n in chosen]
            if len(set(folded)) == len(folded) and not any(f in used for f in folded):
                break
        for i, name in zip(group, chosen):
            names[i] = name
            used.add(name.casefold())
    return names
