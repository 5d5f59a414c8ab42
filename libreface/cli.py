"""Command line: `libreface INPUT... -o OUT` (analyse) and `libreface info`.

Each input fails on its own with one line on stderr; the exit status is 0 when every input was
analysed, 1 when any failed, 2 for bad arguments and 130 after Ctrl-C (the `.partial` outputs stay
valid; `--resume` continues them). Progress goes to stderr, so stdout stays clean.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from . import __version__
from .errors import LibrefaceError

SUBCOMMANDS = ("info", "batch", "collect", "crop", "report", "elan")


def _models_or_empty() -> list[str]:
    try:
        from .models.registry import list_models

        return list_models()
    except LibrefaceError:
        return []


class _VersionAction(argparse.Action):
    """`--version`: the library version and each shipped model with its sha256 (the manifest is read only here)."""

    def __init__(self, option_strings, dest, **kwargs) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        from .models.registry import model_versions

        lines = [f"libreface {__version__}"]
        try:
            lines += [f"  {line}" for line in model_versions()]
        except LibrefaceError as e:
            lines.append(f"  models: {e}")
        print("\n".join(lines))
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    from .models.registry import DEFAULT_MODEL

    p = argparse.ArgumentParser(
        prog="libreface",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Per-frame facial action units, expression and head pose, on the CPU, offline. "
        "Also: `libreface info` (versions, models, hashes), `libreface batch`, `libreface collect`, `libreface crop`, "
        "`libreface report`, `libreface elan` (each with its own --help).",
    )
    p.add_argument("inputs", nargs="+", help="video or image files, folders, a .txt list of paths, or a webcam index (0)")
    p.add_argument("-o", "--output", type=Path, default=None,
                   help="CSV file (one input) or folder (several inputs); default: <input name>.csv in the current "
                        "folder (equal file names from different folders: <folder>__<name>.csv)")
    p.add_argument("-r", "--recursive", action="store_true", help="also take the media files in the subfolders of folder inputs")
    p.add_argument("--format", choices=["native", "openface"], default="native", help="CSV column layout")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"student model: one of {', '.join(_models_or_empty()) or '(none installed)'}, or an .onnx file")
    p.add_argument("--max-faces", type=int, default=1, help="most faces analysed per frame")
    p.add_argument("--every", type=int, default=1, help="analyse every N-th frame")
    p.add_argument("--fps", type=float, default=None, help="analyse at most this many frames per second of video")
    p.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads per process; 0 = all cores")
    p.add_argument("--batch-size", type=int, default=16, help="frames batched per model call")
    p.add_argument("--landmarks", action="store_true", help="add the 478 landmarks (68 for --format openface)")
    p.add_argument("--blendshapes", action="store_true", help="add the 52 MediaPipe blendshapes (native format)")
    p.add_argument("--features", type=Path, default=None,
                   help="also write feature vectors: a .parquet or .npz file (one input) or a folder (several)")
    p.add_argument("--no-small-faces", action="store_true", help="skip the second detection pass for small faces")
    p.add_argument("--mirror", action=argparse.BooleanOptionalAction, default=False,
                   help="also run each face mirrored left-right and average the two outputs (twice the model time; "
                        "no gain for the default model on FER+ validation, reports/selection)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted run from its .partial file")
    p.add_argument("--identity", action="store_true",
                   help="person_id across the recording (face embeddings + DBSCAN; needs the identity extra) "
                        "and a <output>.summary.json per recording")
    p.add_argument("--subject", default="all", help="with --identity: keep 'main' (the person seen most), 'all', or a person_id")
    p.add_argument("--jobs", type=int, default=1, help="inputs analysed in parallel processes")
    p.add_argument("--report", action="store_true",
                   help="also write an HTML report next to each CSV (<output>.html; needs the report extra)")
    p.add_argument("--quiet", action="store_true", help="no progress bar or summary")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    p.add_argument("--version", action=_VersionAction, help="print the version and every model's sha256, then exit")
    return p


def _output_stems(inputs: list[str]) -> list[str]:
    """The name of each input's outputs: its file stem (`webcam0` for a webcam), and where stems repeat
    (case-insensitively: `p01/session1.mp4`, `p02/Session1.mov`) the shortest `folder__stem` names that tell them
    apart (`libreface.outputs.names`), so no output overwrites another."""
    from collections import Counter

    from .outputs.names import unique_names

    stems = [f"webcam{src}" if str(src).isdigit() else Path(src).stem for src in inputs]
    count = Counter(s.casefold() for s in stems)
    clash = [i for i, s in enumerate(stems) if count[s.casefold()] > 1 and not str(inputs[i]).isdigit()]
    clashing = set(clash)
    kept = [s for i, s in enumerate(stems) if i not in clashing]
    names = unique_names([Path(os.path.abspath(inputs[i])) for i in clash], taken=kept)
    for i, name in zip(clash, names):
        stems[i] = name
    return stems


def _outputs_for(args: argparse.Namespace, inputs: list[str]) -> list[tuple[str, Path, Path | None]]:
    several = len(inputs) > 1
    out = args.output
    feat = args.features
    jobs = []
    for src, stem in zip(inputs, _output_stems(inputs)):
        if several or (out is not None and (out.is_dir() or out.suffix == "")):
            folder = out if out is not None else Path.cwd()
            csv = folder / f"{stem}.csv"
        else:
            csv = out if out is not None else Path.cwd() / f"{stem}.csv"
        fpath = None
        if feat is not None:
            fpath = feat / f"{stem}.parquet" if (several or feat.suffix == "") else feat
        jobs.append((src, csv, fpath))
    return jobs


def _options(args: argparse.Namespace, threads: int):
    from .pipeline import AnalyzerOptions

    return AnalyzerOptions(model=args.model, max_faces=args.max_faces, every=args.every, fps=args.fps, threads=threads,
                           batch_size=args.batch_size, small_faces=not args.no_small_faces, identity=args.identity,
                           mirror=args.mirror)


def _run_one(analyzer, args, src: str, csv: Path, fpath: Path | None) -> str | None:
    """Analyse one input; returns an error line or None."""
    try:
        summary = analyzer.analyze_to_files(
            int(src) if str(src).isdigit() else src, csv, fmt=args.format, landmarks=args.landmarks,
            blendshapes=args.blendshapes, features_path=fpath, resume=args.resume, progress=not args.quiet,
            subject=args.subject,
        )
    except LibrefaceError as e:
        return str(e)
    if summary.error:
        print(f"libreface: warning: {summary.error}; the {summary.frames} frames before it are in {csv}", file=sys.stderr)
    if not args.quiet:
        print(f"{src}: {summary.frames} frames, {summary.faces} faces, {summary.fps:.1f} fps -> {csv}", file=sys.stderr)
    if getattr(args, "report", False):
        from .report.command import report_after_analysis

        return report_after_analysis(csv, src, args)
    return None


_WORKER = None


def _worker_init(args: argparse.Namespace, threads: int) -> None:
    global _WORKER
    from .pipeline import Analyzer

    _WORKER = Analyzer(_options(args, threads))


def _worker_run(job) -> tuple[str, str | None]:
    src, csv, fpath, args = job
    try:
        return src, _run_one(_WORKER, args, src, csv, fpath)
    except Exception as e:  # keep the pool alive; report in one line
        return src, f"{src}: {type(e).__name__}: {e}"


def _analyze(args: argparse.Namespace) -> int:
    from .sources import iter_inputs

    inputs: list[str] = []
    failed = 0
    for item in args.inputs:
        if str(item).isdigit():
            inputs.append(item)
            continue
        try:
            inputs.extend(str(p) for p in iter_inputs([item], recursive=args.recursive))
        except LibrefaceError as e:
            print(f"libreface: {e}", file=sys.stderr)
            failed += 1
    if not inputs:
        return 1
    unique: dict[str, str] = {}  # a file given twice (say, a folder and a list naming it) is analysed once
    for src in inputs:
        unique.setdefault(src if src.isdigit() else os.path.abspath(src), src)
    inputs = list(unique.values())
    if len(inputs) > 1 and args.output is not None and args.output.suffix.lower() == ".csv":  # a folder gave several
        print(f"libreface: --output {args.output} is a CSV file, but the inputs give {len(inputs)} files; "
              "give a folder for their CSVs", file=sys.stderr)
        return 2
    jobs = _outputs_for(args, inputs)
    if args.jobs > 1 and len(jobs) > 1:
        from concurrent.futures import ProcessPoolExecutor
        import multiprocessing as mp

        from .models.session import default_threads

        n = min(args.jobs, len(jobs))
        threads = args.threads or max(1, default_threads() // n)
        quiet_args = argparse.Namespace(**{**vars(args), "quiet": True})
        with ProcessPoolExecutor(n, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                                 initargs=(quiet_args, threads)) as pool:
            for src, err in pool.map(_worker_run, [(s, c, f, quiet_args) for s, c, f in jobs]):
                if err:
                    print(f"libreface: {err}", file=sys.stderr)
                    failed += 1
                elif not args.quiet:
                    print(f"{src}: done", file=sys.stderr)
        return 1 if failed else 0

    from .pipeline import Analyzer

    with Analyzer(_options(args, args.threads)) as analyzer:
        for src, csv, fpath in jobs:
            err = _run_one(analyzer, args, src, csv, fpath)
            if err:
                print(f"libreface: {err}", file=sys.stderr)
                failed += 1
    return 1 if failed else 0


def info(argv: list[str] | None = None) -> int:
    """`libreface info`: versions, the weights folder, every model with its sha256 check, threads."""
    import importlib.metadata as md

    from .models.registry import _manifest, default_model, verify, weights_dir
    from .models.session import default_threads

    print(f"libreface {__version__}")
    for pkg in ("onnxruntime", "mediapipe", "av", "numpy", "pandas"):
        try:
            print(f"  {pkg} {md.version(pkg)}")
        except md.PackageNotFoundError:
            print(f"  {pkg} (not installed)")
    folder = weights_dir()
    print(f"weights: {folder}")
    bad = 0
    default = default_model()
    for name, entry in sorted(_manifest(str(folder)).items()):
        if not (folder / entry.file).is_file() and name != default and entry.kind != "landmarker":
            continue  # not installed (a wheel ships the default only): listed nowhere
        try:
            verify(name)
            state = "ok"
        except LibrefaceError as e:
            state = f"FAILED: {e}"
            bad += 1
        mark = " (default)" if name == default else ""
        print(f"  {name:22s} {entry.kind:10s} {entry.file:28s} sha256 {entry.sha256[:16]}… {state}{mark}")
    print(f"threads: {default_threads()} (ONNX Runtime intra-op default)")
    return 1 if bad else 0


def _require_extras(args: argparse.Namespace) -> None:
    """Fail before the analysis, in one line naming the extra, when an option's optional dependency is missing."""
    from .extras import require

    if args.identity:
        for module in ("dlib", "sklearn.cluster"):
            require(module, "identity", "--identity")
    if args.features is not None and args.features.suffix.lower() in (".parquet", ""):
        require("pyarrow.parquet", "parquet", f"--features {args.features}")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING, format="libreface: %(message)s")
    debug = "--debug" in argv
    if debug:
        os.environ["LIBREFACE_DEBUG"] = "1"  # the library and batch workers then show MediaPipe's native logs
    else:
        from .quiet import quiet_native_logs

        quiet_native_logs()
    try:
        if argv and argv[0] == "info":
            return info(argv[1:])
        if argv and argv[0] == "batch":
            from .batch import batch_command

            return batch_command(argv[1:])
        if argv and argv[0] == "collect":
            from .collect import collect_command

            return collect_command(argv[1:])
        if argv and argv[0] == "crop":
            from .crop import crop_main

            return crop_main(argv[1:])
        if argv and argv[0] == "report":
            from .report.command import report_command

            return report_command(argv[1:])
        if argv and argv[0] == "elan":
            from .export.command import elan_command

            return elan_command(argv[1:])
        args = build_parser().parse_args(argv)
        if len(args.inputs) > 1 and args.output is not None and args.output.suffix.lower() == ".csv":
            build_parser().error("--output must be a folder when there are several inputs")
        if not (args.model.endswith(".onnx") and Path(args.model).is_file()) and args.model not in _models_or_empty():
            build_parser().error(f"unknown model {args.model!r}; available: {', '.join(_models_or_empty())} or an .onnx file")
        if args.subject != "all" and not args.identity:
            build_parser().error("--subject needs --identity")
        if args.subject not in ("all", "main") and not args.subject.isdigit():
            build_parser().error(f"--subject must be 'main', 'all' or a person_id (0, 1, ...), got {args.subject!r}")
        if args.identity and args.resume:
            build_parser().error("--resume cannot be combined with --identity (identities are resolved over the whole recording)")
        if args.format == "openface" and args.blendshapes:
            build_parser().error("--blendshapes is only available with --format native")
        _require_extras(args)
        if args.report:  # before the analysis, not after an hour of it
            from .report.figures import require_matplotlib

            require_matplotlib()
        return _analyze(args)
    except KeyboardInterrupt:
        print("libreface: interrupted; partial results are in the .partial files; rerun with --resume to continue",
              file=sys.stderr)
        return 130
    except LibrefaceError as e:
        if debug:
            raise
        print(f"libreface: {e}", file=sys.stderr)
        return 1
    except ImportError as e:  # an optional extra that is not installed: its message says what to install
        if debug:
            raise
        print(f"libreface: {str(e).splitlines()[0]}", file=sys.stderr)
        return 1
    except Exception as e:  # noqa: BLE001 - last line of defence, one line unless --debug
        if debug:
            raise
        print(f"libreface: internal error: {type(e).__name__}: {e} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
