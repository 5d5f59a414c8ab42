"""Training loops: MAE pretraining, teacher training, student training with feature-wise distillation.

Every run lives in `<cache>/runs/<name>/`: `config.yaml`, `last.pt` (resumable: model, optimiser,
schedule, epoch, RNG), `best.pt` (best FER+ validation accuracy), `history.jsonl` (one line per
epoch, with wall time) and `done.json` when finished. Running the same command again resumes.

Data lives in memory as uint8 (the prepared crops are small); augmentation runs on whole batches in
torch. A run that distils (a student, or a teacher taught by finished students) reads its teachers'
outputs from `<cache>/runs/<teacher>/targets_train_<rows>.pt` (computed once for the original and the
mirrored crop), so distillation costs little more than training without it.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ._torch import seed_everything, torch
from .augment import AugmentOptions, balanced_order, class_weights, occlude, relight, yaw_warp
from .config import TrainConfig, prepared_dir, resolve_amp
from .dataset import Table, build_tables
from .labels import au_set, shared_au_columns
from .losses import FeatureDistiller, task_loss
from .metrics import task_metrics
from .predict import NORM_MEAN, NORM_STD, predict, to_input
from .runs import (_cpu, build_model, device_label, finished, history, load_run, resolve_device,  # noqa: F401
                   run_dir, snapshot_path, trained_on)
from .stopwatch import Stopwatch
from .teachers import math_attention

__all__ = ["TrainConfig", "build_model", "finished", "load_run", "prepared_dir", "resolve_amp", "run_dir",
           "snapshot_path", "train"]

F = torch.nn.functional


def param_groups(model, layer_decay: float | None, extra: list | None = None) -> list[dict]:
    """AdamW parameter groups, each with an `lr_scale`: one group (scale 1) without `layer_decay`; with it, one group
    per ViT depth (`ViTTeacher`: patch embedding = 0, block i = i + 1, the rest = L + 1, scale layer_decay ** (L + 1 -
    depth)). `extra` parameters (the distiller's) join the top group."""
    params = list(model.parameters()) + list(extra or [])
    if layer_decay is None:
        return [{"params": params, "lr_scale": 1.0}]
    blocks = getattr(getattr(model, "trunk", None), "blocks", None)
    if blocks is None or not hasattr(model.trunk, "patch_embed"):
        raise ValueError(f"layer_decay needs a ViT encoder (model.trunk.blocks); {type(model).__name__} has none")
    top = len(blocks) + 1
    groups: dict[int, list] = {}
    for name, p in model.named_parameters():
        if name.startswith(("trunk.patch_embed", "trunk.pos_embed", "trunk.cls_token", "trunk.reg_token")):
            depth = 0
        elif name.startswith("trunk.blocks."):
            depth = int(name.split(".")[2]) + 1
        else:
            depth = top
        groups.setdefault(depth, []).append(p)
    groups.setdefault(top, []).extend(extra or [])
    return [{"params": groups[d], "lr_scale": layer_decay ** (top - d)} for d in sorted(groups)]


# ---------------------------------------------------------------------------------------------
# batches and augmentation


def augment(images: torch.Tensor, mode: str, g: torch.Generator, flip: torch.Tensor | None = None,
            extra: AugmentOptions | None = None) -> torch.Tensor:
    """Augment a (B, S, S) uint8 batch; returns (B, 3, S, S) float32 model input.

    `flip` (B,) bool forces which rows are mirrored (the KD view); otherwise half, at random. `extra` adds the filming
    augmentations (yaw warp before the shift; relighting and occluders after the photometric jitter); switched-off ones
    draw no random numbers. Distillation targets stay those of the unwarped crop."""
    b, s, _ = images.shape
    x = images.float() / 255.0
    if flip is None:
        flip = torch.rand(b, generator=g) < 0.5
    x = torch.where(flip[:, None, None], x.flip(-1), x)
    if extra is not None and extra.yaw_deg > 0:
        x = yaw_warp(x, extra.yaw_deg, g, p=extra.yaw_p)
    shift = 4 if mode == "strong" else 2
    pad = F.pad(x[:, None], (shift,) * 4, mode="replicate")[:, 0]
    dx = torch.randint(0, 2 * shift + 1, (b,), generator=g)
    dy = torch.randint(0, 2 * shift + 1, (b,), generator=g)
    rows = (dy[:, None] + torch.arange(s)[None]).clamp(max=s + 2 * shift - 1)
    cols = (dx[:, None] + torch.arange(s)[None]).clamp(max=s + 2 * shift - 1)
    x = pad[torch.arange(b)[:, None, None], rows[:, :, None], cols[:, None, :]]
    contrast = 1 + (torch.rand(b, 1, 1, generator=g) - 0.5) * 0.6
    bright = (torch.rand(b, 1, 1, generator=g) - 0.5) * 0.3
    mean = x.mean(dim=(1, 2), keepdim=True)
    x = ((x - mean) * contrast + mean + bright).clamp(0, 1)
    if extra is not None and extra.lighting > 0:
        x = relight(x, extra.lighting, g)
    if extra is not None and extra.occlusion > 0:
        x = occlude(x, extra.occlusion, g, extra.occlusion_max_area)
    if mode == "strong":  # random erasing of one rectangle on a quarter of the batch
        erase = torch.rand(b, generator=g) < 0.25
        for i in torch.nonzero(erase).flatten().tolist():
            h = int(torch.randint(s // 8, s // 3, (1,), generator=g))
            w = int(torch.randint(s // 8, s // 3, (1,), generator=g))
            y0 = int(torch.randint(0, s - h, (1,), generator=g))
            x0 = int(torch.randint(0, s - w, (1,), generator=g))
            x[i, y0 : y0 + h, x0 : x0 + w] = torch.rand(1, generator=g)
    x = x.unsqueeze(1).expand(-1, 3, -1, -1)
    return (x - torch.tensor(NORM_MEAN).view(1, 3, 1, 1)) / torch.tensor(NORM_STD).view(1, 3, 1, 1)


def _batch_labels(t: Table, idx: np.ndarray, expr_weights: np.ndarray | None = None,
                  intensity_cols: list[int] | None = None) -> dict[str, torch.Tensor]:
    """Labels of rows `idx`; `expr_weights` (8,) class weights scale the expression target (class-weighted loss);
    `intensity_cols` picks the intensity head's AU columns of the table (`AUSet.intensity_cols`; default all)."""
    expr = t.expr[idx] if expr_weights is None else t.expr[idx] * expr_weights[None]
    au = t.au[idx] if intensity_cols is None else t.au[idx][:, intensity_cols]
    return {
        "expr": torch.from_numpy(expr),
        "expr_mask": torch.from_numpy(t.expr_mask[idx]),
        "au": torch.from_numpy(np.ascontiguousarray(au)),
        "occ": torch.from_numpy(t.occ[idx]),
        "occ_w": torch.from_numpy(t.occ_w[idx]),
    }


def epoch_order(t: Table, ck_oversample: int, rng: np.random.Generator,
                class_w: np.ndarray | None = None) -> np.ndarray:
    """Row indices of one epoch: every row once, CK+ rows `ck_oversample` times, shuffled; with `class_w` (8,) as
    many rows drawn with replacement, weighted by their expression's class weight (`augment.balanced_order`)."""
    if class_w is not None:
        mult = np.where(t.source == "ckplus", max(1, ck_oversample), 1).astype(np.float64)
        return balanced_order(mult, t.expr, t.expr_mask, class_w, rng)
    idx = np.arange(len(t))
    ck = idx[t.source == "ckplus"]
    order = np.concatenate([idx] + [ck] * max(0, ck_oversample - 1))
    rng.shuffle(order)
    return order


# ---------------------------------------------------------------------------------------------
# models and checkpoints


def _float32(out: dict) -> dict:
    """A model's outputs (tensors, or lists of stage maps) cast to float32, for the losses."""
    return {k: [m.float() for m in v] if isinstance(v, list) else v.float() for k, v in out.items()}


def _lr_at(step: int, total: int, warmup: int, base: float) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    p = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * min(1.0, p)))


# ---------------------------------------------------------------------------------------------
# teacher targets for distillation


@torch.no_grad()
def teacher_targets(teacher: str, images: np.ndarray, grids: list[int], batch: int = 256) -> dict:
    """Outputs of run `teacher` for the original (view 0) and mirrored (view 1) crops.

    Returns dict with `maps` [list per stage of (2, N, C, g, g) float16], `emb` (2, N, D),
    `expr_logits` (2, N, 8), `au_intensity` (2, N, A), `occ_prob` (2, N, K) (the teacher's `AUSet`), and `meta`.
    """
    model, tcfg = load_run(teacher)
    n = len(images)
    chunks: dict[str, list] = {}
    for view in (0, 1):
        for i in tqdm(range(0, n, batch), desc=f"targets {teacher} view {view}", leave=False):
            x = torch.from_numpy(images[i : i + batch])
            if view:
                x = x.flip(-1)
            out = model(to_input(x))
            maps = [F.adaptive_avg_pool2d(m, g).half() for m, g in zip(out["maps"], grids)]
            rec = {"emb": out["features"].half(), "expr_logits": out["expr_logits"].half(),
                   "au_intensity": out["au_intensity"].half(), "occ_prob": torch.sigmoid(out["occ_logits"]).half()}
            for k, v in rec.items():
                chunks.setdefault(f"{k}/{view}", []).append(v)
            for j, m in enumerate(maps):
                chunks.setdefault(f"map{j}/{view}", []).append(m)
    res = {k: torch.stack([torch.cat(chunks[f"{k}/0"]), torch.cat(chunks[f"{k}/1"])])
           for k in ("emb", "expr_logits", "au_intensity", "occ_prob")}
    res["maps"] = [torch.stack([torch.cat(chunks[f"map{j}/0"]), torch.cat(chunks[f"map{j}/1"])]) for j in range(len(grids))]
    res["meta"] = {"channels": [m.shape[2] for m in res["maps"]], "grids": grids, "dim": res["emb"].shape[-1],
                   "aus": tcfg.aus}
    return res


def _load_targets(teacher: str, table: Table, grids: list[int]) -> dict:
    """`teacher_targets` of `table`, cached beside the teacher; a cache older than the teacher's `best.pt` (a teacher
    still training, or trained again) or made for other grids is computed again."""
    path = run_dir(teacher) / f"targets_train_{len(table)}.pt"
    best = run_dir(teacher) / "best.pt"
    if path.exists() and (not best.exists() or path.stat().st_mtime >= best.stat().st_mtime):
        res = torch.load(path, weights_only=False)
        if list(res["meta"]["grids"]) == list(grids):
            return res
        print(f"{teacher}: cached targets were made for grids {res['meta']['grids']}, not {grids}: computed again")
    res = teacher_targets(teacher, table.images, grids)
    tmp = path.with_suffix(".partial")
    torch.save(res, tmp)
    tmp.replace(path)
    return res


# ---------------------------------------------------------------------------------------------
# the loop


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) one stage; returns the run folder."""
    import yaml

    t_start = time.time()
    out_dir = run_dir(cfg.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    recipe = {k: v for k, v in asdict(cfg).items() if k != "max_minutes"}  # the budget belongs to the call, not the run
    (out_dir / "config.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    if (out_dir / "done.json").exists():
        print(f"{cfg.name}: already finished ({out_dir / 'done.json'})")
        return out_dir
    g = seed_everything(cfg.seed, cfg.threads)
    rng = np.random.default_rng(cfg.seed)
    tables, cal = build_tables(prepared_dir(cfg), au_sources=cfg.au_sources or None, aus=cfg.aus)
    aset = au_set(cfg.aus)
    (out_dir / "calibration.json").write_text(cal.to_json())
    tr = tables["train"]
    if cfg.limit:
        tr = tr.subset(np.arange(min(cfg.limit, len(tr))))
    if cfg.extra_train:  # label-free pretraining on every face we may train on: FER+ Train + Valid and the CK+
        # training subjects (`train` already leaves out the CK+ validation and test subjects, dataset.ck_split)
        if missing := [s for s in cfg.extra_train if s not in tables]:
            raise FileNotFoundError(f"{prepared_dir(cfg)}: extra_train {missing} not prepared (`distill prepare`)")
        extra = [tables[s] for s in cfg.extra_train]
        if cfg.limit:
            extra = [t.subset(np.arange(min(cfg.limit, len(t)))) for t in extra]
        tr = Table.concat([tr, *extra])
    class_w = class_weights(tr.expr, tr.expr_mask, cfg.balance_power, cfg.balance_cap) if cfg.balance != "none" else None
    sampler_w = class_w if cfg.balance == "sampler" else None
    loss_w = class_w if cfg.balance == "loss" else None
    extra = cfg.augment_options if cfg.augment_options.active else None
    model = build_model(cfg)
    if cfg.init_from:
        run, _, snap_epoch = cfg.init_from.partition("@")  # "run" (its last.pt) or "run@25" (its epoch-25 snapshot)
        path = snapshot_path(run, int(snap_epoch)) if snap_epoch else run_dir(run) / "last.pt"
        state = torch.load(path, map_location="cpu", weights_only=False)["model"]
        missing, unexpected = model.load_state_dict(state, strict=False)
        print(f"{cfg.name}: initialised from {cfg.init_from} ({len(missing)} new tensors)")
    dev = resolve_device(cfg.device)
    model.to(dev)
    if dev.type == "cpu":
        math_attention(model)  # the fused CPU attention kernel is the slow one in bf16 (distill.teachers)
    w = cfg.loss_weights
    distiller, targets = None, []
    if cfg.stage != "mae" and cfg.teachers and (w.feat or w.emb or w.soft):
        with torch.no_grad():
            probe = model(torch.zeros(1, 3, tr.images.shape[1], tr.images.shape[2], device=dev))
        grids = [min(4, m.shape[-1]) for m in probe["maps"]]
        targets = [_load_targets(t, tr, grids) for t in cfg.teachers]
        for t in targets:  # the soft AU terms compare the AUs student and teacher share, by name
            t["meta"].update(shared_au_columns(aset, au_set(t["meta"].get("aus", "disfa"))))
        distiller = FeatureDistiller([m.shape[1] for m in probe["maps"]], model.embed_dim, [t["meta"] for t in targets])
        distiller.to(dev)
    params = list(model.parameters()) + (list(distiller.parameters()) if distiller else [])
    groups = param_groups(model, cfg.layer_decay, list(distiller.parameters()) if distiller else None)
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(epoch_order(tr, cfg.ck_oversample, np.random.default_rng(0))) / cfg.batch_size)
    total, warmup = cfg.epochs * steps_per_epoch, int(cfg.warmup_epochs * steps_per_epoch)
    start_epoch, best = 0, -math.inf  # MAE scores are -loss: any first epoch is the best so far
    last = out_dir / "last.pt"
    if last.exists():
        st = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(st["model"])
        if "opt" in st:
            opt.load_state_dict(st["opt"])
        else:  # restored from a kept run (distill.keep): weights and random states only
            print(f"{cfg.name}: {last} has no optimiser state (kept from {st.get('kept_from', '?')}): AdamW restarts "
                  "its moments", flush=True)
        if distiller and st.get("distiller"):
            distiller.load_state_dict(st["distiller"])
        start_epoch, best = st["epoch"] + 1, st["best"]
        g.set_state(st["torch_rng"])
        rng = np.random.default_rng()
        rng.bit_generator.state = st["np_rng"]
        print(f"{cfg.name}: resuming after epoch {st['epoch'] + 1}/{cfg.epochs}")
    if dev.type == "cuda":
        amp = "bf16" if cfg.amp == "bf16" or (cfg.amp == "auto" and torch.cuda.is_bf16_supported()) else "none"
    else:
        amp = resolve_amp(cfg.amp)
    if cfg.amp == "auto":
        print(f"{cfg.name}: amp auto -> {amp}")
    device_name = device_label(dev)
    print(f"{cfg.name}: training on {device_name}")
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=amp == "bf16")
    resumed = history(cfg.name)[:start_epoch]
    wall_before = sum(h["seconds"] for h in resumed)
    cpu_before = sum(h.get("cpu_seconds", h["seconds"] * cfg.threads) for h in resumed)
    watch = Stopwatch()  # wall time without SIGSTOP pauses (distill.stopwatch)
    for epoch in range(start_epoch, cfg.epochs):
        watch.start()
        cpu0 = time.process_time()
        model.train()
        order = epoch_order(tr, cfg.ck_oversample, rng, sampler_w)
        sums: dict[str, float] = {}
        bar = tqdm(range(0, len(order), cfg.batch_size), desc=f"{cfg.name} {epoch + 1}/{cfg.epochs}", mininterval=10)
        for k, i in enumerate(bar):
            step = epoch * steps_per_epoch + k
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, total, warmup, cfg.lr) * group.get("lr_scale", 1.0)
            idx = order[i : i + cfg.batch_size]
            imgs = torch.from_numpy(tr.images[idx])
            if cfg.stage == "mae":
                x = augment(imgs, "kd", g, extra=extra).to(dev, non_blocking=True)
                with autocast:
                    terms = {"mae": model.mae_loss(x, cfg.mask_ratio, generator=g).float()}
            else:
                view = torch.rand(len(idx), generator=g) < 0.5 if targets else None
                x = augment(imgs, cfg.aug, g, flip=view, extra=extra).to(dev, non_blocking=True)
                with autocast:
                    out = model(x)
                out = _float32(out)
                labels = {k: v.to(dev) for k, v in _batch_labels(tr, idx, loss_w, aset.intensity_cols).items()}
                terms = task_loss(out, labels, w)
                if distiller:
                    v = view.long()
                    ti = torch.from_numpy(idx)
                    batch_t = [{
                        "maps": [m[v, ti].to(dev) for m in t["maps"]],
                        **{key: t[key][v, ti].to(dev) for key in ("emb", "expr_logits", "au_intensity", "occ_prob")},
                    } for t in targets]
                    terms.update(distiller(out, batch_t, w))
            loss = sum(terms.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            for key, val in terms.items():  # on a GPU the sums stay there (no wait for the device every step)
                acc = float(val.detach()) if dev.type == "cpu" else val.detach().double()
                sums[key] = sums.get(key, 0.0) + acc
            watch.lap()
            if k % 20 == 0:
                bar.set_postfix({key: f"{val / (k + 1):.3f}" for key, val in sums.items()})
        sums = {key: float(val) for key, val in sums.items()}
        rec = {"epoch": epoch + 1, "seconds": round(watch.seconds(), 1), "cpu_seconds": round(time.process_time() - cpu0, 1),
               **{f"loss_{key}": round(val / (k + 1), 4) for key, val in sums.items()}, "device": device_name}
        if watch.paused >= 1:
            rec["paused_seconds"] = round(watch.paused, 1)  # stopped (SIGSTOP) during the epoch: not in `seconds`
        if cfg.stage != "mae" and "valid" in tables:
            model.eval()
            metrics = task_metrics(predict(model, tables["valid"]), tables["valid"], aus=aset)
            rec.update({f"valid_{key}": val for key, val in metrics.items() if isinstance(val, float)})
            score = metrics["fer_accuracy"]
        else:
            score = -rec.get("loss_mae", 0.0)
        wall_before, cpu_before = wall_before + rec["seconds"], cpu_before + rec["cpu_seconds"]
        if epoch + 1 in cfg.snapshots:
            snap = snapshot_path(cfg.name, epoch + 1)
            torch.save({"model": _cpu(model.state_dict()), "epoch": epoch + 1, "wall_seconds": round(wall_before, 1),
                        "cpu_seconds": round(cpu_before, 1)},
                       snap.with_suffix(".partial"))
            snap.with_suffix(".partial").replace(snap)
        state = {"model": _cpu(model.state_dict()), "opt": _cpu(opt.state_dict()), "epoch": epoch, "best": max(best, score),
                 "distiller": _cpu(distiller.state_dict()) if distiller else None,
                 "torch_rng": g.get_state(), "np_rng": rng.bit_generator.state}
        if score > best:
            best = score
            torch.save({"model": _cpu(model.state_dict()), "epoch": epoch, "score": score}, out_dir / "best.pt.partial")
            (out_dir / "best.pt.partial").replace(out_dir / "best.pt")
        torch.save(state, out_dir / "last.pt.partial")
        (out_dir / "last.pt.partial").replace(last)
        with open(out_dir / "history.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)
        if cfg.max_minutes is not None and epoch + 1 < cfg.epochs and time.time() - t_start > cfg.max_minutes * 60:
            print(f"{cfg.name}: stopped after epoch {epoch + 1}/{cfg.epochs}: the {cfg.max_minutes:g}-minute budget ran "
                  f"out; the same command resumes from {last}", flush=True)
            watch.close()
            return out_dir
    watch.close()
    hist = history(cfg.name)
    done = {"epochs": cfg.epochs, "best": best, "wall_seconds": round(sum(h["seconds"] for h in hist), 1),
            "devices": trained_on(cfg.name)}
    (out_dir / "done.json").write_text(json.dumps(done, indent=1))
    return out_dir
