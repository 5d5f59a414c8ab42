"""FinetuneRunner: runs `python -m distill finetune-heads` on stored features and labels, in a QProcess.

The command writes a copy of the student with refitted expression and AU-occurrence heads.

The training side (torch) never loads into the GUI process: the command runs as a child process
and the app only reports the heads file it wrote (`headsReady`). Loading new heads into the
analyzer is the library's part.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal

FINETUNE_COMMAND: tuple[str, ...] = (sys.executable, "-m", "distill", "finetune-heads")


def distill_unavailable_reason() -> str | None:
    """None when `distill` and torch can be imported, else a one-line reason for a tooltip.

    Uses `find_spec`, so torch is not imported into the GUI process.
    """
    if importlib.util.find_spec("distill") is None:
        return "needs the distill package from the libreface source tree (pip install -e . from a checkout)"
    if importlib.util.find_spec("torch") is None:
        from libreface.extras import install_command

        return f"needs the train extra: {install_command('train')}"
    return None


def heads_path_for(features_path: str | Path) -> Path:
    """`F.parquet` -> `F.heads.onnx`, in the same folder."""
    return Path(features_path).with_suffix(".heads.onnx")


class FinetuneRunner(QObject):
    """Runs the fine-tuning command once at a time.

    Args:
        command: the program and leading arguments (tests pass a stand-in).

    Signals:
        output(line): a line the command printed (stdout and stderr merged).
        headsReady(path): the command succeeded and wrote `path`.
        failed(message): it failed; the message ends with its last output line.
    """

    output = Signal(str)
    headsReady = Signal(str)
    failed = Signal(str)

    def __init__(self, command: tuple[str, ...] | list[str] = FINETUNE_COMMAND, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.command = list(command)
        self._proc: QProcess | None = None
        self._out_path: Path | None = None
        self._last_line = ""

    @property
    def running(self) -> bool:
        return self._proc is not None

    def start(self, features: str | Path, labels: str | Path, out: str | Path | None = None,
              model: str | None = None) -> Path:
        """Start `finetune-heads --features F --labels L --out O [--model M]`; returns O.

        Args:
            features, labels: the stored feature vectors and the labels CSV (`LabelStore`).
            out: the fine-tuned student to write; default `F.heads.onnx` next to the features.
            model: the registered model that produced the features (the command's default otherwise).
        """
        if self._proc is not None:
            raise RuntimeError("a fine-tuning run is already going")
        self._out_path = Path(out) if out is not None else heads_path_for(features)
        proc = QProcess(self)
        proc.setProcessChannelMode(QProcess.ProcessChannelMode.MergedChannels)
        spec = importlib.util.find_spec("distill")
        if spec is not None and spec.origin:  # run from the folder that holds the distill package
            proc.setWorkingDirectory(str(Path(spec.origin).resolve().parent.parent))
        proc.readyReadStandardOutput.connect(self._read)
        proc.finished.connect(self._finished)
        proc.errorOccurred.connect(self._error)
        self._proc = proc
        args = [*self.command[1:], "--features", str(features), "--labels", str(labels), "--out", str(self._out_path)]
        if model:
            args += ["--model", model]
        proc.start(self.command[0], args)
        return self._out_path

    def _read(self) -> None:
        data = bytes(self._proc.readAllStandardOutput()).decode("utf-8", "replace")
        for line in data.splitlines():
            if line.strip():
                self._last_line = line.strip()
                self.output.emit(line)

    def _error(self, error: QProcess.ProcessError) -> None:
        if error == QProcess.ProcessError.FailedToStart:
            self._proc = None
            self.failed.emit(f"finetune-heads: cannot start {self.command[0]}")

    def _finished(self, code: int, status: QProcess.ExitStatus) -> None:
        self._read()
        self._proc = None
        out = self._out_path
        if status == QProcess.ExitStatus.NormalExit and code == 0 and out is not None and out.exists():
            self.headsReady.emit(str(out))
        else:
            tail = f": {self._last_line}" if self._last_line else ""
            self.failed.emit(f"finetune-heads exited with status {code}{tail}")
