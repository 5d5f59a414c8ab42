"""Smoke-test a built desktop bundle as a user without Python would run it.

    python packaging/smoke.py [dist/libreface] [--json report.json]

Every bundled program runs with an empty environment (like `env -i`: no PATH, no PYTHONPATH, no HOME,
no LIBREFACE_WEIGHTS) from a scratch folder, so it can only use what is inside the bundle; nothing needs
the network. Checks, in order:

1. `libreface --version` names the version; `libreface info` verifies every model's sha256 inside the bundle.
2. `libreface examples/astronaut.mp4 -o out.csv` writes 150 rows with a `success` column, faces found.
3. Time to first frame: whole-process wall time of the CLI on a one-frame video (best and median of 3).
4. `libreface-gui --smoke-screenshot shot.png` (QT_QPA_PLATFORM=offscreen) analyses the example and exits 0
   with a PNG; a plain `libreface-gui` start stays up for 5 s.
5. Nothing that must stay out of the bundle (torch, timm, dask, dlib, matplotlib, ...) is in it.
6. The bundle's size on disk.

Exit status 0 when every check passed; a missed size or start-up target is printed as WARN and does not fail
the run. The same functions back `tests/test_bundle.py`.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLE = ROOT / "dist" / "libreface"
EXAMPLE = ROOT / "examples" / "astronaut.mp4"
EXAMPLE_FRAMES = 150
EXE_SUFFIX = ".exe" if sys.platform.startswith("win") else ""
# Top-level modules the runtime never imports; their presence is a packaging bug.
BANNED = ("torch", "torchvision", "timm", "dask", "distributed", "dlib", "matplotlib", "pyarrow", "scipy", "sklearn",
          "distill", "onnx", "onnxscript") + (() if sys.platform.startswith("win") else ("cv2",))  # Windows reads cameras with OpenCV
SIZE_TARGET_MB = 400
FIRST_FRAME_TARGET_S = 3.0


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    seconds: float = 0.0
    warning: bool = False   # a size or speed target missed: reported, but the bundle works


@dataclass
class Report:
    bundle: str
    checks: list[Check] = field(default_factory=list)
    size_mb: float = 0.0
    first_frame_s: list[float] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


def clean_env(**extra: str) -> dict[str, str]:
    """An empty environment, like `env -i`, plus `extra` (Windows cannot start a process without SYSTEMROOT)."""
    env = {k: os.environ[k] for k in ("SYSTEMROOT", "WINDIR") if sys.platform.startswith("win") and k in os.environ}
    env.update(extra)
    return env


def exe(bundle: Path, name: str) -> Path:
    """The bundled executable `name` (macOS .app bundles keep them in Contents/MacOS)."""
    for cand in (bundle / f"{name}{EXE_SUFFIX}", bundle / "Contents" / "MacOS" / name):
        if cand.is_file():
            return cand.resolve()
    raise FileNotFoundError(f"{bundle}: no {name}{EXE_SUFFIX} executable; build it with packaging/build.sh")


def run(cmd: list[str | Path], cwd: Path, timeout_s: float = 300.0, **env: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run `cmd` in a clean environment; the completed process and its wall time in seconds."""
    t0 = time.perf_counter()
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=clean_env(**env), capture_output=True, text=True,
                          timeout=timeout_s, stdin=subprocess.DEVNULL)
    return proc, time.perf_counter() - t0


def _tail(text: str, lines: int = 6) -> str:
    return " | ".join(text.strip().splitlines()[-lines:])


def check_version(bundle: Path, work: Path) -> Check:
    proc, dt = run([exe(bundle, "libreface"), "--version"], work, timeout_s=60)
    ok = proc.returncode == 0 and proc.stdout.startswith("libreface ")
    return Check("cli --version", ok, (proc.stdout.strip() or _tail(proc.stderr)), dt)


