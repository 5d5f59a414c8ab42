"""The desktop app (gui/), driven with pytest-qt on the offscreen platform; one test opens a real window under Xvfb.

Analyses use the bundled example (150 frames, 640x360; frames 125-149 have no face), subsampled
with `every` to keep runs short.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("PySide6", reason="the gui extra is not installed: pip install 'libreface-cpu[gui]' pytest-qt")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed")

from gui.compat import binding_fault  # noqa: E402

if binding_fault():  # it would abort the whole pytest process within seconds
    pytest.skip(binding_fault(), allow_module_level=True)

from PySide6.QtCore import QPointF, Qt  # noqa: E402

from libreface.outputs import read_features  # noqa: E402
from libreface.pipeline import Analyzer, AnalyzerOptions  # noqa: E402
from libreface.results import OutputLabels  # noqa: E402
from libreface.sources import Frame, open_source  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.mp4"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm", ".ico"}
IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"BM", b"GIF8", b"II*\x00", b"MM\x00*", b"P6\n", b"P5\n", b"\x00\x00\x01\x00")


@pytest.fixture(scope="module", autouse=True)
def _automatic_garbage_collection_after_this_module():
    """The main window moves garbage collection to the GUI thread (see gui.compat); give it back afterwards."""
    yield
    from gui.compat import restore_automatic_garbage_collection

    restore_automatic_garbage_collection()


@pytest.fixture(autouse=True)
def _delete_windows_on_the_gui_thread(qapp):
    """Delete each test's windows at its end, on the GUI thread (closing them only schedules that)."""
    yield
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    for widget in QApplication.topLevelWidgets():
        widget.close()
        widget.deleteLater()
    QApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()


def make_window(qtbot):
    from gui.app import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)  # closed (closeEvent: workers stopped) at teardown
    window.show()
    window.activateWindow()  # window shortcuts (Space, arrows, Ctrl+O) need the active window
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    return window


def run_queue(qtbot, window, paths, timeout_s: float = 180):
    queue = window.analyze.queue
    with qtbot.waitSignal(queue.finished, timeout=int(timeout_s * 1000)):
        window.analyze.add_paths(paths)
        window.analyze.start()
    return list(queue.items.values())


