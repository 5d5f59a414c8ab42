"""Tests for libreface.export: segments with hysteresis, the ELAN 3.0 .eaf (read back with pympi) and the events CSV."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from libreface.cli import main
from libreface.export import SegmentOptions, hysteresis, read_table, segments
from libreface.export.command import export
from libreface.outputs.reader import frame_ends

EXPR = ["neutral", "happiness", "surprise", "sadness"]
STEP = 0.04  # 25 fps
N = 60


def _timestamps() -> np.ndarray:
    t = np.arange(N) * STEP
    t[45:] += 0.5  # a jump in the real timestamps (variable frame rate): times must follow it, not frame * STEP
    return np.round(t, 6)


def _probs(label: str) -> list[float]:
    p = [0.05] * len(EXPR)
    p[EXPR.index(label)] = 0.85
    return p


def _native_csv(path: Path) -> Path:
    """Person 0: happiness on frames 0-29 with a one-frame surprise flicker at 10, sadness on 30-59.
    AU12 active on 5-20 and 22-25 (a one-frame gap) and on 40 alone (too short). Person 1 on frames 0-14 only."""
    t = _timestamps()
    rows = []
    for i in range(N):
        label = "surprise" if i == 10 else ("happiness" if i < 30 else "sadness")
        au12 = int(5 <= i <= 20 or 22 <= i <= 25 or i == 40)
        rows.append(dict(frame=i, face_id=0, person_id=0, timestamp=t[i], confidence=0.9, success=1,
                         AU12_intensity=2.0 * au12, AU06_presence=0, AU12_presence=au12, AU06_probability=0.1,
                         AU12_probability=0.9 if au12 else 0.1, **dict(zip(EXPR, _probs(label))), expression=label))
        if i < 15:
            rows.append(dict(frame=i, face_id=1, person_id=1, timestamp=t[i], confidence=0.8, success=1,
                             AU12_intensity=0.0, AU06_presence=1, AU12_presence=0, AU06_probability=0.8,
                             AU12_probability=0.1, **dict(zip(EXPR, _probs("neutral"))), expression="neutral"))
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _openface_csv(path: Path) -> Path:
    t = _timestamps()
    lines = ["frame, face_id, timestamp, confidence, success, pose_Rx, pose_Ry, pose_Rz, AU12_r, AU12_c"]
    for i in range(N):
        au = int(10 <= i <= 19)
        lines.append(f"{i + 1}, 0, {t[i]:.3f}, 0.98, 1, 0.0, 0.0, 0.0, {2.0 * au:.2f}, {au}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _eaf_annotations(path: Path) -> dict[str, list[tuple[int, int, str]]]:
    pympi = pytest.importorskip("pympi")
    eaf = pympi.Elan.Eaf(str(path))
    return {tier: sorted(eaf.get_annotation_data_for_tier(tier)) for tier in eaf.get_tier_names()}


# --- hysteresis ----------------------------------------------------------------------------------------------------

def test_one_frame_flicker_does_not_split():
    probs = np.array([_probs("happiness")] * 10 + [_probs("surprise")] + [_probs("happiness")] * 10)
    state = hysteresis(probs, np.arange(21) * STEP, margin=0.1, min_frames=3)
    assert set(state.tolist()) == {EXPR.index("happiness")}


def test_sustained_change_switches_at_the_first_frame_of_the_run():
    probs = np.array([_probs("happiness")] * 10 + [_probs("sadness")] * 5)
    state = hysteresis(probs, np.arange(15) * STEP, margin=0.1, min_frames=3)
    assert state.tolist() == [1] * 10 + [3] * 5  # dated back to frame 10, not frame 12 where it was confirmed


def test_small_lead_does_not_switch_and_min_switch_seconds_count():
    close = [0.05, 0.44, 0.46, 0.05]  # surprise leads by 0.02 < margin
    probs = np.array([_probs("happiness")] * 3 + [close] * 10)
    assert set(hysteresis(probs, np.arange(13) * STEP, margin=0.1, min_frames=2).tolist()) == {1}
    probs = np.array([_probs("happiness")] * 3 + [_probs("sadness")] * 4)
    t = np.arange(7) * STEP
    assert hysteresis(probs, t, min_frames=2, min_switch_s=1.0).tolist() == [1] * 7  # 4 frames = 0.12 s < 1 s
    assert hysteresis(probs, t, min_frames=2, min_switch_s=0.1).tolist() == [1] * 3 + [3] * 4


def test_missing_frames_keep_the_class_and_nan_before_first_sighting():
    probs = np.array([[np.nan] * 4, _probs("happiness"), [np.nan] * 4, _probs("happiness")])
    assert hysteresis(probs, np.arange(4) * STEP).tolist() == [-1, 1, 1, 1]


def test_frame_ends_use_next_timestamp_then_median_interval():
    assert frame_ends(np.array([0.0, 0.1, 0.2, 0.5])) == pytest.approx([0.1, 0.2, 0.5, 0.6])


# --- segments from a CSV -------------------------------------------------------------------------------------------

def test_segments_from_native_csv(tmp_path):
    table = read_table(_native_csv(tmp_path / "rec.csv"))
    assert table.fmt == "native" and table.expressions == EXPR and table.aus == ["AU06", "AU12"]
    t, ends = _timestamps(), frame_ends(_timestamps())
    got = [(s.person, s.tier, s.label, s.onset_s, s.offset_s) for s in segments(table)]
    assert got == [
        ("P0", "expression", "happiness", t[0], t[30]),
        ("P0", "expression", "sadness", t[30], ends[-1]),
        ("P0", "AU12", "AU12", t[5], t[26]),  # the one-frame gap is merged; frame 40 alone is too short
        ("P1", "expression", "neutral", t[0], t[15]),
        ("P1", "AU06", "AU06", t[0], t[15]),
    ]
    longer = segments(table, SegmentOptions(min_duration_s=1.5))  # happiness (1.2 s) joins sadness's neighbour
    assert [s.label for s in longer if s.person == "P0" and s.tier == "expression"] == ["sadness"]


# --- the .eaf -------------------------------------------------------------------------------------------------------

def test_eaf_reads_back_with_pympi_and_matches_segments(tmp_path):
    (tmp_path / "out").mkdir()
    csv = _native_csv(tmp_path / "out" / "rec.csv")
    media = tmp_path / "media" / "rec.mp4"
    media.parent.mkdir()
    media.write_bytes(b"not a real video")
    eaf, events = tmp_path / "out" / "rec.eaf", tmp_path / "out" / "rec.events.csv"
    assert main(["elan", str(csv), "-o", str(eaf), "--events", str(events), "--media", str(media)]) == 0

    expected = segments(read_table(csv))
    anns = _eaf_annotations(eaf)
    assert sorted(anns) == sorted(f"P{p} {t}" for p in (0, 1) for t in ("expression", "AU06", "AU12"))
    for tier, values in anns.items():
        person, kind = tier.split(" ")
        want = [(round(s.onset_s * 1000), round(s.offset_s * 1000), s.label)
                for s in expected if s.person == person and s.tier == kind]
        assert values == want, tier
    assert anns["P0 expression"] == [(0, 1200, "happiness"), (1200, 2900, "sadness")]  # 59 * 0.04 + 0.5 s jump + one interval

    root = ET.parse(eaf).getroot()  # well-formed, with the header ELAN requires
    assert root.tag == "ANNOTATION_DOCUMENT" and root.get("FORMAT") == "3.0" and root.get("VERSION") == "3.0"
    assert root.get("{http://www.w3.org/2001/XMLSchema-instance}noNamespaceSchemaLocation") == "http://www.mpi.nl/tools/elan/EAFv3.0.xsd"
    assert [c.tag for c in root][:2] == ["HEADER", "TIME_ORDER"]
    header = root.find("HEADER")
    assert header.get("TIME_UNITS") == "milliseconds" and header.get("MEDIA_FILE") == ""
    md = header.find("MEDIA_DESCRIPTOR")
    assert md.get("MEDIA_URL") == media.resolve().as_uri() and md.get("RELATIVE_MEDIA_URL") == "../media/rec.mp4"
    slots = root.find("TIME_ORDER").findall("TIME_SLOT")
    values = [int(s.get("TIME_VALUE")) for s in slots]
    assert values == sorted(set(values)) and [s.get("TIME_SLOT_ID") for s in slots] == [f"ts{i}" for i in range(1, len(slots) + 1)]
    types = {lt.get("LINGUISTIC_TYPE_ID") for lt in root.findall("LINGUISTIC_TYPE")}
    assert all(t.get("LINGUISTIC_TYPE_REF") in types for t in root.findall("TIER"))
    assert root.find("LANGUAGE") is not None and root.find("LOCALE") is not None

    ev = pd.read_csv(events)
    assert list(ev.columns) == ["person", "tier", "label", "onset_s", "offset_s"]
    assert len(ev) == len(expected) and ev["onset_s"].tolist() == pytest.approx([round(s.onset_s, 3) for s in expected])


def test_openface_csv_gives_au_tiers_only(tmp_path):
    csv = _openface_csv(tmp_path / "of.csv")
    export(csv, tmp_path / "of.eaf", None)
    anns = _eaf_annotations(tmp_path / "of.eaf")
    t = _timestamps()
    assert anns == {"P0 AU12": [(round(t[10] * 1000), round(t[20] * 1000), "AU12")]}
    md = ET.parse(tmp_path / "of.eaf").getroot().find("HEADER/MEDIA_DESCRIPTOR")
    assert md is None  # no recording known: the header says nothing rather than something wrong


def test_media_defaults_to_the_video_next_to_the_csv(tmp_path):
    csv = _native_csv(tmp_path / "rec.csv")
    (tmp_path / "rec.mp4").write_bytes(b"x")
    export(csv, tmp_path / "rec.eaf", None)
    md = ET.parse(tmp_path / "rec.eaf").getroot().find("HEADER/MEDIA_DESCRIPTOR")
    assert md.get("RELATIVE_MEDIA_URL") == "./rec.mp4"


def _batch_folder(tmp_path: Path, video: Path) -> Path:
    """OUTDIR/csv/rec.csv with OUTDIR/ledger.csv (the batch ledger's own writer) naming `video` as its source."""
    from libreface.batch.ledger import _write_view
    from libreface.batch.records import CSV_DIR, LEDGER_VIEW

    outdir = tmp_path / "study"
    (outdir / CSV_DIR).mkdir(parents=True)
    _write_view(outdir / LEDGER_VIEW, [{"recording": "rec", "path": str(video), "status": "done"}])
    return _native_csv(outdir / CSV_DIR / "rec.csv")


def test_media_defaults_to_the_recording_the_batch_ledger_names(tmp_path):
    video = tmp_path / "videos" / "session 1.mp4"
    video.parent.mkdir()
    video.write_bytes(b"x")
    csv = _batch_folder(tmp_path, video)
    lines = export(csv, csv.with_suffix(".eaf"), None)
    md = ET.parse(csv.with_suffix(".eaf")).getroot().find("HEADER/MEDIA_DESCRIPTOR")
    assert md.get("MEDIA_URL") == video.resolve().as_uri()
    assert md.get("RELATIVE_MEDIA_URL") == "../../videos/session 1.mp4"
    assert lines == [f"{csv.with_suffix('.eaf')}: 5 segments on 6 tiers, linked to {video}"]


def test_a_ledger_path_that_no_longer_exists_is_not_linked(tmp_path, capsys):
    gone = tmp_path / "moved" / "rec.mp4"
    csv = _batch_folder(tmp_path, gone)
    assert main(["elan", str(csv)]) == 0
    assert ET.parse(csv.with_suffix(".eaf")).getroot().find("HEADER/MEDIA_DESCRIPTOR") is None
    (warning,) = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert str(csv) in warning and str(gone) in warning and "does not exist" in warning
    assert warning.endswith("pass --media VIDEO")


def test_no_recording_found_is_one_warning_line_naming_the_csv(tmp_path, capsys):
    csv = _native_csv(tmp_path / "rec.csv")
    (tmp_path / "rec.summary.json").write_text('{"source": "rec.mp4"}')  # no sidecar records the source: ignored
    (tmp_path / "other.mp4").write_bytes(b"x")  # not the CSV's name
    assert main(["elan", str(csv)]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err == [f"libreface: {csv.with_suffix('.eaf')}: 5 segments on 6 tiers, not linked to a recording",
                   f"libreface: warning: {csv}: no recording to link: the CSV does not record its source video and "
                   f"no rec.<video> is next to it; pass --media VIDEO"]
    assert ET.parse(csv.with_suffix(".eaf")).getroot().find("HEADER/MEDIA_DESCRIPTOR") is None
    from libreface.export.command import build_parser

    help_text = " ".join(build_parser().format_help().split())
    assert "--media VIDEO" in help_text and "does not record its source video" in help_text


def test_bad_input_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["elan", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0] and "not a libreface results CSV" in err[0]
