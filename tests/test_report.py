"""Tests of libreface/report: the HTML report of a results CSV (`libreface report`, `--report`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from libreface.cli import main as cli_main  # noqa: E402
from libreface.errors import InputError  # noqa: E402
from libreface.report import make_report, read_results  # noqa: E402
from libreface.report import summaries  # noqa: E402
from libreface.extras import install_command  # noqa: E402
from libreface.report.figures import clock, decimate, tick_step  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.mp4"
AUS = ["AU01", "AU02", "AU04", "AU06", "AU12", "AU25", "AU45"]
EXPRS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]
FPS = 25.0


def _native_csv(path: Path, seconds: float = 120.0, persons: int = 2, seed: int = 3) -> pd.DataFrame:
    """A native CSV: `persons` faces per frame (person_id 0.., or -1 when persons == 1), frames 100-149 faceless,
    person 0 turned to yaw 45 degrees from 10 s to 12 s, AU45 blinking 5 times."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FPS)
    rows = []
    for f in range(n):
        t = f / FPS
        if 100 <= f < 150:
            rows.append({"frame": f, "face_id": -1, "person_id": None, "timestamp": t, "success": 0})
            continue
        for p in range(persons):
            r = {"frame": f, "face_id": p, "person_id": p if persons > 1 else -1, "timestamp": t,
                 "confidence": round(0.8 + 0.1 * rng.random(), 4), "success": 1, "box_x0": 1.0, "box_y0": 2.0,
                 "box_x1": 3.0, "box_y1": 4.0, "pose_pitch": 2.0, "pose_yaw": 45.0 if (p == 0 and 10 <= t < 12)
                 else 5.0, "pose_roll": 0.0}
            blink = any(abs(t - b) < 0.1 for b in (20, 30, 40, 50, 60))  # 5 frames each
            for au in AUS:
                r[f"{au}_intensity"] = round(float(rng.uniform(0, 5) * (p + 1) / persons), 4)
            r["AU45_intensity"] = 3.0 if blink else round(float(rng.uniform(0, 1)), 4)
            for au in AUS:
                r[f"{au}_presence"] = int(blink) if au == "AU45" else int(rng.random() < 0.3 + 0.2 * p)
            for au in AUS:
                r[f"{au}_probability"] = round(float(rng.random()), 4)
            e = rng.dirichlet(np.ones(len(EXPRS)))
            r.update({c: round(float(v), 4) for c, v in zip(EXPRS, e)})
            r["expression"] = EXPRS[int(np.argmax(e))]
            rows.append(r)
    df = pd.DataFrame(rows)
    cols = (["frame", "face_id", "person_id", "timestamp", "confidence", "success", "box_x0", "box_y0", "box_x1",
             "box_y1", "pose_pitch", "pose_yaw", "pose_roll"] + [f"{a}_intensity" for a in AUS]
            + [f"{a}_presence" for a in AUS] + [f"{a}_probability" for a in AUS] + EXPRS + ["expression"])
    df = df[cols]
    df["person_id"] = df["person_id"].astype("Int64")
    df.to_csv(path, index=False)
    return pd.read_csv(path)


@pytest.fixture(scope="module")
def two_persons(tmp_path_factory) -> tuple[Path, pd.DataFrame, str]:
    d = tmp_path_factory.mktemp("report")
    csv = d / "two.csv"
    df = _native_csv(csv)
    out = make_report(csv)
    return csv, df, out.read_text(encoding="utf-8")


def _au_row(html: str, section: str, au: str) -> list[str]:
    """The cells of an AU's table row in a person's section."""
    part = html[html.index(f'id="{section}"'):]
    part = part[:part.index("</section>")]
    m = re.search(rf"<tr><td>{au}</td>(.*?)</tr>", part)
    assert m, f"no table row for {au} in {section}"
    return [re.sub(r"<[^>]+>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", m.group(1))]


