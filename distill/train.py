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
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ._torch import seed_everything, torch
from .augment import AugmentOptions, balanced_order, class_weights, occlude, relight, yaw_warp
from .dataset import Table, build_tables
from .labels import au_set, shared_au_columns
from .losses import FeatureDistiller, LossWeights, task_loss
from .metrics import task_metrics
from .paths import cache_dir
from .predict import NORM_MEAN, NORM_STD, predict, to_input

F = torch.nn.functional


@dataclass
class TrainConfig:
    """One training stage (read from a YAML file in `distill/configs/`).

    Attributes:
        name: run name (folder under `<cache>/runs/`, and the model name's stem).
        stage: "mae" (self-supervised pretraining), "teacher" or "student".
        arch: a registered teacher (`swin`, `mae_vit`) or student (`au_r18`, `au_r10t`).
        teachers: run names of the models this run distils from ([] = no distillation). Usually a student's
            teachers; a transformer teacher may also learn from finished ResNet students (DeiT-style: the
            convolutional students pass on their inductive bias, the transformer keeps its own view).
        init_from: run whose weights initialise this one (MAE pretraining -> fine-tuning): "run" (its last
            checkpoint) or "run@<epoch>" (its snapshot after that epoch).
        aug: "strong" (flip, shift +-4 px, photometric, random erasing) or "kd" (the mirrored view
            matching the stored teacher outputs, shift +-2 px, photometric).
        ck_oversample: CK+ training rows are repeated this many times per epoch (they are few).
        limit: use only the first `limit` training rows (smoke runs).
        ablation: the run of the same student and schedule without distillation, which the model card and the
            README compare this one with (default: the `_nokd` twin of the same version).
        amp: "none" (float32), "bf16" (forward passes under bfloat16 autocast; weights, optimiser and losses in
            float32) or "auto" (bf16 where the CPU has AVX-512 BF16 or AMX, see `resolve_amp`). About 2x faster per
            ResNet-10-T epoch on CPUs with AMX or AVX-512 BF16 (`lscpu | grep amx_bf16`), slower on CPUs without them;
            ~7 % less CPU time per MAE step of the ViT teacher on AVX-512 BF16 without AMX.
        snapshots: epochs (1-based) after which a copy of the model is kept as `snapshot_e<epoch>.pt` in the run
            folder, with the run's wall time so far (for `distill scaling`).
        extra_train: more splits whose images join the training rows, only for the label-free "mae" stage: "valid"
            (FER+ Valid) and/or "videos" (unlabelled frames sampled from the shared videos, `distill prepare --dataset
            videos DIR`, see `distill.data.videos`); never a test split. A named split that is not prepared is an error.
        yaw_deg, yaw_p, occlusion, occlusion_max_area, lighting: the filming augmentations of `distill.augment`
            (`AugmentOptions`; all off by default): planar head-yaw warp up to +-`yaw_deg` on a share `yaw_p` of rows,
            an occluder on a share `occlusion` (bounding box <= `occlusion_max_area` of the crop), relighting on a share
            `lighting`.
        balance: "none", "sampler" (rows drawn with replacement, weighted by their expression's class weight) or
            "loss" (class-weighted expression loss); weights `augment.class_weights` from the training votes with
            `balance_power` (0.5 = inverse square root of the frequency) and `balance_cap`.
        aus: the AUs the heads learn (`labels.AU_SETS`): "disfa" (12 intensities and occurrences, every model up to v7's
            trunk) or "openface" (OpenFace 2.2's 17 intensities and 18 occurrences, the runtime's full set).
        au_sources: per AU, the AU teacher signal's source ({"AU04": "geometry", ...}; default {} = blendshapes for
            all): see `dataset.build_tables` and `distill au-geometry`. Needs prepared data with landmarks.
    """

    name: str
    stage: str
    arch: str
    epochs: int = 10
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    seed: int = 0
    threads: int = 2
    aug: str = "strong"
    ck_oversample: int = 4
    mask_ratio: float = 0.75
    teachers: list[str] = field(default_factory=list)
    init_from: str | None = None
    weights: dict = field(default_factory=dict)
    limit: int | None = None
    prepared: str | None = None
    ablation: str | None = None
    amp: str = "none"
    snapshots: list[int] = field(default_factory=list)
    extra_train: list[str] = field(default_factory=list)
    yaw_deg: float = 0.0
    yaw_p: float = 0.5
    occlusion: float = 0.0
    occlusion_max_area: float = 0.3
    lighting: float = 0.0
    balance: str = "none"
    balance_power: float = 0.5
    balance_cap: float = 5.0
    au_sources: dict = field(default_factory=dict)
    aus: str = "disfa"

    @classmethod
    def from_yaml(cls, path: Path, **overrides) -> "TrainConfig":
        import yaml

        d = yaml.safe_load(Path(path).read_text()) or {}
        d.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown config keys {sorted(unknown)}")
        try:
            return cls(**d)
        except ValueError as e:
            raise ValueError(f"{path}: {e}") from None

    def __post_init__(self) -> None:
        if self.amp not in ("none", "bf16", "auto"):
            raise ValueError(f"amp must be 'none', 'bf16' or 'auto', not {self.amp!r}")
        if self.extra_train and (self.stage != "mae" or set(self.extra_train) - {"valid", "videos"}):
            raise ValueError(f"extra_train {self.extra_train} is for label-free 'mae' stages and may name only 'valid' "
                             "and/or 'videos'")
        au_set(self.aus)
        if self.balance not in ("none", "sampler", "loss"):
            raise ValueError(f"balance must be 'none', 'sampler' or 'loss', not {self.balance!r}")

    @property
    def augment_options(self) -> AugmentOptions:
        return AugmentOptions(self.yaw_deg, self.yaw_p, self.occlusion, self.occlusion_max_area, self.lighting)

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(**self.weights)


