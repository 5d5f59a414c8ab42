"""`libreface batch` and `libreface collect`: many recordings, a ledger, resuming, worker faults, one dataset.

Every batch runs on small clips cut from the bundled example (20 frames, 160x120), with one ONNX thread per worker so
that each CSV can be compared byte for byte with the one `Analyzer.analyze_to_files` writes directly. Dask runs on a
LocalCluster bound to 127.0.0.1. Each test is bounded by an alarm.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from libreface.batch import BatchSettings, read_ledger, read_manifest, resolve_recordings, run_batch
from libreface.batch.ledger import Ledger
from libreface.errors import InputError, OutputError

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.mp4"
ONE_THREAD = BatchSettings(threads=1)

class _Any:
    def __eq__(self, other) -> bool:
        return True


ANY = _Any()  # matches anything (an error message checked elsewhere)

needs_dask = pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                                reason="the dask extra is not installed: pip install 'libreface-cpu[dask]'")


@pytest.fixture(autouse=True)
def _deadline():
    """Fail (rather than hang) a test that runs for more than 150 s."""
    if not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum, frame):
        raise TimeoutError("test_batch: the test ran for more than 150 s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(150)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _cut(dst: Path, start: int, n: int = 20, size: tuple[int, int] = (160, 120)) -> Path:
    """Frames [start, start + n) of the example, resized, as an mpeg4 .mp4 at 25 fps."""
    import av

    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(EXAMPLE)) as src, av.open(str(dst), "w") as out:
        stream = out.add_stream("mpeg4", rate=25)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.max_b_frames = 0
        for i, frame in enumerate(src.decode(video=0)):
            if i >= start + n:
                break
            if i >= start:
                out.mux(stream.encode(av.VideoFrame.from_image(frame.to_image().resize(size))))
        out.mux(stream.encode())
    return dst


@pytest.fixture(scope="module")
def model(shipped_model) -> str:
    return shipped_model


@pytest.fixture(scope="module")
def clips(tmp_path_factory, model) -> SimpleNamespace:
    """Four clips (two share the stem s01, in different folders), a corrupt one, a manifest, and reference CSVs."""
    from libreface.pipeline import Analyzer, AnalyzerOptions

    d = tmp_path_factory.mktemp("clips")
    c = SimpleNamespace(dir=d)
    c.good = [_cut(d / "site_a" / "s01.mp4", 0), _cut(d / "site_b" / "s01.mp4", 20), _cut(d / "s02.mp4", 40),
              _cut(d / "s03.mp4", 60)]
    c.broken = d / "broken.mp4"
    c.broken.write_bytes(b"this is not a video, only some text\n" * 10)
    c.manifest = d / "manifest.csv"
    c.manifest.write_text("path,participant,session\n"
                          "site_a/s01.mp4,P01,1\nsite_b/s01.mp4,P02,1\ns02.mp4,P03,2\ns03.mp4,P04,2\n"
                          "broken.mp4,P05,1\n")
    c.meta = {str(p): (f"P0{i + 1}", "1" if i < 2 else "2") for i, p in enumerate(c.good)}
    c.reference = {}
    with Analyzer(AnalyzerOptions(threads=1)) as analyzer:
        for i, p in enumerate(c.good):
            ref = d / "reference" / f"{i}.csv"
            analyzer.analyze_to_files(p, ref)
            c.reference[str(p)] = ref
    return c


def _assert_outputs_match_reference(outdir: Path, clips: SimpleNamespace, ledger: pd.DataFrame | None = None):
    ledger = read_ledger(outdir) if ledger is None else ledger
    by_path = ledger.set_index("path")
    for p in clips.good:
        rec = by_path.loc[str(p)]
        assert rec["status"] == "done", rec.to_dict()
        got = (outdir / rec["csv"]).read_bytes()
        assert got == clips.reference[str(p)].read_bytes(), f"{rec['recording']}: differs from the direct analysis"
    assert not list((outdir / "csv").glob("*.partial"))


# --- inputs, names, ledger (no model needed) -------------------------------------------------------------------------


def test_duplicate_stems_get_distinct_names_that_stay_fixed(tmp_path):
    paths = [tmp_path / "site_a" / "s01.mp4", tmp_path / "site_b" / "s01.mp4", tmp_path / "s02.mp4",
             tmp_path / "site_a" / "S02.mov"]
    recs, errors = resolve_recordings(paths)
    names = [r.name for r in recs]
    assert errors == []
    assert names[:2] == ["site_a__s01", "site_b__s01"]
    assert len({n.casefold() for n in names}) == 4  # also unique on a case-insensitive file system
    # the names already in the ledger are kept, whatever else comes along later
    again, _ = resolve_recordings([tmp_path / "site_c" / "s01.mp4", *paths],
                                  known={str(p): n for p, n in zip(paths, names)})
    assert [r.name for r in again][1:] == names and again[0].name not in names


def test_recursive_folders_give_their_subfolders_files_under_distinct_names(tmp_path):
    for rel in ("p01/session1.mp4", "p02/session1.mp4", "p02/notes.txt", "p02/.hidden/session1.mp4", "top.jpg"):
        (tmp_path / "study" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "study" / rel).write_bytes(b"x")
    flat, _ = resolve_recordings([tmp_path / "study"])
    assert [r.name for r in flat] == ["top"]
    deep, errors = resolve_recordings([tmp_path / "study"], recursive=True)
    assert errors == [] and [r.name for r in deep] == ["p01__session1", "p02__session1", "top"]


def test_a_manifest_carries_its_columns_as_metadata_and_resolves_paths_from_its_folder(tmp_path):
    (tmp_path / "m.csv").write_text("path,participant,session,recording\nvideos/x.mp4,P01,2,interview_1\n")
    [(path, meta, name)] = read_manifest(tmp_path / "m.csv")
    assert path == tmp_path / "videos" / "x.mp4"
    assert meta == {"participant": "P01", "session": "2"} and name == "interview_1"


@pytest.mark.parametrize("text, message", [
    ("file,participant\nx.mp4,P01\n", "no 'path' column"),
    ("path,participant\n,P01\n", "line 2 has an empty 'path'"),
    ("path,status\nx.mp4,ok\n", "clash with columns libreface writes"),
    ("path,participant\n", "lists no recordings"),
])
def test_a_bad_manifest_is_one_line_naming_it(tmp_path, text, message):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(InputError, match=message) as err:
        read_manifest(tmp_path / "m.csv")
    assert "m.csv" in str(err.value) and "\n" not in str(err.value)


def test_a_torn_last_ledger_line_is_dropped_and_the_next_record_starts_on_its_own_line(tmp_path):
    good = {"type": "recording", "recording": "a", "path": "/x/a.mp4", "status": "done"}
    (tmp_path / "ledger.jsonl").write_text(json.dumps(good) + "\n" + '{"type": "recording", "recording": "b", "sta')
    ledger = Ledger(tmp_path)
    try:
        assert list(ledger.state) == ["a"]
        ledger.update("b", path="/x/b.mp4", status="failed", error="boom")
    finally:
        ledger.close()
    df = read_ledger(tmp_path)
    assert df.set_index("recording")["status"].to_dict() == {"a": "done", "b": "failed"}


def test_a_second_batch_on_the_same_folder_is_refused(tmp_path):
    first = Ledger(tmp_path)
    try:
        with pytest.raises(OutputError, match=rf"another libreface batch is writing it \(pid {os.getpid()} on "):
            Ledger(tmp_path)
    finally:
        first.close()
    assert not (tmp_path / ".lock").exists()  # removed when the batch ends
    Ledger(tmp_path).close()  # released with the first


_HOLD_LEDGER = """
import sys, time
from pathlib import Path
from libreface.batch.ledger import Ledger
ledger = Ledger(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_batch_process_is_refused_at_once_and_a_killed_ones_lock_is_taken_over(tmp_path):
    out, video = tmp_path / "out", tmp_path / "rec.mp4"
    out.mkdir()
    video.write_bytes(b"not analysed: the batch must stop at the lock")
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LEDGER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        second = subprocess.run([sys.executable, "-m", "libreface", "batch", str(video), "-o", str(out), "--quiet"],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"another libreface batch is writing it (pid {holder.pid} on " in lines[0], lines
        assert not (out / "csv" / "rec.csv").exists() and not (out / "csv" / "rec.csv.partial").exists()
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the lock file stays behind
        holder.wait()
    assert (out / ".lock").read_text().startswith(f"pid {holder.pid} ")  # stale file, but its flock is gone
    ledger = Ledger(out)  # taken over
    try:
        assert (out / ".lock").read_text().startswith(f"pid {os.getpid()} ")
    finally:
        ledger.close()


def test_dask_options_without_dask_are_one_line(monkeypatch, tmp_path):
    from libreface.batch import batch_command

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed -> ImportError
    with pytest.raises(ImportError, match=r"pip install 'libreface-cpu\[dask\]'"):
        run_batch([tmp_path], tmp_path / "out", dask_local=2)
    assert batch_command([str(tmp_path), "-o", str(tmp_path / "out"), "--dask-local", "2", "--quiet"]) == 1


# --- local worker processes ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_batch(clips, tmp_path_factory) -> SimpleNamespace:
    """The manifest (four clips, one corrupt file) and a missing file, analysed by 2 local worker processes."""
    out = tmp_path_factory.mktemp("local") / "study"
    missing = clips.dir / "gone.mp4"
    report = run_batch([clips.manifest, missing], out, ONE_THREAD, jobs=2)
    return SimpleNamespace(out=out, report=report, ledger=read_ledger(out), missing=missing)


def test_local_jobs_write_one_csv_per_recording_equal_to_the_direct_analysis(local_batch, clips):
    _assert_outputs_match_reference(local_batch.out, clips, local_batch.ledger)
    ledger = local_batch.ledger.set_index("path")
    assert ledger.loc[str(clips.good[0]), "recording"] == "site_a__s01"
    assert ledger.loc[str(clips.good[1]), "recording"] == "site_b__s01"
    done = ledger[ledger["status"] == "done"]
    assert (done["frames"] == 20).all() and (done["attempts"] == 1).all()
    assert done["duration_s"].astype(float).round(2).eq(0.8).all()
    assert done["model_sha256"].str.len().eq(64).all() and done["libreface_version"].notna().all()
    assert done[["participant", "session"]].apply(tuple, axis=1).to_dict() == {
        p: clips.meta[p] for p in done.index}
    assert (local_batch.out / "ledger.csv").is_file()
    assert not list((local_batch.out / ".work").glob("*/*"))  # attempts are cleaned up


def test_a_corrupt_or_missing_file_is_failed_in_the_ledger_and_the_others_go_on(local_batch, clips):
    ledger = local_batch.ledger.set_index("path")
    broken = ledger.loc[str(clips.broken)]
    assert broken["status"] == "failed" and "broken.mp4" in broken["error"] and "not a video" in broken["error"]
    assert "\n" not in broken["error"]
    gone = ledger.loc[str(local_batch.missing)]
    assert gone["status"] == "failed" and "not found" in gone["error"]
    assert len(local_batch.report.done) == 4 and len(local_batch.report.failed) == 2
    assert not (local_batch.out / "csv" / "broken.csv").exists()


def test_rerunning_skips_what_is_done_redoes_what_failed_and_redoes_all_when_settings_change(local_batch, clips):
    from libreface.batch import batch_command

    out = local_batch.out
    csvs = sorted((out / "csv").glob("*.csv"))
    mtimes = {p: p.stat().st_mtime_ns for p in csvs}
    args = [str(clips.manifest), "-o", str(out), "--jobs", "1", "--threads", "1", "--quiet"]
    assert batch_command(args) == 1  # the corrupt file fails again
    ledger = read_ledger(out).set_index("path")
    assert {p: p.stat().st_mtime_ns for p in csvs} == mtimes
    assert set(ledger.loc[[str(p) for p in clips.good], "action"]) == {"skipped"}
    assert ledger.loc[str(clips.broken), "action"] == "failed"
    # another --every is another output: the recording is analysed again
    assert batch_command([str(clips.good[2]), "-o", str(out), "--every", "2", "--threads", "1", "--quiet"]) == 0
    ledger = read_ledger(out).set_index("path")
    assert ledger.loc[str(clips.good[2]), "action"] == "analysed" and ledger.loc[str(clips.good[2]), "frames"] == 10
    assert ledger.loc[str(clips.good[2]), "participant"] == "P03"  # metadata kept from the manifest run


# --- collect ---------------------------------------------------------------------------------------------------------


def test_collect_gives_back_every_csv_row_with_its_metadata(clips, tmp_path_factory):
    from libreface.collect import collect

    out = tmp_path_factory.mktemp("collect") / "study"
    run_batch([clips.manifest], out, ONE_THREAD, jobs=2)
    report = collect(out, out / "study.parquet", chunk_rows=7)  # several chunks per recording
    ledger = read_ledger(out)
    done = ledger[ledger["status"] == "done"]
    assert sorted(report.recordings) == sorted(done["recording"]) and report.missing == [("broken", "failed", ANY)]

    data = pd.read_parquet(out / "study.parquet")
    assert len(data) == report.rows == 80
    for rec in done.to_dict("records"):
        part = data[data["recording"] == rec["recording"]].reset_index(drop=True)
        csv = pd.read_csv(out / rec["csv"])
        assert (part["participant"] == rec["participant"]).all() and (part["session"] == rec["session"]).all()
        got = part[list(csv.columns)]
        pd.testing.assert_frame_equal(got, csv, check_dtype=False)
        assert part["frame"].dtype == "int64" and part["success"].dtype == "int64"

    summary = pd.read_csv(out / "summary.csv").set_index("recording")
    assert summary.loc["broken", "status"] == "failed" and pd.isna(summary.loc["broken", "frames"])
    for rec in done.to_dict("records"):
        csv = pd.read_csv(out / rec["csv"])
        faces = csv[csv["success"] == 1]
        row = summary.loc[rec["recording"]]
        assert row["frames"] == csv["frame"].nunique() == 20
        assert row["pct_frames_with_face"] == pytest.approx(100 * faces["frame"].nunique() / 20)
        assert row["AU12_intensity_mean"] == pytest.approx(faces["AU12_intensity"].mean(), rel=1e-5)
        assert row["AU12_intensity_p90"] == pytest.approx(faces["AU12_intensity"].quantile(0.9), rel=1e-5)
        assert row["happiness_p50"] == pytest.approx(faces["happiness"].median(), rel=1e-5)
        assert row["participant"] == rec["participant"]
    assert pd.read_parquet(out / "summary.parquet").shape == (len(summary), summary.shape[1] + 1)  # + "recording"


# --- Dask ------------------------------------------------------------------------------------------------------------


@needs_dask
def test_a_two_worker_local_cluster_batch_completes_and_reports_the_corrupt_file(clips, tmp_path):
    from libreface.batch import batch_command

    out = tmp_path / "study"
    rc = batch_command([str(clips.manifest), "-o", str(out), "--dask-local", "2", "--threads", "1", "--quiet"])
    assert rc == 1
    ledger = read_ledger(out)
    _assert_outputs_match_reference(out, clips, ledger)
    assert len(set(ledger.loc[ledger["status"] == "done", "worker"])) == 2  # both workers took part
    broken = ledger.set_index("path").loc[str(clips.broken)]
    assert broken["status"] == "failed" and "broken.mp4" in broken["error"] and broken["attempts"] == 1


@pytest.fixture(scope="module")
def long_clips(tmp_path_factory, model) -> SimpleNamespace:
    """Three 40-frame clips (long enough to be killed in the middle of) and their reference CSVs."""
    from libreface.pipeline import Analyzer, AnalyzerOptions

    d = tmp_path_factory.mktemp("long")
    c = SimpleNamespace(paths=[_cut(d / f"k{i}.mp4", 20 * i, n=40) for i in range(3)], reference={})
    with Analyzer(AnalyzerOptions(threads=1)) as analyzer:
        for p in c.paths:
            c.reference[p.stem] = d / f"{p.stem}.reference.csv"
            analyzer.analyze_to_files(p, c.reference[p.stem])
    return c


def _kill_a_worker_mid_file(out: Path, ours, killed: dict, timeout_s: float = 90) -> None:
    """Wait until a worker is writing a recording's rows, then SIGKILL it (only if `ours(pid)`: a process this test
    started). The attempt's marker names its worker; its `.partial` CSV exists while frames are being analysed."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for marker in (out / ".work").glob("*/attempt-*"):
            token = marker.name.removeprefix("attempt-")
            try:
                pid = int(marker.read_text().rsplit(":", 1)[1])
            except (OSError, ValueError, IndexError):
                continue  # being written
            if ours(pid) and (marker.parent / f"{token}.csv.partial").exists():
                killed.update(recording=marker.parent.name, pid=pid)
                os.kill(pid, signal.SIGKILL)
                return
        time.sleep(0.01)


def _assert_complete_after_a_kill(out: Path, report, long_clips: SimpleNamespace, killed: dict) -> None:
    assert killed, "no worker was killed"
    assert report.ok and sorted(report.done) == ["k0", "k1", "k2"]
    ledger = read_ledger(out).set_index("recording")
    assert ledger.loc[killed["recording"], "attempts"] == 2
    assert (ledger["status"] == "done").all() and (ledger["frames"] == 40).all()
    for name, ref in long_clips.reference.items():
        assert (out / "csv" / f"{name}.csv").read_bytes() == ref.read_bytes(), name
    assert not list((out / ".work").glob("*/*"))


@needs_dask
def test_killing_a_dask_worker_in_the_middle_of_a_file_loses_nothing(long_clips, tmp_path):
    from distributed import Client, LocalCluster

    out = tmp_path / "study"
    killed: dict = {}
    loopback = {"host": "127.0.0.1", "scheduler_port": 0, "dashboard_address": "127.0.0.1:0"}
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, silence_logs=logging.ERROR, **loopback)
    with cluster, Client(cluster) as client:
        pids = set(client.run(os.getpid).values())
        killer = threading.Thread(target=_kill_a_worker_mid_file, args=(out, pids.__contains__, killed), daemon=True)
        killer.start()
        report = run_batch(long_clips.paths, out, ONE_THREAD, scheduler=cluster.scheduler_address, retries=2)
        killer.join(timeout=5)
    _assert_complete_after_a_kill(out, report, long_clips, killed)


def test_a_local_worker_process_that_dies_is_replaced_and_its_recording_redone(long_clips, tmp_path):
    import multiprocessing as mp

    out = tmp_path / "study"
    killed: dict = {}

    def ours(pid: int) -> bool:
        return pid in {p.pid for p in mp.active_children()}

    killer = threading.Thread(target=_kill_a_worker_mid_file, args=(out, ours, killed), daemon=True)
    killer.start()
    report = run_batch(long_clips.paths, out, ONE_THREAD, jobs=2, retries=2)
    killer.join(timeout=5)
    _assert_complete_after_a_kill(out, report, long_clips, killed)


# --- interrupting the whole batch ------------------------------------------------------------------------------------


def _done_in_ledger(out: Path) -> list[str]:
    from libreface.batch.ledger import fold

    return [name for name, rec in fold(out / "ledger.jsonl").items() if rec.get("status") == "done"]


def _attempts_started(out: Path, besides: list[str]) -> list[str]:
    """Recordings (other than `besides`) with an attempt in progress: `.work/<recording>/attempt-*`."""
    from libreface.batch.records import WORK_DIR

    return [d.name for d in (out / WORK_DIR).glob("*") if d.name not in besides and any(d.glob("attempt-*"))]


def _batch_process(clips: SimpleNamespace, out: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "libreface", "batch", *map(str, clips.good), "-o", str(out),
                             "--jobs", "1", "--threads", "1", "--quiet"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_batch_finishes_only_what_is_missing_when_rerun(clips, tmp_path, signum):
    out = tmp_path / "study"
    proc = _batch_process(clips, out)
    try:
        deadline = time.monotonic() + 90
        while not _done_in_ledger(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        # and the worker has started the next recording (its attempt file), so one is caught in the middle
        while not _attempts_started(out, besides=_done_in_ledger(out)) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signum)
        first = list((out / "csv").glob("*.csv"))
        assert _done_in_ledger(out) == [first[0].stem], "the batch ended (or stalled) before it could be interrupted"
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signum, err
    ledger = read_ledger(out).set_index("recording")
    finished = first[0].stem
    assert ledger.loc[finished, "status"] == "done"
    assert set(ledger.drop(index=finished)["status"]) <= {"partial", "pending"}
    assert "partial" in set(ledger["status"])  # the recording in the middle of its analysis
    mtime = first[0].stat().st_mtime_ns

    rerun = _batch_process(clips, out)
    _, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    ledger = read_ledger(out).set_index("recording")
    assert first[0].stat().st_mtime_ns == mtime
    assert ledger.loc[finished, "action"] == "skipped"
    assert set(ledger.drop(index=finished)["action"]) == {"analysed"}
    _assert_outputs_match_reference(out, clips)
