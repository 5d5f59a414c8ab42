"""libreface desktop app (PySide6): windows and widgets that drive `libreface`; it never computes itself.

Layout, one module per concern:

```
app.py            MainWindow (Analyze | Live | Viewer tabs, menus, shortcuts, privacy indicator), main()
compat.py         binding_fault() (PySide6 6.12.0 on Python 3.11), garbage collection on the GUI thread only
settings.py       QSettings location, recent files, window state
table.py          ResultTable: per-frame, per-face results (from FrameResults or a CSV) for display
workers.py        AnalyzeWorker: Analyzer.analyze_to_files(..., on_result=...) on a job thread, never the GUI's
analysis_queue.py AnalysisQueue: files, states, output names, retry/cancel; drives one AnalyzeWorker
live.py           FrameSlot (latest-frame slot), SlotSource, LiveCapture, LiveWorker: webcam analysis
frames.py         FrameReader (QThread): decodes video frames for display with libreface.sources
video_view.py     VideoView: a frame with face boxes, ids and landmarks drawn over it
panels.py         BarPanel: AU intensity bars and expression probabilities of the selected face
timeline.py       TimelinePanel: pyqtgraph plots of AUs and expressions over the recording, click to seek
result_view.py    ResultView: video + panels + timelines, shared by the three workspaces
label_store.py    LabelStore: human expression / AU labels next to the feature vectors (.labels.csv)
finetune.py       FinetuneRunner: `python -m distill finetune-heads` in a QProcess
label_panel.py    LabelPanel: mark expression / AU presence of the shown face, run fine-tuning
analyze_page.py   the Analyze workspace (queue + settings + live preview)
live_page.py      the Live workspace (webcam, record CSV + features)
viewer_page.py    the Viewer workspace (video + CSV browsing, label correction)
```

Privacy: the app writes per-frame CSVs, feature vectors and label CSVs, never frames, crops or
thumbnails. The one exception is `--smoke-screenshot PATH`, an explicit debug option that saves a
screenshot of the window.
"""

import os

__version__ = "0.1.0"

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")  # pyqtgraph must use our binding even if PyQt is installed