def run_dir(name: str) -> Path:
    return cache_dir() / "runs" / name


def snapshot_path(name: str, epoch: int) -> Path:
    """`<cache>/runs/<name>/snapshot_e<epoch, 4 digits>.pt` (keys: model, epoch, wall_seconds, cpu_seconds: the
    run's time so far; on a shared machine CPU seconds / threads is about the wall time the run would take alone)."""
    return run_dir(name) / f"snapshot_e{epoch:04d}.pt"


def resolve_amp(amp: str, cpuinfo: str | None = None) -> str:
    """"auto" -> "bf16" where the CPU flags (`/proc/cpuinfo`, or `cpuinfo` given) include `avx512_bf16` or
    `amx_bf16`, else "none"; "none" and "bf16" are returned as they are."""
    if amp != "auto":
        return amp
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            cpuinfo = ""
    flags = set(cpuinfo.split())
    return "bf16" if flags & {"avx512_bf16", "amx_bf16"} else "none"


def finished(name: str) -> dict:
    """Run `name`'s `done.json` ({} while it is unfinished): epochs, best score and `wall_seconds` (the sum of its
    epochs' times) for a trained run; `recovered_from` (and `wall_seconds` when its ONNX card kept it) for a run
    rebuilt by `distill recover`."""
    path = run_dir(name) / "done.json"
    return json.loads(path.read_text()) if path.exists() else {}


def prepared_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.prepared) if cfg.prepared else cache_dir() / "prepared"


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
    path = run_dir(teacher) / f"targets_train_{len(table)}.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    res = teacher_targets(teacher, table.images, grids)
    tmp = path.with_suffix(".partial")
    torch.save(res, tmp)
    tmp.replace(path)
    return res


# ---------------------------------------------------------------------------------------------
# the loop


