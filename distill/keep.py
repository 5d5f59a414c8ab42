"""A training run as one file that can be committed (`distill keep`), and back (`distill recover KEPT.pt`).

Checkpoints live in the cache outside git (`<cache>/runs/<name>/`), and a new machine starts with an empty cache: the
hours of a teacher or of an MAE pretraining stay on the machine that trained them. Students come back from their
shipped fp32 ONNX files (`distill.export.recover_run`); a teacher and an unfinished run have no such file. `keep`
writes what is needed to use or continue a run to `weights/kept/<name>.pt`:

* its config, per-epoch history, calibration and `done.json` (text);
* the weights of its chosen checkpoint (`best.pt`, what a student learns from) in float16;
* for a run that has not finished its schedule, its resume point: the weights of `last.pt` (float16), the epoch, the
  best score and the random-number states; the AdamW moments are left out (they would triple the file): training
  resumed from a kept file restarts them and says so;
* the pretraining snapshots asked for (`--snapshot 50`), e.g. the one a teacher's fine-tune starts from.

Float16 keeps ~3 significant digits of each weight (`tests/test_keep.py` bounds what that changes in a teacher's
outputs). The MAE ViT (6.4 M encoder parameters, its decoder and heads) takes ~13 MiB per kept set of weights: a
teacher or a resume point, and each snapshot asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ._torch import torch
from .paths import WEIGHTS
from .runs import history, run_dir, snapshot_path

FORMAT = "libreface-kept-run/1"
KEPT = WEIGHTS / "kept"


def _half(state: dict) -> dict:
    """Floating tensors to float16 (integers, e.g. batch-norm counters, unchanged)."""
    return {k: v.detach().to("cpu", torch.float16) if v.is_floating_point() else v.detach().cpu() for k, v in state.items()}


def _float(state: dict) -> dict:
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def keep_run(name: str, snapshots: list[int] | None = None, out: Path | None = None) -> Path:
    """Write run `name` (from `<cache>/runs/<name>/`) to `<out>/<name>.pt` (default `weights/kept/`); returns the path.

    A finished run keeps its `best.pt` weights; an unfinished one also its resume point (`last.pt`'s weights, epoch,
    best score, random states; no optimiser moments). `snapshots`: pretraining epochs whose `snapshot_e*.pt` to keep.
    Raises FileNotFoundError naming the run folder when there is nothing to keep.
    """
    d = run_dir(name)
    if not (d / "config.yaml").exists() or not ((d / "best.pt").exists() or (d / "last.pt").exists()):
        raise FileNotFoundError(f"{d}: no trained run {name!r} here (config.yaml and best.pt or last.pt)")
    done = json.loads((d / "done.json").read_text()) if (d / "done.json").exists() else None
    kept: dict = {"format": FORMAT, "run": name, "config": (d / "config.yaml").read_text(), "history": history(name),
                  "done": done, "snapshots": {}}
    if (d / "calibration.json").exists():
        kept["calibration"] = (d / "calibration.json").read_text()
    finished = done is not None
    mae = yaml.safe_load(kept["config"]).get("stage") == "mae"
    if (d / "best.pt").exists() and not mae:  # an MAE run's "best" is its lowest loss: not a model anyone uses
        best = torch.load(d / "best.pt", map_location="cpu", weights_only=False)
        kept["best"] = {"model": _half(best["model"]), "epoch": best.get("epoch"), "score": best.get("score")}
    if not finished or mae:
        last = torch.load(d / "last.pt", map_location="cpu", weights_only=False)
        kept["resume"] = {"model": _half(last["model"]), "epoch": last["epoch"], "best": last["best"],
                          "torch_rng": last["torch_rng"], "np_rng": last["np_rng"]}
    for epoch in snapshots or []:
        path = snapshot_path(name, epoch)
        if not path.exists():
            raise FileNotFoundError(f"{path}: run {name!r} has no snapshot at epoch {epoch}")
        snap = torch.load(path, map_location="cpu", weights_only=False)
        kept["snapshots"][epoch] = {**snap, "model": _half(snap["model"])}
    out_path = Path(out or KEPT) / f"{name}.pt"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".partial")
    torch.save(kept, tmp)
    tmp.replace(out_path)
    return out_path


def restore_run(path: Path) -> Path:
    """Rebuild `<cache>/runs/<name>/` from a file written by `keep_run`; returns the run folder.

    Writes config.yaml, history.jsonl, calibration.json and done.json as kept; `best.pt` from the kept weights;
    for an unfinished run a `last.pt` without optimiser moments (`distill.train` then restarts AdamW's moments and
    says so); the kept snapshots. An existing run folder with checkpoints is never overwritten (ValueError).
    """
    path = Path(path)
    kept = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(kept, dict) or kept.get("format") != FORMAT:
        raise ValueError(f"{path}: not a kept run (no '{FORMAT}' format tag); make one with `distill keep RUN`")
    name = kept["run"]
    d = run_dir(name)
    if (d / "last.pt").exists() or (d / "best.pt").exists():
        raise ValueError(f"{d}: run {name!r} already has checkpoints here; move them away to restore {path}")
    d.mkdir(parents=True, exist_ok=True)
    (d / "config.yaml").write_text(kept["config"])
    (d / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept["history"]))
    if kept.get("calibration"):
        (d / "calibration.json").write_text(kept["calibration"])
    best = {**kept["best"], "model": _float(kept["best"]["model"])} if "best" in kept else None
    if best:
        torch.save(best, d / "best.pt")
    if "resume" in kept:
        torch.save({**kept["resume"], "model": _float(kept["resume"]["model"]), "kept_from": str(path)}, d / "last.pt")
    elif best:  # a finished run: its chosen weights stand for the last ones too
        torch.save(best, d / "last.pt")
    for epoch, snap in kept["snapshots"].items():
        torch.save({**snap, "model": _float(snap["model"])}, snapshot_path(name, int(epoch)))
    if kept.get("done") is not None:
        (d / "done.json").write_text(json.dumps({**kept["done"], "restored_from": str(path)}, indent=1))
    return d
