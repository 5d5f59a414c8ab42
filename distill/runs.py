"""Training runs on disk: `<cache>/runs/<name>/` (config, checkpoints, snapshots, `done.json`), the device a run trains
on, and the networks a run's config builds (`build_model`) and loads back (`load_run`)."""

from __future__ import annotations

import json
from pathlib import Path

from ._torch import torch
from .config import TrainConfig
from .labels import au_set
from .paths import cache_dir


def run_dir(name: str) -> Path:
    return cache_dir() / "runs" / name


def snapshot_path(name: str, epoch: int) -> Path:
    """`<cache>/runs/<name>/snapshot_e<epoch, 4 digits>.pt` (keys: model, epoch, wall_seconds, cpu_seconds: the
    run's time so far; on a shared machine CPU seconds / threads is about the wall time the run would take alone)."""
    return run_dir(name) / f"snapshot_e{epoch:04d}.pt"


def resolve_device(device: str) -> "torch.device":
    """"auto" -> cuda where torch sees a GPU, else cpu; "cuda" without a GPU is an error."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda asked for, but torch sees no GPU (torch.cuda.is_available() is False)")
    return torch.device(device)


def device_label(dev: "torch.device") -> str:
    """"cpu", or "cuda (<GPU name>)" for the history records and the model card."""
    return "cpu" if dev.type == "cpu" else f"cuda ({torch.cuda.get_device_name(dev)})"


def _cpu(obj):
    """A state dict (nested dicts / lists of tensors) with every tensor on the CPU: checkpoints load anywhere."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_cpu(v) for v in obj)
    return obj


def finished(name: str) -> dict:
    """Run `name`'s `done.json` ({} while it is unfinished): epochs, best score and `wall_seconds` (the sum of its
    epochs' times) for a trained run; `recovered_from` (and `wall_seconds` when its ONNX card kept it) for a run
    rebuilt by `distill recover`."""
    path = run_dir(name) / "done.json"
    return json.loads(path.read_text()) if path.exists() else {}


def history(name: str) -> list[dict]:
    """Run `name`'s per-epoch records (`history.jsonl`; [] before its first epoch or for a recovered run)."""
    path = run_dir(name) / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def trained_on(name: str) -> list[str]:
    """The devices run `name` trained on, in order of first use (`device_label`s from its history; epochs recorded
    before histories named their device ran on the CPU). A run rebuilt by `distill recover` has no history: the
    devices its ONNX card carried (`done.json`), else []."""
    rows = history(name)
    if rows:
        return list(dict.fromkeys(r.get("device", "cpu") for r in rows))
    return list(finished(name).get("devices", []))


def where_trained(devices: list[str], threads: int = 2) -> str:
    """Words for a model card: "2 CPU cores", "one NVIDIA H200 GPU", "2 CPU cores and one NVIDIA H200 GPU"
    (no full stops or parentheses: cards are parsed back by `distill.cards`); "" when unknown."""
    words = []
    for d in devices:
        if d == "cpu":
            words.append(f"{threads} CPU cores")
        elif d.startswith("cuda"):
            words.append(f"one {d.removeprefix('cuda').strip(' ()') or 'CUDA'} GPU")
        else:
            words.append(d)
    return " and ".join(words)


def build_model(cfg_or_arch: TrainConfig | str, stage: str | None = None):
    from .students import STUDENTS, create_student
    from .teachers import create_teacher

    arch = cfg_or_arch.arch if isinstance(cfg_or_arch, TrainConfig) else cfg_or_arch
    aus = au_set(cfg_or_arch.aus if isinstance(cfg_or_arch, TrainConfig) else "disfa")
    heads = {"n_au": len(aus.intensity), "n_occ": len(aus.occurrence)}
    return create_student(arch, **heads) if arch in STUDENTS else create_teacher(arch, **heads)


def load_run(name: str, which: str = "best"):
    """(model in eval mode, config) of a finished or running run."""
    import yaml

    d = run_dir(name)
    cfg = TrainConfig(**yaml.safe_load((d / "config.yaml").read_text()))
    model = build_model(cfg)
    path = d / f"{which}.pt"
    if not path.exists():
        path = d / "last.pt"
    state = torch.load(path, map_location="cpu", weights_only=False)
    model.load_state_dict(state["model"])
    model.eval()
    return model, cfg
