"""`libreface-distill` / `python -m distill`: prepare, pretrain-mae, train-teacher, train-student, evaluate,
export, finetune-heads.

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
    from .data import LOADERS
    from .data.prepare import prepare
    from .paths import cache_dir

    for name, root in args.dataset:
        if name not in LOADERS:
            raise SystemExit(f"libreface-distill: unknown dataset {name!r}; known: {', '.join(sorted(LOADERS))}")
        out = (args.out or cache_dir() / "prepared") / name
        report = prepare(LOADERS[name](Path(root)), out, size=args.size, on_miss=args.on_miss, jobs=args.jobs, limit=args.limit)
        print(f"{name}: {report['splits']} -> {out}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from .train import TrainConfig, train

    cfg = TrainConfig.from_yaml(args.config, epochs=args.epochs, limit=args.limit, threads=args.threads)
    if args.stage and cfg.stage != args.stage:
        raise SystemExit(f"libreface-distill: {args.config} is a {cfg.stage!r} config, not {args.stage!r}")
    print(train(cfg))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="libreface-distill", description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("prepare", help="landmark + align every training image with the runtime's own code; cache crops")
    q.add_argument("--dataset", nargs=2, action="append", metavar=("NAME", "ROOT"), required=True,
                   help="dataset layout name (ferplus, ckplus, fer2013, affectnet, disfa, bp4d) and its folder; repeatable")
    q.add_argument("--size", type=int, default=64, help="crop side in pixels (the students' input size)")
    q.add_argument("--on-miss", choices=["mean-face", "drop"], default="mean-face", help="rule for faces the landmarker misses")
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
        q.set_defaults(func=_train, stage=stage)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
