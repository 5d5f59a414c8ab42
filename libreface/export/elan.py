"""Export step 3: segments -> an ELAN 3.0 annotation document (`.eaf`), linked to the recording by a relative path.

One time-aligned TIER per person and kind (`P0 expression`, `P0 AU12`, ...) on one LINGUISTIC_TYPE, with
the LOCALE, LANGUAGE and CONSTRAINT elements ELAN writes itself; times in integer milliseconds in one
TIME_ORDER whose slots increase with their ids. See http://www.mpi.nl/tools/elan/EAFv3.0.xsd.
"""

from __future__ import annotations

import mimetypes
import os
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterable

from .segments import Segment

EAF_SCHEMA = "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
LINGUISTIC_TYPE = "libreface"
LANGUAGE_ID = "und"  # ISO 639-3 "undetermined": the annotations are labels, not speech
CONSTRAINTS = {
    "Time_Subdivision": "Time subdivision of parent annotation's time interval, no time gaps allowed within this interval",
    "Symbolic_Subdivision": "Symbolic subdivision of a parent annotation. Annotations refering to the same parent are ordered",
    "Symbolic_Association": "1-1 association with a parent annotation",
    "Included_In": "Time alignable annotations within the parent annotation's time interval, gaps are allowed",
}
_MIME_FALLBACK = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".avi": "video/x-msvideo",
                  ".mkv": "video/x-matroska", ".webm": "video/webm", ".wav": "audio/x-wav", ".mpg": "video/mpeg"}


def tier_id(person: str, tier: str) -> str:
    """ELAN tier name of one person's tier, e.g. "P0 expression", "P0 AU12"."""
    return f"{person} {tier}"


def media_descriptor(media: Path, eaf_path: Path) -> dict[str, str]:
    """MEDIA_DESCRIPTOR attributes: absolute file:// URL, MIME type and the path relative to the `.eaf`'s folder."""
    media = Path(os.path.abspath(media))
    try:
        rel = os.path.relpath(media, Path(os.path.abspath(eaf_path)).parent)
    except ValueError:  # pragma: no cover - another drive on Windows: only the absolute URL works
        rel = None
    mime = _MIME_FALLBACK.get(media.suffix.lower()) or mimetypes.guess_type(media.name)[0] or "unknown"
    out = {"MEDIA_URL": media.as_uri(), "MIME_TYPE": mime}
    if rel is not None:
        rel = rel.replace(os.sep, "/")
        out["RELATIVE_MEDIA_URL"] = rel if rel.startswith("../") else "./" + rel
    return out


def build_eaf(segments: Iterable[Segment], tiers: list[tuple[str, str]], media: Path | None, eaf_path: Path,
              author: str = "libreface") -> ET.Element:
    """The ANNOTATION_DOCUMENT element.

    Args:
        segments: annotations; times in seconds, written as integer milliseconds (segments that round to zero
            length are left out).
        tiers: (person, tier) of every tier, in the order to write them (tiers without segments are kept).
        media: the recording the times refer to, or None (then the header has no MEDIA_DESCRIPTOR).
        eaf_path: where the document will be written (for the relative media path).
        author: the document's AUTHOR attribute.
    """
    by_tier: dict[str, list[tuple[int, int, str]]] = {tier_id(p, t): [] for p, t in tiers}
    for s in segments:
        on, off = int(round(s.onset_s * 1000)), int(round(s.offset_s * 1000))
        if off > on:
            by_tier.setdefault(tier_id(s.person, s.tier), []).append((on, off, s.label))
    times = sorted({ms for anns in by_tier.values() for on, off, _ in anns for ms in (on, off)})
    slot = {ms: f"ts{i}" for i, ms in enumerate(times, 1)}

    doc = ET.Element("ANNOTATION_DOCUMENT", {
        "AUTHOR": author, "DATE": datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds"),
        "FORMAT": "3.0", "VERSION": "3.0", "xmlns:xsi": XSI, "xsi:noNamespaceSchemaLocation": EAF_SCHEMA})
    header = ET.SubElement(doc, "HEADER", {"MEDIA_FILE": "", "TIME_UNITS": "milliseconds"})
    if media is not None:
        ET.SubElement(header, "MEDIA_DESCRIPTOR", media_descriptor(media, eaf_path))
    n_ann = sum(len(a) for a in by_tier.values())
    ET.SubElement(header, "PROPERTY", {"NAME": "lastUsedAnnotationId"}).text = str(n_ann)
    order = ET.SubElement(doc, "TIME_ORDER")
    for ms in times:
        ET.SubElement(order, "TIME_SLOT", {"TIME_SLOT_ID": slot[ms], "TIME_VALUE": str(ms)})
    aid = 0
    for name, anns in by_tier.items():
        tier = ET.SubElement(doc, "TIER", {"LINGUISTIC_TYPE_REF": LINGUISTIC_TYPE, "PARTICIPANT": name.split(" ")[0],
                                           "TIER_ID": name, "LANG_REF": LANGUAGE_ID})
        for on, off, label in sorted(anns):
            aid += 1
            ann = ET.SubElement(ET.SubElement(tier, "ANNOTATION"), "ALIGNABLE_ANNOTATION", {
                "ANNOTATION_ID": f"a{aid}", "TIME_SLOT_REF1": slot[on], "TIME_SLOT_REF2": slot[off]})
            ET.SubElement(ann, "ANNOTATION_VALUE").text = label
    ET.SubElement(doc, "LINGUISTIC_TYPE", {"GRAPHIC_REFERENCES": "false", "LINGUISTIC_TYPE_ID": LINGUISTIC_TYPE,
                                          "TIME_ALIGNABLE": "true"})
    ET.SubElement(doc, "LOCALE", {"COUNTRY_CODE": "US", "LANGUAGE_CODE": "en"})
    ET.SubElement(doc, "LANGUAGE", {"LANG_DEF": "http://cdb.iso.org/lg/CDB-00130975-001", "LANG_ID": LANGUAGE_ID,
                                    "LANG_LABEL": "undetermined (und)"})
    for stereotype, description in CONSTRAINTS.items():
        ET.SubElement(doc, "CONSTRAINT", {"DESCRIPTION": description, "STEREOTYPE": stereotype})
    ET.indent(doc)
    return doc


def eaf_bytes(doc: ET.Element) -> bytes:
    """The document as UTF-8 XML with its declaration."""
    return ET.tostring(doc, encoding="UTF-8", xml_declaration=True) + b"\n"