def is_image(path: Path) -> bool:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head.startswith(IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


def files_under(*folders: Path) -> set[Path]:
    return {p for folder in folders if folder.exists() for p in folder.rglob("*") if p.is_file()}


# -- synthetic labels (no model needed) ---------------------------------------------------------

LABELS = OutputLabels(au_intensity=("AU01", "AU12"), au_occurrence=("AU01", "AU12", "AU25"), occurrence_threshold=0.5,
                      expressions=("neutral", "happiness", "surprise"), feature_dim=4, model="test_model.v1")


# -- the window ----------------------------------------------------------------------------------


def test_the_main_window_opens_with_three_workspaces_and_a_privacy_indicator(qtbot, gui_settings):
    from gui.app import PRIVACY_TEXT

    window = make_window(qtbot)
    assert [window.tabs.tabText(i) for i in range(window.tabs.count())] == ["Analyze", "Live", "Viewer"]
    assert window.privacy.isVisible() and window.privacy.text() == PRIVACY_TEXT
    assert "never" in window.privacy.text() and "CSV" in window.privacy.text()


def test_window_state_settings_and_recent_files_survive_a_restart(qtbot, gui_settings):
    from gui.app import MainWindow

    first = make_window(qtbot)
    first.resize(first.width(), 560)  # the offscreen screen is 800x600: only the height can be chosen freely
    height = first.height()
    first.tabs.setCurrentIndex(2)
    first.analyze.every.setValue(7)
    first.analyze.fmt.setCurrentText("openface")
    first.recent.add(EXAMPLE)
    first.close()
    assert (gui_settings / "libreface" / "libreface-gui.ini").is_file()

    second = MainWindow()
    qtbot.addWidget(second)
    assert second.tabs.currentIndex() == 2
    assert second.height() == height == 560
    assert second.analyze.current_settings().every == 7 and second.analyze.current_settings().fmt == "openface"
    assert second.recent.paths() == [str(EXAMPLE.resolve())]


# -- analyze queue -------------------------------------------------------------------------------


def test_the_analyze_queue_writes_the_csv_the_cli_writes(qtbot, gui_settings, shipped_model, tmp_path):
    from gui.analysis_queue import ItemState
    from gui.workers import AnalyzeSettings

    window = make_window(qtbot)
    window.analyze.set_settings(AnalyzeSettings(every=10, features=True, output_dir=str(tmp_path / "gui")))
    [item] = run_queue(qtbot, window, [EXAMPLE])
    assert item.state == ItemState.DONE, item.message
    assert Path(item.csv_path) == tmp_path / "gui" / "astronaut.csv"

    cli = subprocess.run([sys.executable, "-m", "libreface", str(EXAMPLE), "-o", str(tmp_path / "cli.csv"),
                          "--every", "10", "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "HOME": str(tmp_path)})
    assert cli.returncode == 0, cli.stderr
    assert Path(item.csv_path).read_bytes() == (tmp_path / "cli.csv").read_bytes()

    df = pd.read_csv(item.csv_path)
    feats = read_features(item.features_path)
    assert df["frame"].tolist() == list(range(0, 150, 10))
    assert len(feats) == int(df["success"].sum()) > 0
    assert window.analyze.preview.table is not None and len(window.analyze.preview.table.frames) == 15


def test_adding_a_folder_queues_its_subfolders_files_too(qtbot, gui_settings, tmp_path):
    for rel in ("p01/session1.mp4", "p02/session1.mp4", "p02/notes.txt"):
        (tmp_path / "study" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "study" / rel).write_bytes(b"x")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    window = make_window(qtbot)
    window.analyze.add_paths([tmp_path / "study", tmp_path / "empty"])
    queued = sorted(Path(it.source).relative_to(tmp_path / "study").as_posix() for it in window.analyze.queue.items.values())
    assert queued == ["p01/session1.mp4", "p02/session1.mp4"]
    [box] = window.analyze.error_boxes
    assert str(tmp_path / "empty") in box.text() and "no video or image files" in box.text()


def test_queued_files_with_equal_names_get_the_clis_folder_names(tmp_path):
    from gui.workers import AnalyzeSettings, output_paths

    settings = AnalyzeSettings(output_dir=str(tmp_path / "out"), features=True)
    first = output_paths(tmp_path / "p01" / "session1.mp4", settings)
    second = output_paths(tmp_path / "p02" / "Session1.mov", settings, taken={str(first[0])})
    assert first[0] == tmp_path / "out" / "session1.csv" and second[0] == tmp_path / "out" / "p02__Session1.csv"
    assert second[1] is not None and second[1].stem == "p02__Session1"
    taken = {str(first[0])}
    for _ in range(12):  # the same file queued again and again: every copy gets a name of its own
        taken.add(str(output_paths(tmp_path / "p01" / "session1.mp4", settings, taken=taken)[0]))
    assert len(taken) == 13


def test_the_openface_layout_is_the_libraries_too(qtbot, gui_settings, shipped_model, tmp_path):
    from gui.workers import AnalyzeSettings

    window = make_window(qtbot)
    window.analyze.set_settings(AnalyzeSettings(every=25, fmt="openface", landmarks=True, output_dir=str(tmp_path)))
    [item] = run_queue(qtbot, window, [EXAMPLE])
    reference = tmp_path / "ref" / "astronaut.csv"
    with Analyzer(AnalyzerOptions(every=25)) as analyzer:
        analyzer.analyze_to_files(EXAMPLE, reference, fmt="openface", landmarks=True)
    assert Path(item.csv_path).read_bytes() == reference.read_bytes()


def test_a_bad_file_fails_with_a_message_and_the_queue_goes_on(qtbot, gui_settings, shipped_model, tmp_path):
    from gui.analysis_queue import ItemState
    from gui.workers import AnalyzeSettings

    bad = tmp_path / "broken.mp4"
    bad.write_text("this is not a video")
    out = tmp_path / "out"
    window = make_window(qtbot)
    window.analyze.set_settings(AnalyzeSettings(every=25, output_dir=str(out)))
    failed, done = run_queue(qtbot, window, [bad, EXAMPLE])
    assert (failed.state, done.state) == (ItemState.FAILED, ItemState.DONE)
    assert "broken.mp4" in failed.message and "not a video" in failed.message
    [box] = window.analyze.error_boxes
    assert box.isVisible() and not box.isModal() and box.text() == failed.message
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.csv"]
    assert window.analyze.table.item(0, 1).text() == "failed"


def test_cancel_leaves_only_partial_files_and_retry_resumes_them(qtbot, gui_settings, shipped_model, tmp_path):
    from gui.analysis_queue import ItemState
    from gui.workers import AnalyzeSettings

    out = tmp_path / "out"
    window = make_window(qtbot)
    window.analyze.set_settings(AnalyzeSettings(every=5, features=True, output_dir=str(out)))
    queue = window.analyze.queue
    with qtbot.waitSignal(queue.frameAnalysed, timeout=120_000):
        window.analyze.add_paths([EXAMPLE])
        window.analyze.start()
    assert window.analyze.cancel_button.isEnabled()
    window.analyze.cancel_button.click()
    [item] = queue.items.values()
    qtbot.waitUntil(lambda: item.state == ItemState.CANCELLED, timeout=60_000)
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.csv.partial", "astronaut.parquet.partial"]
    partial = pd.read_csv(out / "astronaut.csv.partial")
    assert partial["frame"].is_monotonic_increasing and len(partial) < 30

    with qtbot.waitSignal(queue.finished, timeout=180_000):
        queue.retry(item.item_id)
    assert item.state == ItemState.DONE
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.csv", "astronaut.parquet"]
    assert pd.read_csv(out / "astronaut.csv")["frame"].tolist() == list(range(0, 150, 5))


# -- privacy -------------------------------------------------------------------------------------


def test_a_full_analyze_and_a_live_session_write_no_image_anywhere(qtbot, gui_settings, shipped_model, tmp_path,
                                                                   monkeypatch):
    from gui.workers import AnalyzeSettings

    home, tmp, out, cwd = tmp_path / "home", tmp_path / "tmp", tmp_path / "out", tmp_path / "cwd"
    for d in (home, tmp, out, cwd):
        d.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", None)
    monkeypatch.chdir(cwd)

    window = make_window(qtbot)
    window.analyze.set_settings(AnalyzeSettings(every=5, features=True, landmarks=True, output_dir=str(out)))
    run_queue(qtbot, window, [EXAMPLE])
    window.open_in_viewer(str(EXAMPLE), str(out / "astronaut.csv"))
    qtbot.waitUntil(lambda: window.viewer.current_frame == 0, timeout=30_000)

    live = window.live
    live.folder.setText(str(out / "live"))
    live.start(open_source=lambda: open_source(EXAMPLE), pace=True)  # the example stands in for a webcam
    qtbot.waitUntil(lambda: live.table is not None and len(live.table.frames) >= 2, timeout=60_000)
    live.record_button.click()
    qtbot.wait(1500)
    live.record_button.click()
    qtbot.waitUntil(lambda: len(live.saved) == 1, timeout=60_000)
    live.stop()
    qtbot.waitUntil(lambda: not live.running, timeout=30_000)
    assert not live.errors

    written = files_under(home, tmp, out, cwd)
    assert not [p for p in written if is_image(p)]
    outputs = sorted(p.relative_to(out).as_posix() for p in files_under(out))
    stem = Path(live.saved[0]).stem
    assert outputs == ["astronaut.csv", "astronaut.parquet", f"live/{stem}.csv", f"live/{stem}.parquet"]
    recorded = pd.read_csv(live.saved[0])
    assert len(recorded) >= 1 and recorded["frame"].is_monotonic_increasing


# -- results table -------------------------------------------------------------------------------


def _synthetic_results(labels: OutputLabels, n_frames: int = 12) -> list:
    """Face 0 on every 2nd frame, face 1 from frame 6 on, no face on frame 10; values vary with the frame."""
    from libreface.results import FaceResult, FrameResult

    rng = np.random.default_rng(0)
    out = []
    for frame in range(0, n_frames, 2):
        faces = []
        for face_id in (0, 1):
            if frame == 10 or (face_id == 1 and frame < 6):
                continue
            lm = np.zeros((478, 3), np.float32)
            lm[:, 0] = 100 + 200 * face_id + rng.uniform(0, 80, 478)
            lm[:, 1] = 50 + rng.uniform(0, 90, 478)
            expr = rng.dirichlet(np.ones(len(labels.expressions))).astype(np.float32)
            faces.append(FaceResult(
                face_id=face_id, box_px=(float(lm[:, 0].min()), float(lm[:, 1].min()), float(lm[:, 0].max()),
                                         float(lm[:, 1].max())),
                confidence=0.9, landmarks_px=lm, blendshapes=np.zeros(52, np.float32), pose_deg=(1.0, 2.0, 3.0),
                au_intensity=np.full(len(labels.au_intensity), frame / 4 + face_id, np.float32),
                au_occurrence=np.full(len(labels.au_occurrence), 0.8 if face_id else 0.2, np.float32),
                expression=expr, features=np.ones(labels.feature_dim, np.float32)))
        out.append(FrameResult(frame, frame / 25, faces))
    return out


def test_a_results_table_holds_the_same_from_results_and_from_native_or_openface_csvs(tmp_path):
    from libreface.outputs import CsvSink

    from gui.table import ResultTable

    results = _synthetic_results(LABELS)
    streamed = ResultTable(LABELS)
    for fmt in ("native", "openface"):
        with CsvSink(tmp_path / f"{fmt}.csv", LABELS, fmt=fmt, landmarks=True) as sink:
            for r in results:
                sink.append(r)
    for r in results:
        streamed.append(r)
    native = ResultTable.from_csv(tmp_path / "native.csv", LABELS)
    openface = ResultTable.from_csv(tmp_path / "openface.csv", LABELS)

    for table in (streamed, native, openface):
        assert table.frames.tolist() == [0, 2, 4, 6, 8, 10]
        assert table.face_ids() == [0, 1] and table.primary_face() == 0 and table.stride() == 2
        assert table.faces_at(10) == [] and table.faces_at(11) == []
        faces = table.faces_at(7)  # between analysed frames: frame 6's faces
        assert [(f.frame, f.face_id) for f in faces] == [(6, 0), (6, 1)]
        np.testing.assert_allclose(faces[1].au_intensity, 6 / 4 + 1, atol=1e-4)
        assert faces[0].landmarks_px is not None
        x, y = table.series(1, "au")
        assert np.isnan(y[:3]).all() and np.allclose(y[3:5], [[2.5, 2.5], [3.0, 3.0]]) and np.isnan(y[5]).all()
    assert native.source_format == "native" and openface.source_format == "openface"
    np.testing.assert_allclose(native.faces_at(6)[0].expression, results[3].faces[0].expression, atol=1e-4)
    np.testing.assert_allclose(native.faces_at(6)[0].landmarks_px, results[3].faces[0].landmarks_px[:, :2], atol=0.01)
    assert native.faces_at(6)[0].landmarks_px.shape == (478, 2) and openface.faces_at(6)[0].landmarks_px.shape == (68, 2)
    assert np.isnan(openface.faces_at(6)[0].expression).all()  # OpenFace CSVs have no expression columns


def test_a_csv_of_another_model_is_refused_in_one_line(tmp_path):
    from gui.table import ResultTable

    path = tmp_path / "other.csv"
    path.write_text("frame,face_id,success,AU99_intensity\n0,0,1,1.0\n")
    with pytest.raises(ValueError, match="not a libreface CSV of model 'test_model.v1'") as err:
        ResultTable.from_csv(path, LABELS)
    assert "other.csv" in str(err.value) and "\n" not in str(err.value)


def test_a_live_table_keeps_a_bounded_window_of_rows():
    from gui.table import ResultTable

    table = ResultTable(LABELS, max_rows=6)
    for r in _synthetic_results(LABELS, n_frames=40):
        table.append(r)
    assert len(table) <= 6 + 2 and table.frames[-1] == 38
    assert [f.frame for f in table.faces_at(38)] == [38, 38]


# -- live ----------------------------------------------------------------------------------------


def test_the_frame_slot_keeps_only_the_newest_frame():
    from gui.live import FrameSlot

    slot = FrameSlot()
    for i in range(3):
        slot.put(Frame(i, i / 25, np.zeros((2, 2, 3), np.uint8)))
    assert slot.take().index == 2
    assert (slot.received, slot.dropped) == (3, 2)
    assert slot.take(timeout_s=0.01) is None
    slot.end()
    assert slot.take(timeout_s=5) is None and slot.ended


def test_live_analysis_skips_ahead_instead_of_falling_behind(qtbot, shipped_model):
    from gui.live import LiveWorker

    from PySide6.QtCore import QObject, Slot

    class Collector(QObject):
        def __init__(self):
            super().__init__()
            self.results, self.stats = [], []

        @Slot(object, object, object)
        def add(self, image, result, stats):
            self.results.append((image, result))
            self.stats.append(stats)

    collector = Collector()
    results, stats = collector.results, collector.stats
    worker = LiveWorker(lambda: open_source(EXAMPLE), AnalyzerOptions(), pace=False)  # frames come far too fast
    worker.frameReady.connect(collector.add)
    with qtbot.waitSignal(worker.stopped, timeout=120_000):
        worker.start()
    worker.wait(10_000)
    frames = [r.frame for _, r in results]
    assert frames and frames == sorted(set(frames)) and len(frames) < 150
    assert stats[-1]["dropped"] > 0
    image, _ = results[0]
    assert (image.width(), image.height()) == (640, 360)


# -- viewer --------------------------------------------------------------------------------------


@pytest.fixture
def analysed(tmp_path, shipped_model):
    """The example analysed every 5th frame, with landmarks and feature vectors: (csv, features)."""
    csv, features = tmp_path / "astronaut.csv", tmp_path / "astronaut.parquet"
    with Analyzer(AnalyzerOptions(every=5)) as analyzer:
        analyzer.analyze_to_files(EXAMPLE, csv, landmarks=True, features_path=features)
    return csv, features


def test_the_viewer_shows_overlays_bars_and_timelines_and_steps_with_the_keyboard(qtbot, gui_settings, analysed,
                                                                                  monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    csv, _ = analysed
    window = make_window(qtbot)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(EXAMPLE), ""))
    qtbot.keyClick(window, Qt.Key.Key_O, Qt.KeyboardModifier.ControlModifier)  # Ctrl+O, CSV found by name...
    viewer = window.viewer
    assert window.tabs.currentIndex() == 2 and viewer.csv_path is None  # ...not next to the video: none
    window.open_in_viewer(str(EXAMPLE), str(csv))
    qtbot.waitUntil(lambda: viewer.current_frame == 0, timeout=30_000)
    assert viewer.table is not None and len(viewer.table.frames) == 30 and viewer.n_frames == 150

    faces = viewer.view.video.faces
    assert len(faces) == 1 and faces[0].landmarks_px.shape == (478, 2)
    assert np.isfinite(viewer.view.au_panel.values).all() and np.isfinite(viewer.view.expression_panel.values).all()
    x, y = viewer.view.timeline.au.curves[viewer.table.labels.au_intensity[0]].getData()
    assert len(x) > 20

    qtbot.keyClick(window, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: viewer.current_frame == 1, timeout=10_000)
    assert viewer.view.video.faces[0].frame == 0  # between analysed frames, the last results stay shown
    qtbot.keyClick(window, Qt.Key.Key_Left)
    qtbot.waitUntil(lambda: viewer.current_frame == 0, timeout=10_000)

    plot = viewer.view.timeline.au.widget  # a click on a timeline seeks there
    scene_point = viewer.view.timeline.au.plot.vb.mapViewToScene(QPointF(60, 2.5))
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=plot.mapFromScene(scene_point))
    qtbot.waitUntil(lambda: viewer.current_frame == 60, timeout=10_000)

    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert viewer.playing
    qtbot.waitUntil(lambda: viewer.current_frame >= 63, timeout=10_000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not viewer.playing

    frame = viewer.current_frame
    viewer.seek(130)  # no face there: no overlay, empty bars
    qtbot.waitUntil(lambda: viewer.current_frame == 130, timeout=10_000)
    assert viewer.view.video.faces == [] and np.isnan(viewer.view.au_panel.values).all()
    assert frame >= 63


def test_labels_marked_in_the_viewer_land_next_to_the_features(qtbot, gui_settings, analysed):
    from gui.label_store import LabelStore, labels_path_for

    csv, features = analysed
    window = make_window(qtbot)
    window.open_in_viewer(str(EXAMPLE), str(csv))
    viewer = window.viewer
    qtbot.waitUntil(lambda: viewer.current_frame == 0, timeout=30_000)
    viewer.seek(40)
    qtbot.waitUntil(lambda: viewer.current_frame == 40, timeout=10_000)
    labels = viewer.table.labels
    qtbot.keyClick(window, Qt.Key.Key_2)  # the second class
    viewer.labels_panel.au_boxes[labels.au_occurrence[0]].click()  # not marked -> present
    viewer.step(1)  # frame 41 shows frame 40's results: the label goes to frame 40
    qtbot.waitUntil(lambda: viewer.current_frame == 41, timeout=10_000)
    viewer.labels_panel.au_boxes[labels.au_occurrence[1]].click()
    viewer.labels_panel.au_boxes[labels.au_occurrence[1]].click()  # present -> absent

    store = LabelStore.load(labels_path_for(features), labels)
    assert store.path == features.with_name("astronaut.labels.csv")
    [((frame, face_id), label)] = store.items()
    assert (frame, face_id) == (40, 0)
    assert label.expression == labels.expressions[1]
    assert label.aus == {labels.au_occurrence[0]: True, labels.au_occurrence[1]: False}


# -- labels and fine-tuning ----------------------------------------------------------------------


def test_the_label_store_round_trips_through_its_csv(tmp_path):
    from gui.label_store import LabelStore, labels_path_for

    path = labels_path_for(tmp_path / "F.parquet")
    assert path == tmp_path / "F.labels.csv"
    store = LabelStore(path, LABELS)
    store.set_expression(12, 0, "happiness")
    store.set_au(12, 0, "AU12", True)
    store.set_au(3, 1, "AU25", False)
    store.set_expression(7, 0, "surprise")
    store.set_expression(7, 0, None)  # unmarked again: the row goes away
    store.save()
    assert path.read_text() == "frame,face_id,expression,AU01,AU12,AU25\n3,1,,,,0\n12,0,happiness,,1,\n"
    again = LabelStore.load(path, LABELS)
    assert again.items() == store.items() and len(again) == 2
    assert not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("text, message", [
    ("frame,face_id,label\n", "not a labels file"),
    ("frame,face_id,expression,AU99\n", "AU99"),
    ("frame,face_id,expression\n1,0,joy\n", "unknown expression 'joy'"),
])
def test_a_labels_file_for_another_model_is_refused_in_one_line(tmp_path, text, message):
    from gui.label_store import LabelStore

    path = tmp_path / "F.labels.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        LabelStore.load(path, LABELS)
    assert "F.labels.csv" in str(err.value) and "\n" not in str(err.value)


def test_fine_tuning_is_disabled_with_a_reason_when_the_distill_extra_is_missing(qtbot, gui_settings, monkeypatch):
    import gui.label_panel

    monkeypatch.setattr(gui.label_panel, "distill_unavailable_reason", lambda: "needs the training extra: pip ...")
    panel = gui.label_panel.LabelPanel()
    qtbot.addWidget(panel)
    panel.set_features(Path("F.parquet"), LABELS)
    assert not panel.finetune_button.isEnabled()
    assert "training extra" in panel.finetune_button.toolTip()


def test_fine_tuning_runs_finetune_heads_and_reports_the_new_heads(qtbot, gui_settings, monkeypatch, tmp_path):
    import gui.label_panel
    from gui.finetune import FinetuneRunner

    monkeypatch.setattr(gui.label_panel, "distill_unavailable_reason", lambda: None)
    stand_in = ("import sys; a = sys.argv; assert a[1::2] == ['--features', '--labels', '--out', '--model']; "
                "open(a[a.index('--out') + 1], 'wb').write(b'heads')")
    panel = gui.label_panel.LabelPanel(runner=FinetuneRunner([sys.executable, "-c", stand_in]))
    qtbot.addWidget(panel)
    panel.set_features(tmp_path / "F.parquet", LABELS)
    panel.set_target(10, 0)
    assert not panel.finetune_button.isEnabled()  # nothing labelled yet
    assert panel.mark_expression("happiness")
    assert panel.finetune_button.isEnabled()
    with qtbot.waitSignal(panel.headsReady, timeout=60_000) as heads:
        panel.finetune_button.click()
    assert heads.args == [str(tmp_path / "F.heads.onnx")]
    assert (tmp_path / "F.labels.csv").read_text().splitlines()[1] == "10,0,happiness,,,"


# -- a real window -------------------------------------------------------------------------------


def _free_display() -> int:
    for n in range(99, 140):
        if not Path(f"/tmp/.X{n}-lock").exists() and not Path(f"/tmp/.X11-unix/X{n}").exists():
            return n
    raise RuntimeError("no free X display number between :99 and :139")


@pytest.mark.xvfb
def test_a_real_window_under_xvfb_analyses_and_shows_overlays_and_plots(shipped_model, tmp_path):
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not on PATH: apt-get install xvfb xauth libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 "
                    "(see gui/README.md)")
    from PIL import Image

    display = _free_display()
    server = subprocess.Popen([xvfb, f":{display}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not Path(f"/tmp/.X11-unix/X{display}").exists():
            assert server.poll() is None, f"Xvfb :{display} exited with status {server.returncode}"
            assert time.monotonic() < deadline, f"Xvfb :{display} did not start within 15 s"
            time.sleep(0.1)
        shot = tmp_path / "window.png"
        env = {**os.environ, "DISPLAY": f":{display}", "QT_QPA_PLATFORM": "xcb", "HOME": str(tmp_path),
               "XDG_CONFIG_HOME": str(tmp_path / "config")}
        run = subprocess.run([sys.executable, "-m", "gui", "--smoke-screenshot", str(shot)], cwd=REPO, env=env,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
    finally:
        server.terminate()
        server.wait(10)
    image = np.asarray(Image.open(shot).convert("RGB"))
    assert image.shape[0] >= 600 and image.shape[1] >= 1000
    assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 1000  # not blank
    overlay_green = (image[:, :, 1] > 180) & (image[:, :, 0] < 60) & (image[:, :, 2] < 120)  # face 0's box colour
    assert overlay_green.sum() > 200