def _history(out_dir: Path) -> list[dict]:
    path = out_dir / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def train(cfg: TrainConfig) -> Path:
    """Run (or resume) one stage; returns the run folder."""
    import yaml

    out_dir = run_dir(cfg.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.yaml").write_text(yaml.safe_dump(asdict(cfg), sort_keys=False))
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
    w = cfg.loss_weights
    distiller, targets = None, []
    if cfg.stage != "mae" and cfg.teachers and (w.feat or w.emb or w.soft):
        with torch.no_grad():
            probe = model(torch.zeros(1, 3, tr.images.shape[1], tr.images.shape[2]))
        grids = [min(4, m.shape[-1]) for m in probe["maps"]]
        targets = [_load_targets(t, tr, grids) for t in cfg.teachers]
        for t in targets:  # the soft AU terms compare the AUs student and teacher share, by name
            t["meta"].update(shared_au_columns(aset, au_set(t["meta"].get("aus", "disfa"))))
        distiller = FeatureDistiller([m.shape[1] for m in probe["maps"]], model.embed_dim, [t["meta"] for t in targets])
    params = list(model.parameters()) + (list(distiller.parameters()) if distiller else [])
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(epoch_order(tr, cfg.ck_oversample, np.random.default_rng(0))) / cfg.batch_size)
    total, warmup = cfg.epochs * steps_per_epoch, int(cfg.warmup_epochs * steps_per_epoch)
    start_epoch, best = 0, -1.0
    last = out_dir / "last.pt"
    if last.exists():
        st = torch.load(last, map_location="cpu", weights_only=False)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        if distiller and st.get("distiller"):
            distiller.load_state_dict(st["distiller"])
        start_epoch, best = st["epoch"] + 1, st["best"]
        g.set_state(st["torch_rng"])
        rng = np.random.default_rng()
        rng.bit_generator.state = st["np_rng"]
        print(f"{cfg.name}: resuming after epoch {st['epoch'] + 1}/{cfg.epochs}")
    amp = resolve_amp(cfg.amp)
    if cfg.amp == "auto":
        print(f"{cfg.name}: amp auto -> {amp}")
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp == "bf16")
    wall_before = sum(h["seconds"] for h in _history(out_dir)[:start_epoch])
    cpu_before = sum(h.get("cpu_seconds", h["seconds"] * cfg.threads) for h in _history(out_dir)[:start_epoch])
    for epoch in range(start_epoch, cfg.epochs):
        t0, cpu0 = time.time(), time.process_time()
        model.train()
        order = epoch_order(tr, cfg.ck_oversample, rng, sampler_w)
        sums: dict[str, float] = {}
        bar = tqdm(range(0, len(order), cfg.batch_size), desc=f"{cfg.name} {epoch + 1}/{cfg.epochs}", mininterval=10)
        for k, i in enumerate(bar):
            step = epoch * steps_per_epoch + k
            for group in opt.param_groups:
                group["lr"] = _lr_at(step, total, warmup, cfg.lr)
            idx = order[i : i + cfg.batch_size]
            imgs = torch.from_numpy(tr.images[idx])
            if cfg.stage == "mae":
                x = augment(imgs, "kd", g, extra=extra)
                with autocast:
                    terms = {"mae": model.mae_loss(x, cfg.mask_ratio, generator=g).float()}
            else:
                view = torch.rand(len(idx), generator=g) < 0.5 if targets else None
                x = augment(imgs, cfg.aug, g, flip=view, extra=extra)
                with autocast:
                    out = model(x)
                out = _float32(out)
                terms = task_loss(out, _batch_labels(tr, idx, loss_w, aset.intensity_cols), w)
                if distiller:
                    v = view.long()
                    ti = torch.from_numpy(idx)
                    batch_t = [{
                        "maps": [m[v, ti] for m in t["maps"]],
                        **{key: t[key][v, ti] for key in ("emb", "expr_logits", "au_intensity", "occ_prob")},
                    } for t in targets]
                    terms.update(distiller(out, batch_t, w))
            loss = sum(terms.values())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            for key, val in terms.items():
                sums[key] = sums.get(key, 0.0) + float(val.detach())
            if k % 20 == 0:
                bar.set_postfix({key: f"{val / (k + 1):.3f}" for key, val in sums.items()})
        rec = {"epoch": epoch + 1, "seconds": round(time.time() - t0, 1), "cpu_seconds": round(time.process_time() - cpu0, 1),
               **{f"loss_{key}": round(val / (k + 1), 4) for key, val in sums.items()}}
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
            torch.save({"model": model.state_dict(), "epoch": epoch + 1, "wall_seconds": round(wall_before, 1),
                        "cpu_seconds": round(cpu_before, 1)},
                       snap.with_suffix(".partial"))
            snap.with_suffix(".partial").replace(snap)
        state = {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": epoch, "best": max(best, score),
                 "distiller": distiller.state_dict() if distiller else None,
                 "torch_rng": g.get_state(), "np_rng": rng.bit_generator.state}
        if score > best:
            best = score
            torch.save({"model": model.state_dict(), "epoch": epoch, "score": score}, out_dir / "best.pt.partial")
            (out_dir / "best.pt.partial").replace(out_dir / "best.pt")
        torch.save(state, out_dir / "last.pt.partial")
        (out_dir / "last.pt.partial").replace(last)
        with open(out_dir / "history.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps(rec), flush=True)
    hist = _history(out_dir)
    done = {"epochs": cfg.epochs, "best": best, "wall_seconds": round(sum(h["seconds"] for h in hist), 1)}
    (out_dir / "done.json").write_text(json.dumps(done, indent=1))
    return out_dir