def test_report_is_one_self_contained_file(two_persons):
    csv, _, html = two_persons
    assert csv.with_suffix(".html").is_file()
    low = html.lower()
    for bad in ('src="http', "src='http", "<script", "<link", "@import", "url(http", "<img", "<iframe"):
        assert bad not in low, bad
    assert html.count("<svg") >= 7  # detection + per person: AU lanes, expressions, head pose
    assert not list(csv.parent.glob("*.partial")) and not list(csv.parent.glob("*.lock"))


def test_report_names_every_au_and_a_section_per_person(two_persons):
    _, _, html = two_persons
    for au in AUS:
        assert html.count(au) >= 4, au  # two tables and two AU plots
    assert 'id="person-0"' in html and 'id="person-1"' in html and "Person 1" in html
    assert "Everyone" not in html


def test_au_and_expression_tables_match_pandas(two_persons):
    _, df, html = two_persons
    for p in (0, 1):
        ok = df[(df["person_id"] == p) & (df["success"] == 1)]
        for au in AUS:
            cells = _au_row(html, f"person-{p}", au)
            x = ok[f"{au}_intensity"]
            assert cells[1] == f"{x.mean():.2f}"
            assert cells[2] == f"{x.quantile(0.9):.2f}"
            assert cells[3] == f"{100 * ok[f'{au}_presence'].mean():.1f}%"
        dom = ok[EXPRS].idxmax(axis=1).value_counts(normalize=True)
        res = read_results_cached(df)
        table = summaries.expression_table(res, [g for g in summaries.groups(res) if g.person_id == p][0])
        for c in EXPRS:
            assert table.loc[c, "pct_dominant"] == pytest.approx(100 * dom.get(c, 0.0))


def read_results_cached(df):
    from libreface.report import Results

    return Results(Path("x.csv"), "native", df.assign(person_id=df["person_id"].fillna(-1).astype(int),
                                                      face_id=df["face_id"].astype(int)),
                   AUS, AUS, EXPRS)


def test_time_axis_is_minutes_and_seconds(two_persons):
    assert [clock(s) for s in (0, 5, 75, 600, 3725)] == ["0:00", "0:05", "1:15", "10:00", "1:02:05"]
    assert tick_step(120, 6) == 30 and tick_step(3600, 6) == 600 and tick_step(6, 6) == 1
    _, _, html = two_persons
    for label in ("0:00", "0:30", "1:00", "1:30"):
        assert f">{label}<" in html, label  # SVG text, not paths
    assert "time (m:ss)" in html


def test_screen_time_detection_pose_segments_and_blinks(tmp_path):
    csv = tmp_path / "one.csv"
    _native_csv(csv, seconds=80, persons=1)
    res = read_results(csv)
    q = summaries.quality(res)
    assert q["frames"] == 2000 and q["frames_with_face"] == 1950
    assert q["pct_frames_with_face"] == pytest.approx(97.5)
    (g,) = summaries.groups(res)
    assert g.label == "Everyone"
    assert summaries.screen_time(res, g)["screen_time_s"] == pytest.approx(1950 / FPS)
    seg = summaries.pose_segments(res, g, 30, 0.5)
    assert len(seg) == 1
    assert seg.loc[0, "start_s"] == pytest.approx(10.0) and seg.loc[0, "end_s"] == pytest.approx(12.0)
    assert seg.loc[0, "max_abs_yaw"] == pytest.approx(45.0)
    b = summaries.blinks(res, g)
    assert b["count"] == 5
    assert b["per_minute"] == pytest.approx(5 / (1950 / FPS / 60))
    html = make_report(csv, tmp_path / "r.html").read_text()
    assert 'id="group-0"' in html and "Everyone" in html and "blinks per minute" in html
    assert ">0:10<" in html and ">0:12<" in html  # the segment's range in the quality table