def check_info(bundle: Path, work: Path) -> Check:
    """`libreface info`: exit 0, every model verified ("ok"), weights read from inside the bundle."""
    proc, dt = run([exe(bundle, "libreface"), "info"], work, timeout_s=120)
    out = proc.stdout
    models = [line for line in out.splitlines() if "sha256" in line]
    weights_line = next((line for line in out.splitlines() if line.startswith("weights:")), "weights: ?")
    inside = str(bundle.resolve()) in weights_line
    verified = [re.search(r"sha256 \S+ ok( \(default\))?$", line.rstrip()) for line in models]
    ok = proc.returncode == 0 and len(models) >= 2 and all(verified) and inside
    detail = f"{weights_line}; " + "; ".join(" ".join(m.split()[:1] + m.split()[-2:]) for m in models)
    return Check("cli info", ok, detail if proc.returncode == 0 else _tail(proc.stderr or out), dt)


def check_cli_example(bundle: Path, work: Path, example: Path = EXAMPLE) -> Check:
    """The bundled CLI on the example clip: a CSV of 150 rows with a success column and faces in it."""
    out = work / "astronaut.csv"
    proc, dt = run([exe(bundle, "libreface"), example, "-o", out, "--quiet"], work)
    if proc.returncode != 0 or not out.is_file():
        return Check("cli example", False, f"exit {proc.returncode}: {_tail(proc.stderr)}", dt)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    success = sum(r.get("success", "").strip() in ("1", "1.0") for r in rows) if rows else 0
    ok = len(rows) == EXAMPLE_FRAMES and rows and "success" in rows[0] and success > 0
    return Check("cli example", bool(ok), f"{len(rows)} rows, {success} with success=1, {len(rows[0]) if rows else 0} "
                 f"columns, {dt:.1f} s", dt)


def make_one_frame_video(path: Path, example: Path = EXAMPLE) -> Path:
    """A one-frame MP4 cut from the example (needs PyAV in the Python running this script, not in the bundle)."""
    import av

    with av.open(str(example)) as src:
        frame = next(src.decode(video=0)).to_ndarray(format="rgb24")
    with av.open(str(path), "w") as dst:
        stream = dst.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = frame.shape[1], frame.shape[0], "yuv420p"
        for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    return path


def check_first_frame(bundle: Path, work: Path, repeat: int = 3) -> tuple[Check, list[float]]:
    """Whole-process wall time of the bundled CLI on a one-frame video, `repeat` times (the first may be cold)."""
    clip = make_one_frame_video(work / "one_frame.mp4")
    times = []
    for i in range(repeat):
        out = work / f"one_frame_{i}.csv"
        proc, dt = run([exe(bundle, "libreface"), clip, "-o", out, "--quiet"], work, timeout_s=120)
        if proc.returncode != 0:
            return Check("cli time to first frame", False, f"exit {proc.returncode}: {_tail(proc.stderr)}", dt), times
        times.append(dt)
    best, median = min(times), statistics.median(times)
    detail = f"best {best:.2f} s, median {median:.2f} s of {repeat} (target < {FIRST_FRAME_TARGET_S:.0f} s): " + \
             ", ".join(f"{t:.2f}" for t in times)
    return Check("cli time to first frame", True, detail, median, warning=median >= FIRST_FRAME_TARGET_S), times


def check_gui_screenshot(bundle: Path, work: Path) -> Check:
    """`libreface-gui --smoke-screenshot`: analyses ~30 frames of the bundled example offscreen and exits 0."""
    shot = work / "gui.png"
    proc, dt = run([exe(bundle, "libreface-gui"), "--smoke-screenshot", shot], work, timeout_s=300,
                   QT_QPA_PLATFORM="offscreen")
    ok = proc.returncode == 0 and shot.is_file() and shot.stat().st_size > 10_000
    detail = f"exit {proc.returncode}, {shot.stat().st_size // 1024 if shot.is_file() else 0} KiB PNG, {dt:.1f} s"
    return Check("gui smoke screenshot", ok, detail if ok else f"{detail}: {_tail(proc.stderr)}", dt)


