"""`libreface-distill` / `python -m distill`: prepare, pretrain-mae, train-teacher, train-student, evaluate,
export, recover, keep, finetune-heads, add-aus, au-sources, scaling, au-geometry, robustness, pack.

Every stage reads a YAML config (see `distill/configs/`), writes into the cache folder (outside git,
`$LIBREFACE_CACHE`, default `~/.cache/libreface`) and resumes from its last checkpoint when run again.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _prepare(args: argparse.Namespace) -> int:
    from .data import LOADERS, ON_MISS
    from .data.prepare import prepare
    from .paths import cache_dir

    for name, root in args.dataset:
        if name not in LOADERS:
            raise SystemExit(f"libreface-distill: unknown dataset {name!r}; known: {', '.join(sorted(LOADERS))}")
        on_miss = args.on_miss or ON_MISS.get(name, "mean-face")
        if name in ON_MISS and on_miss != ON_MISS[name]:
            raise SystemExit(f"libreface-distill: {name}: --on-miss must be {ON_MISS[name]!r} (unlabelled records)")
        kwargs = {"fps": args.fps} if name == "videos" and args.fps is not None else {}
        records = LOADERS[name](Path(root), **kwargs)
        out = (args.out or cache_dir() / "prepared") / name
        report = prepare(records, out, size=args.size, on_miss=on_miss, jobs=args.jobs, limit=args.limit)
        print(f"{name}: {report['splits']} -> {out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    cfg = TrainConfig.from_yaml(args.config, epochs=args.epochs, limit=args.limit, threads=args.threads,
                                max_minutes=args.max_minutes, device=args.device,
                                prepared=str(args.prepared) if args.prepared else None, init_from=args.init_from)
    if args.stage and cfg.stage != args.stage:
        raise SystemExit(f"libreface-distill: {args.config} is a {cfg.stage!r} config, not {args.stage!r}")
    print(train(cfg))
    return 0


def _pack(args: argparse.Namespace) -> int:
    from .pack import pack
    from .paths import cache_dir

    result = pack(args.prepared or cache_dir() / "prepared", args.out, quality=None if args.quality == "lossless"
                  else int(args.quality), max_mib=args.max_mib)
    print(f"{args.out}: {result['mib']} MiB, {result['rows']} faces, images {result['images']} "
          f"(mean abs. pixel error {result['mean_abs_error']})")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import report

    result = report(args.runs, args.onnx, args.out, prepared=args.prepared, threads=args.threads, ensemble=args.ensemble,
                    split=args.split, aus=args.aus)
    from .evaluate import markdown

    print(markdown(result))
    return 0


def _export(args: argparse.Namespace) -> int:
    from .export import export

    from .paths import WEIGHTS

    for path in export(args.run, args.name or args.run, weights_dir=args.weights or WEIGHTS, calib=args.calib):
        print(path)
    return 0


def _recover(args: argparse.Namespace) -> int:
    if args.source.suffix == ".pt":
        from .keep import restore_run

        try:
            print(restore_run(args.source))
        except (FileNotFoundError, ValueError) as e:
            raise SystemExit(f"distill recover: {e}") from None
        return 0
    from .export import recover_run

    if args.config is None:
        raise SystemExit(f"distill recover: {args.source}: an ONNX student needs the YAML config it was trained with")
    print(recover_run(args.source, args.config))
    return 0


def _keep(args: argparse.Namespace) -> int:
    from .keep import keep_run

    try:
        path = keep_run(args.run, args.snapshot, args.out)
    except FileNotFoundError as e:
        raise SystemExit(f"distill keep: {e}") from None
    print(f"{path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0


def _smoke(args: argparse.Namespace) -> int:
    from .evaluate import markdown
    from .smoke import run

    result = run(args.out)
    print(markdown(result))
    print(f"smoke chain finished in {result['seconds']} s; weights: {', '.join(result['weights'])}")
    return 0


def _finetune(args: argparse.Namespace) -> int:
    from .finetune import finetune_heads

    summary = finetune_heads(args.model, args.features, args.labels, args.out, epochs=args.epochs, l2=args.l2)
    print(f"{args.out}: {summary}")
    return 0


def _add_aus(args: argparse.Namespace) -> int:
    from .add_aus import add_aus, markdown

    result = add_aus(args.base, args.name, args.out, prepared=args.prepared, threads=args.threads,
                     videos=args.videos or None, write=not args.dry_run)
    print(markdown(result))
    print(result.get("weights", "dry run: nothing written to weights/"))
    return 0


def _au_sources(args: argparse.Namespace) -> int:
    import json

    from libreface.errors import ModelError
    from libreface.weights import verify

    from .au_sources import apply_sources, choose_sources, markdown
    from .export import update_manifest

    for path in [args.model, *args.videos] + ([Path(args.donor)] if args.donor.endswith(".onnx") else []):
        if not path.is_file():
            raise SystemExit(f"{path}: no such file")
    try:
        donor = Path(args.donor) if args.donor.endswith(".onnx") else verify(args.donor)
    except (ModelError, ValueError) as e:  # a file that fails its check / a name not in the manifest
        raise SystemExit(str(e)) from None
    decision = choose_sources(args.model, donor, args.videos, threads=args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "au_sources.json").write_text(json.dumps(decision, indent=1, default=float))
    (args.out / "au_sources.md").write_text(markdown(decision))
    print(markdown(decision))
    if not args.dry_run:
        apply_sources(args.model, decision)
        manifest = args.model.parent / "manifest.json"
        entry = [m for m in json.loads(manifest.read_text())["models"] if m["file"] == args.model.name] \
            if manifest.exists() else []
        if entry:  # the file's sha256 changed with its card
            update_manifest([{k: entry[0][k] for k in ("name", "file", "kind")}], args.model.parent)
        print(f"{args.model}: card updated")
    return 0


def _scaling(args: argparse.Namespace) -> int:
    from .scaling import BAR_HISTORY, SWIN_HISTORIES, HistorySpec, study
    from .scaling_report import write_report

    swin = None
    if args.swin is not None:
        swin = []
        for item in args.swin:
            path, *rest = item.split(":")
            wall = float(rest[1]) if len(rest) > 1 else 0.0
            swin.append(HistorySpec(path, int(rest[0]) if rest else 0, wall, cpu_offset_s=None if wall else 0.0))
    result = study(args.mae, swin if swin is not None else SWIN_HISTORIES, args.bar or BAR_HISTORY,
                   prepared=args.prepared, finetune=args.finetune, threads=args.threads,
                   finetune_epochs=args.finetune_epochs, teachers=args.teachers)
    for path in write_report(result, args.out):
        print(path)
    return 0


def _au_geometry(args: argparse.Namespace) -> int:
    from .au_geometry_report import markdown, measure, write_report
    from .paths import cache_dir

    result = measure(args.ckplus, args.prepared or cache_dir() / "prepared", args.landmarks)
    print(markdown(result))
    for path in write_report(result, args.out):
        print(path)
    return 0


def _cards(args: argparse.Namespace) -> int:
    from .cards import write_card
    from .paths import WEIGHTS

    for run in args.runs:
        stem, version = run.rsplit(".", 1)
        onnx = [f"{run}.onnx", f"{stem}_int8.{version}.onnx"]
        for name in (run, f"{stem}_int8.{version}"):
            print(write_card(name, run, args.report, args.out or WEIGHTS / "cards", onnx))
    return 0


def _robustness(args: argparse.Namespace) -> int:
    from .robustness import markdown, report

    result = report(args.onnx, args.out, split=args.split, prepared=args.prepared, threads=args.threads, seed=args.seed,
                    limit=args.limit, **({"yaw_edges": tuple(args.yaw_edges)} if args.yaw_edges else {}))
    print(markdown(result))
    print(f"{args.out / 'robustness.json'}, {args.out / 'robustness.md'} ({result['seconds']} s)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="libreface-distill", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("prepare", help="landmark + align every training image with the runtime's own code; cache crops")
    q.add_argument("--dataset", nargs=2, action="append", metavar=("NAME", "ROOT"), required=True,
                   help="dataset layout name (ferplus, ckplus, fer2013, affectnet, disfa, bp4d, videos) and its folder; "
                        "repeatable")
    q.add_argument("--size", type=int, default=64, help="crop side in pixels (the students' input size)")
    q.add_argument("--on-miss", choices=["mean-face", "drop"], default=None,
                   help="rule for faces the landmarker misses (default: drop for videos, mean-face for the others)")
    q.add_argument("--fps", type=float, default=None,
                   help="videos: frames sampled per second of video time (default: distill.data.videos.DEFAULT_FPS, 2)")
    q.add_argument("--jobs", type=int, default=2, help="landmarker processes")
    q.add_argument("--limit", type=int, default=None, help="only the first N records (smoke runs)")
    q.add_argument("--out", type=Path, default=None, help="output folder (default: <cache>/prepared)")
    q.set_defaults(func=_prepare)

    for cmd, stage, helptext in (
        ("pretrain-mae", "mae", "masked-autoencoder pretraining of the ViT teacher on the face crops"),
        ("train-teacher", "teacher", "train a teacher (Swin, or the MAE ViT fine-tuned) on the tasks"),
        ("train-student", "student", "train a ResNet student with feature-wise distillation (or without: the ablation)"),
    ):
        q = sub.add_parser(cmd, help=helptext)
        q.add_argument("config", type=Path, help="YAML config (see distill/configs/)")
        q.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
        q.add_argument("--limit", type=int, default=None, help="only the first N training rows")
        q.add_argument("--threads", type=int, default=None, help="torch threads")
        q.add_argument("--max-minutes", type=float, default=None,
                       help="stop after the epoch during which this wall-clock budget ran out (resumable; no done.json)")
        q.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                       help="override the config's device (auto: a GPU where torch sees one)")
        q.add_argument("--prepared", type=Path, default=None,
                       help="prepared-data folder, e.g. an unpacked `pack` folder (default: the config's, else <cache>/prepared)")
        q.add_argument("--init-from", default=None, metavar="RUN[@EPOCH]",
                       help="override the config's init_from (e.g. the CPU MAE run instead of the GPU one)")
        q.set_defaults(func=_train, stage=stage)
    q = sub.add_parser("evaluate", help="JSON + Markdown report: FER+, CK+ held-out subjects, per-AU AUC/F1, speed")
    q.add_argument("--runs", nargs="*", default=[], help="training runs (torch checkpoints) to evaluate")
    q.add_argument("--onnx", nargs="*", type=Path, default=[], help="exported ONNX students to evaluate (and time)")
    q.add_argument("--out", type=Path, default=Path("reports"), help="report folder")
    q.add_argument("--prepared", type=Path, default=None, help="prepared-data folder (default: <cache>/prepared)")
    q.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads for evaluation and timing")
    q.add_argument("--ensemble", nargs="*", default=[], metavar="ONNX_OR_RUN",
                   help="ONNX files and/or training runs whose averaged outputs are reported as one more model (are "
                        "they better together? what is the averaged signal of a student's teachers worth?)")
    q.add_argument("--split", choices=["test", "valid"], default="test",
                   help="test: FER+ Test + CK+ test subjects (reported once per shipped model); valid: FER+ Valid + CK+ "
                        "validation subjects (what models, thresholds and sources are chosen on)")
    q.add_argument("--aus", choices=["disfa", "openface"], default="disfa",
                   help="AUs scored against the human CK+ codes: DISFA's 12 (every model) or OpenFace's set (models "
                        "that carry it: adds AU07, AU10, AU14, AU23)")
    q.set_defaults(func=_evaluate)

    q = sub.add_parser("export", help="ONNX fp32 + static int8 in the runtime's model contract, into weights/")
    q.add_argument("run", help="training run to export (its best checkpoint)")
    q.add_argument("--name", default=None, help="model name, e.g. au_r18.v1 (default: the run name)")
    q.add_argument("--weights", type=Path, default=None, help="weights folder (default: the repo's weights/)")
    q.add_argument("--calib", type=int, default=1024, help="training crops used to calibrate int8")
    q.set_defaults(func=_export)

    q = sub.add_parser("recover", help="rebuild a run in the cache: a student from its shipped fp32 ONNX file, or any "
                                        "run from its `keep` file")
    q.add_argument("source", type=Path, help="fp32 ONNX file in weights/ (e.g. weights/au_r10t.v2.onnx), or a kept run "
                                             "(weights/kept/<run>.pt)")
    q.add_argument("config", type=Path, nargs="?", default=None, help="for an ONNX file: the YAML config it was trained with")
    q.set_defaults(func=_recover)

    q = sub.add_parser("keep", help="a run (teacher, unfinished pretraining) as one committed file: weights/kept/<run>.pt")
    q.add_argument("run", help="run name in the cache, e.g. teacher_mae_deit.v3")
    q.add_argument("--snapshot", type=int, nargs="*", default=[], help="pretraining snapshot epochs to keep too")
    q.add_argument("--out", type=Path, default=None, help="folder (default: the repo's weights/kept/)")
    q.set_defaults(func=_keep)

    q = sub.add_parser("finetune-heads", help="refit the expression / AU-occurrence heads on stored features + labels")
    q.add_argument("--model", default="default", help="base student: a registered name or an .onnx path")
    q.add_argument("--features", type=Path, required=True, help="features file written by `libreface --features`")
    q.add_argument("--labels", type=Path, required=True, help="CSV: frame, face_id, expression[, AU01, ...] (0/1)")
    q.add_argument("--out", type=Path, required=True, help="the fine-tuned student (.onnx)")
    q.add_argument("--epochs", type=int, default=300, help="optimiser steps")
    q.add_argument("--l2", type=float, default=1e-2, help="pull towards the shipped heads")
    q.set_defaults(func=_finetune)

    q = sub.add_parser("add-aus", help="add OpenFace's remaining AUs (7, 10, 14, 23, 28, 45) to a student, source by measurement")
    q.add_argument("--base", default="au_r10t_int8.v6", help="12-AU student: a registered name or an .onnx path")
    q.add_argument("--name", required=True, help="name of the new model, e.g. au_r10t_int8.v7 (written to weights/)")
    q.add_argument("--out", type=Path, default=Path("reports/aus17"), help="report folder")
    q.add_argument("--prepared", type=Path, default=None, help="prepared-data folder (default: <cache>/prepared)")
    q.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    q.add_argument("--videos", type=Path, nargs="*", default=[],
                   help="videos for AU45's eye-aspect-ratio reference (default: none, AU45 unmeasured)")
    q.add_argument("--dry-run", action="store_true", help="measure and report, write nothing into weights/")
    q.set_defaults(func=_add_aus)

    q = sub.add_parser("au-sources", help="AU45/AU28 of a student with OpenFace heads: its heads or an earlier "
                       "model's blendshape mapping, by measurement (edits the card only)")
    q.add_argument("--model", type=Path, required=True, help="the student's .onnx file (card edited in place)")
    q.add_argument("--from", dest="donor", default="au_r10t_int8.v7",
                   help="model whose card holds the calibrated mapping: a registered name or an .onnx path")
    q.add_argument("--videos", type=Path, nargs="*", default=[],
                   help="videos for AU45's eye-aspect-ratio reference (default: none, the mapping is kept)")
    q.add_argument("--out", type=Path, default=Path("reports/au_sources"), help="report folder")
    q.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    q.add_argument("--dry-run", action="store_true", help="measure and report, leave the model as it is")
    q.set_defaults(func=_au_sources)

    q = sub.add_parser("cards", help="write weights/cards/<model>.md from an evaluation report")
    q.add_argument("runs", nargs="+", help="exported student runs, e.g. au_r18.v1")
    q.add_argument("--report", type=Path, nargs="+", default=[Path("reports/metrics.json")],
                   help="metrics.json of `evaluate`; several are merged, a later one's row replacing an earlier one's")
    q.add_argument("--out", type=Path, default=None, help="cards folder (default: weights/cards)")
    q.set_defaults(func=_cards)

    q = sub.add_parser("scaling", help="FER+ valid accuracy of the teachers against epochs and wall time; fit; stop/continue")
    q.add_argument("--mae", nargs="*", default=["pretrain_mae.v2"], help="MAE runs whose snapshots are probed")
    q.add_argument("--swin", nargs="*", default=None, metavar="JSONL[:EPOCH_OFFSET[:WALL_OFFSET_S]]",
                   help="Swin per-epoch histories (default: reports/v5/history_teacher_swin.v3.jsonl after teacher_swin.v2)")
    q.add_argument("--bar", default=None, help="the best student's history jsonl (default: reports/v6/history_au_r10t.v6.jsonl)")
    q.add_argument("--finetune", type=Path, nargs="+", default=None, metavar="CONFIG",
                   help="probe the snapshots by these fine-tune configs (e.g. distill/configs/teacher_mae_probe.yaml), "
                        "a curve per config beside the linear probe")
    q.add_argument("--finetune-epochs", nargs="*", type=int, default=None, metavar="EPOCH",
                   help="with --finetune: the snapshots to fine-tune (default: every one; each fine-tune is a run "
                        "of its own, reused once finished and kept on its curve)")
    q.add_argument("--teachers", nargs="*", default=[], metavar="RUN",
                   help="teacher runs whose own per-epoch history is a curve (e.g. the real fine-tune "
                        "teacher_mae_deit.v2, finished or still training; read, never trained here)")
    q.add_argument("--prepared", type=Path, default=None, help="prepared-data folder (default: <cache>/prepared)")
    q.add_argument("--threads", type=int, default=2, help="torch threads")
    q.add_argument("--out", type=Path, default=Path("reports/scaling"), help="report folder")
    q.set_defaults(func=_scaling)

    q = sub.add_parser("au-geometry", help="AU4/AU9/AU26 from landmark geometry vs blendshapes, AUC on CK+ validation subjects")
    q.add_argument("--ckplus", type=Path, default=Path("../shared/data/ckplus48"), help="CK+ folder with the AU csv")
    q.add_argument("--prepared", type=Path, default=None, help="prepared-data folder with ferplus/train.npz (default: <cache>/prepared)")
    q.add_argument("--landmarks", type=Path, default=None, help=".npz cache of the landmarker's output (reused if present)")
    q.add_argument("--out", type=Path, default=Path("reports/au_geometry"), help="report folder")
    q.set_defaults(func=_au_geometry)

    q = sub.add_parser("robustness", help="expression accuracy / macro-F1 / per-class recall under real head yaw and "
                                          "synthetic yaw, occlusion and lighting (FER+ valid by default)")
    q.add_argument("--onnx", nargs="+", type=Path, required=True,
                   help="ONNX students (fp32 or int8), e.g. one trained without and one with the augmentations")
    q.add_argument("--out", type=Path, default=Path("reports/robustness"), help="report folder")
    q.add_argument("--split", choices=["valid", "test"], default="valid",
                   help="valid: FER+ Valid, what models and augmentations are chosen on; test: FER+ Test, scored once "
                        "per shipped model (never to choose anything)")
    q.add_argument("--prepared", type=Path, default=None, help="prepared-data folder (default: <cache>/prepared)")
    q.add_argument("--threads", type=int, default=2, help="ONNX Runtime threads")
    q.add_argument("--seed", type=int, default=0, help="seed of the synthetic perturbations")
    q.add_argument("--limit", type=int, default=None, help="only the first N labelled faces (smoke runs)")
    q.add_argument("--yaw-edges", type=float, nargs="+", default=None, metavar="DEG",
                   help="|yaw| bin edges in degrees for the real-pose bins (default: robustness.YAW_EDGES_DEG, 15 30)")
    q.set_defaults(func=_robustness)

    q = sub.add_parser("pack", help="a self-contained prepared folder (<= 64 MiB: FER+ Train/Valid, CK+ train and "
                                    "validation subjects, videos; no test rows) for training on a GPU machine")
    q.add_argument("--out", type=Path, required=True, help="the pack folder (a valid prepared folder: --prepared DIR)")
    q.add_argument("--prepared", type=Path, default=None, help="prepared-data folder to pack (default: <cache>/prepared)")
    q.add_argument("--quality", default="95",
                   help="WebP quality of the grey crops (1-100, lossy), or 'lossless' (does not fit 64 MiB for the "
                        "full FER+ set)")
    q.add_argument("--max-mib", type=float, default=64.0, help="refuse to write a pack larger than this")
    q.set_defaults(func=_pack)

    q = sub.add_parser("smoke", help="the whole chain on generated fixtures in a few minutes (CI)")
    q.add_argument("--out", type=Path, required=True, help="folder for the fixtures, cache, weights and report")
    q.set_defaults(func=_smoke)
    return p


# what the train extra (and the CPU torch installed before it) provides; a stage missing one fails in one line
TRAIN_MODULES = {"torch", "timm", "yaml", "sklearn", "onnx", "onnxscript", "matplotlib"}


def main(argv: list[str] | None = None) -> int:
    from libreface.extras import MissingExtra, exit_missing, install_command

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MissingExtra as e:
        return exit_missing("libreface-distill", e)
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] not in TRAIN_MODULES:
            raise
        return exit_missing("libreface-distill", MissingExtra(
            f"{args.command} needs the train extra: {install_command('train')} ({e.name} is not installed)"))


if __name__ == "__main__":
    sys.exit(main())