@pytest.mark.parametrize("path", ["intensity", "occurrence"])
def test_blinks_have_the_duration_cap_with_or_without_au45_intensity(tmp_path, path):
    csv = tmp_path / "one.csv"
    df = _native_csv(csv, seconds=10, persons=1)
    t = df["timestamp"]
    closed = ((t >= 1.0) & (t < 3.0)) | ((t >= 7.0) & (t < 7.2))  # 2 s: eyes kept shut; 0.2 s: a blink
    df["AU45_intensity"] = np.where(closed, 3.5, 0.3)
    df["AU45_presence"] = closed.astype(int)
    df.loc[df["face_id"] < 0, ["AU45_intensity", "AU45_presence"]] = np.nan
    if path == "occurrence":
        df = df.drop(columns="AU45_intensity")
    df.to_csv(csv, index=False)
    res = read_results(csv)
    b = summaries.blinks(res, summaries.groups(res)[0])
    assert b["count"] == 1, b
    assert ("AU45_presence" in b["method"]) == (path == "occurrence") and "at most 0.5 s" in b["method"]


def test_decimate_bins_mean_and_max():
    t = np.arange(10.0)
    v = np.array([0, 1, 2, 3, np.nan, np.nan, 6, 7, 8, 9.0])
    c, mean, mx = decimate(t, v, 0, 10, bins=5)
    assert c.tolist() == [1, 3, 5, 7, 9]
    assert mean[:, 0].tolist()[:2] == [0.5, 2.5] and np.isnan(mean[2, 0]) and mx[4, 0] == 9


def test_openface_layout_is_mapped(tmp_path):
    csv = tmp_path / "of.csv"
    lines = ["frame, face_id, timestamp, confidence, success, pose_Rx, pose_Ry, pose_Rz, AU01_r, AU12_r, AU01_c, "
             "AU12_c, AU45_c"]
    for f in range(1, 101):
        if f <= 10:
            lines.append(f"{f}, 0, {(f - 1) / 25:g}, , 0, , , , , , , , ")
        else:
            lines.append(f"{f}, 0, {(f - 1) / 25:g}, 0.9, 1, 0.1, 0.7854, 0, 1.5, {f / 50:g}, 1, 0, {int(f % 20 == 0)}")
    csv.write_text("\n".join(lines) + "\n")
    res = read_results(csv)
    assert res.fmt == "openface" and res.au_intensity == ["AU01", "AU12"] and res.au_presence == ["AU01", "AU12", "AU45"]
    assert res.rows["frame"].min() == 0 and (res.rows["face_id"] == -1).sum() == 10
    assert res.rows["pose_yaw"].max() == pytest.approx(45.0, abs=0.01)
    html = make_report(csv).read_text()
    cells = _au_row(html, "group-0", "AU01")
    assert cells[1] == "1.50" and cells[3] == "100.0%"
    assert "AU45" in html and "openface" in html
    assert summaries.blinks(res, summaries.groups(res)[0])["count"] == 5  # frames 20, 40, 60, 80, 100


