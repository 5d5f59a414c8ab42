"""Training configuration: one stage's recipe (`TrainConfig`, read from `distill/configs/*.yaml`), its precision and
where its prepared data lives. No torch here: configs load and validate without the training stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .augment import AugmentOptions
from .labels import au_set
from .losses import LossWeights
from .paths import cache_dir


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
            all): see `dataset.build_tables` and `distill au-geometry`. Needs prepared data with landmarks (or a
            `distill pack` folder, which keeps their geometry features).
        device: "auto" (CUDA where torch sees a GPU, else the CPU), "cpu" or "cuda". Augmentation always runs on the CPU
            (same random numbers everywhere); each augmented batch moves to the device. Checkpoints hold CPU tensors, so a
            run resumes on either. Each history record names the device it was trained on.
        max_minutes: wall-clock budget of this invocation: training stops after the epoch during which it ran out,
            leaving `last.pt` to resume from and no `done.json`. A property of the call, not of the recipe: never written
            into the run's `config.yaml`.
        layer_decay: layer-wise learning-rate decay for the ViT teacher (`mae_vit`) when fine-tuning: block i of the
            depth-L encoder gets lr * layer_decay ** (L - i), the patch embedding lr * layer_decay ** (L + 1), the heads
            the full lr (BEiT / MAE fine-tuning). None = one learning rate for every parameter.
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
    device: str = "auto"
    max_minutes: float | None = None
    layer_decay: float | None = None

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
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', not {self.device!r}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ValueError(f"layer_decay must be in (0, 1], not {self.layer_decay}")

    @property
    def augment_options(self) -> AugmentOptions:
        return AugmentOptions(self.yaw_deg, self.yaw_p, self.occlusion, self.occlusion_max_area, self.lighting)

    @property
    def loss_weights(self) -> LossWeights:
        return LossWeights(**self.weights)


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


def prepared_dir(cfg: TrainConfig) -> Path:
    return Path(cfg.prepared) if cfg.prepared else cache_dir() / "prepared"