def check_gui_stays_up(bundle: Path, work: Path, seconds: float = 5.0) -> Check:
    """A plain `libreface-gui` start (offscreen) is still running after `seconds`; then it is terminated."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(exe(bundle, "libreface-gui"))], cwd=work, env=clean_env(QT_QPA_PLATFORM="offscreen"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        proc.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.terminate()
        try:
            proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        return Check("gui stays up", True, f"running after {seconds:.0f} s, then terminated", time.perf_counter() - t0)
    _, err = proc.communicate()
    return Check("gui stays up", False, f"exited {proc.returncode} within {seconds:.0f} s: {_tail(err)}",
                 time.perf_counter() - t0)


def bundled_toplevel_modules(bundle: Path) -> set[str] | None:
    """Top-level module names inside the executables' PYZ archives and the _internal folder (None: no PyInstaller)."""
    internal = bundle / "_internal"
    names = {p.name.split(".")[0] for p in internal.iterdir()} if internal.is_dir() else set()
    try:
        from PyInstaller.archive.readers import pkg_archive_contents
    except ImportError:
        return None
    for name in ("libreface", "libreface-gui"):
        try:
            path = exe(bundle, name)
        except FileNotFoundError:
            continue
        names |= {n.split(".")[0] for n in pkg_archive_contents(str(path), recursive=True)}
    return names


def check_excluded(bundle: Path) -> Check:
    names = bundled_toplevel_modules(bundle)
    if names is None:
        found = [b for b in BANNED if (bundle / "_internal" / b).exists()]
        return Check("excluded packages", not found, f"folder check only (no PyInstaller here); found: {found or 'none'}")
    found = sorted(set(BANNED) & names)
    return Check("excluded packages", not found, f"none of {', '.join(BANNED)}" if not found else f"found {found}")


def bundle_size_mb(bundle: Path) -> float:
    """Bytes on disk of every file in the bundle, in MB (10^6), symlinks not followed."""
    total = sum(p.lstat().st_size for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    return total / 1e6


def smoke(bundle: Path = DEFAULT_BUNDLE, gui: bool = True, timing: bool = True) -> Report:
    bundle = Path(bundle).resolve()
    report = Report(bundle=str(bundle))
    with tempfile.TemporaryDirectory(prefix="libreface-bundle-smoke-") as tmp:
        work = Path(tmp)
        steps = [check_version, check_info, check_cli_example]
        for step in steps:
            report.checks.append(step(bundle, work))
            _print(report.checks[-1])
        if timing:
            check, report.first_frame_s = check_first_frame(bundle, work)
            report.checks.append(check)
            _print(check)
        if gui:
            for step in (check_gui_screenshot, check_gui_stays_up):
                report.checks.append(step(bundle, work))
                _print(report.checks[-1])
    report.checks.append(check_excluded(bundle))
    _print(report.checks[-1])
    report.size_mb = bundle_size_mb(bundle)
    size = Check("bundle size", True, f"{report.size_mb:.0f} MB unpacked (target < {SIZE_TARGET_MB} MB)",
                 warning=report.size_mb >= SIZE_TARGET_MB)
    report.checks.append(size)
    _print(size)
    return report


def _print(check: Check) -> None:
    state = "FAIL" if not check.ok else "WARN" if check.warning else "ok  "
    print(f"{state} {check.name:26s} {check.detail}{' (target missed)' if check.warning else ''}", file=sys.stderr,
          flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Smoke-test the desktop bundle with an empty environment.")
    p.add_argument("bundle", nargs="?", type=Path, default=DEFAULT_BUNDLE, help="the one-folder bundle")
    p.add_argument("--no-gui", action="store_true", help="skip the GUI checks")
    p.add_argument("--json", type=Path, help="also write the report as JSON")
    args = p.parse_args(argv)
    if not args.bundle.is_dir():
        p.error(f"{args.bundle}: no bundle; build it with packaging/build.sh")
    report = smoke(args.bundle, gui=not args.no_gui)
    if args.json:
        args.json.write_text(json.dumps({**asdict(report), "ok": report.ok}, indent=1))
    missed = [c.name for c in report.checks if c.warning]
    print(f"smoke: {'all checks passed' if report.ok else 'FAILED'} ({args.bundle})"
          + (f"; targets missed: {', '.join(missed)}" if missed else ""), file=sys.stderr)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