def test_bad_csv_is_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="bad.csv: not a libreface results CSV"):
        read_results(bad)
    assert cli_main(["report", str(bad)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "bad.csv" in err[0]
    assert cli_main(["report", str(tmp_path / "missing.csv")]) == 1


def test_report_command_and_provenance_from_a_batch_ledger(tmp_path):
    from libreface.report.command import batch_reports

    out = tmp_path / "study"
    (out / "csv").mkdir(parents=True)
    _native_csv(out / "csv" / "s01.csv", seconds=10, persons=1)
    (out / "ledger.csv").write_text("recording,path,status,model,model_sha256\n"
                                    f"s01,/videos/s01.mp4,done,au_test.v1,{'ab' * 32}\n")
    assert batch_reports(out, ["s01", "s02"], "au_test.v1", {"fmt": "native"}, quiet=True) == []
    html = (out / "reports" / "s01.html").read_text()
    assert "/videos/s01.mp4" in html and "ab" * 32 in html and "au_test.v1" in html
    assert not (out / "reports" / "s02.html").exists()
    # the standalone command finds the same ledger, and -o names the file
    assert cli_main(["report", str(out / "csv" / "s01.csv"), "-o", str(tmp_path / "r.html"), "--quiet"]) == 0
    assert "ab" * 32 in (tmp_path / "r.html").read_text()


def test_identity_sidecar_is_listed(tmp_path):
    csv = tmp_path / "rec.csv"
    _native_csv(csv, seconds=6, persons=2)
    csv.with_suffix(".summary.json").write_text(json.dumps({"identity": {"embedder": "dlib", "eps": 0.5,
                                                                         "persons": [{}, {}]}}))
    html = make_report(csv).read_text()
    assert "rec.summary.json" in html and "dlib" in html


_BLOCKER = """
import sys
class _NoMatplotlib:
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib'")
        return None
sys.meta_path.insert(0, _NoMatplotlib())
from libreface.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("extra", [[], ["EXAMPLE", "-o", "OUT", "--report"]])
def test_missing_matplotlib_is_one_line(tmp_path, extra):
    csv = tmp_path / "one.csv"
    _native_csv(csv, seconds=2, persons=1)
    argv = ["report", str(csv)] if not extra else [str(EXAMPLE), "-o", str(tmp_path / "a.csv"), "--report"]
    p = subprocess.run([sys.executable, "-c", _BLOCKER, *argv], capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    (line,) = p.stderr.strip().splitlines()  # the shared libreface.extras line, naming the extra to install
    assert line.startswith("libreface: ") and f"needs the report extra: {install_command('report')}" in line, line
    assert "matplotlib" in line and "Traceback" not in p.stderr
    assert not (tmp_path / "one.html").exists() and not (tmp_path / "a.csv").exists()  # refused before analysing


def test_report_flag_on_the_analyze_command(tmp_path):
    out = tmp_path / "astro.csv"
    assert cli_main([str(EXAMPLE), "-o", str(out), "--report", "--quiet"]) == 0
    html = (tmp_path / "astro.html").read_text()
    df = pd.read_csv(out)
    ok = df[df["success"] == 1]
    au = [c[:-len("_intensity")] for c in df.columns if c.endswith("_intensity")]
    assert au
    for a in au:
        assert _au_row(html, "group-0", a)[1] == f"{ok[f'{a}_intensity'].mean():.2f}"
    from libreface.models.registry import DEFAULT_MODEL, get_entry

    assert DEFAULT_MODEL in html and get_entry(DEFAULT_MODEL).sha256 in html
    assert str(EXAMPLE) in html


def test_study_page_has_one_row_per_recording_and_person(tmp_path):
    from libreface.report.command import batch_reports
    from libreface.report.study import make_study_report

    out = tmp_path / "study"
    (out / "csv").mkdir(parents=True)
    two = _native_csv(out / "csv" / "s01.csv", seconds=8, persons=2)
    _native_csv(out / "csv" / "s02.csv", seconds=8, persons=1, seed=4)
    (out / "ledger.csv").write_text("recording,path,status,participant\ns01,/v/s01.mp4,done,P07\n"
                                    "s02,/v/s02.mp4,done,P08\n")
    assert batch_reports(out, ["s01"], "m", {}, quiet=True) == []
    html = make_study_report(out).read_text()
    assert html.count("<tr><td>") >= 3 * 3  # three rows (s01 x 2 persons, s02 x all) in each of three tables
    assert "P07" in html and "P08" in html
    assert '<a href="s01.html">s01</a>' in html and '<a href="s02.html">' not in html  # only existing reports
    ok = two[(two["person_id"] == 1) & (two["success"] == 1)]
    want = f"{ok['AU12_intensity'].mean():.2f} / {100 * ok['AU12_presence'].mean():.1f}%"
    assert want in html
