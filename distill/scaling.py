"""Scaling study (`distill scaling`): FER+ validation accuracy of the teachers against training epochs and wall time.

Two directions, each a curve of points (epochs, wall seconds, FER+ *Valid* accuracy):

* MAE-ViT: every snapshot an MAE run kept (`snapshots:` in its config, `<cache>/runs/<run>/snapshot_e*.pt`) is probed,
  either by a linear probe (multinomial logistic regression on the frozen, mean-pooled encoder features, trained on
  the FER+ Train vote distributions) or by short fine-tunes (`--finetune distill/configs/teacher_mae_probe.yaml
  [distill/configs/teacher_mae_probe_deit.yaml ...]`: one curve per config, best validation epoch). A linear probe
  measures the encoder, not a teacher: it is compared with its own trend only.
* Swin: the per-epoch validation history committed in `reports/` (a run that continued an earlier one carries that
  run's epochs and wall time as offsets).
* Teachers in training (`--teachers teacher_mae_deit.v2`): a run's own per-epoch history (`<cache>/runs/<run>/`), e.g.
  the real fine-tune of an MAE snapshot; its epochs are fine-tune epochs and its wall time starts where the
  pretraining of its `init_from` snapshot ended, so its hours compare with the other curves' hours.

The bar is the best student's FER+ validation accuracy (its committed history); the target is the bar + 2 points. A
saturating curve acc(e) = a - b * e^-c is fitted with >= 4 points (snapshots probed by a fine-tune: solved exactly
through 3, no residual: an indication, said so); it gives the asymptote `a` and the epoch where a curve crosses the
bar and the target. For snapshots probed by a short fine-tune it also says how much more pretraining would add to
that probe. A teacher whose schedule has ended is judged by its best epoch (the checkpoint it keeps), not by a fit:
its learning rate annealed, so the curve cannot be extended. The report (`<out>/scaling.json`, `scaling.md`,
`scaling.png`) is written by `distill.scaling_report`.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .paths import REPO

MIN_FIT_POINTS = 4
SNAPSHOT_FIT_POINTS = 3
"""Snapshots probed by a fine-tune (each point costs a training run) get their curve from 3 points, exact through
them (`exact`: no residual to judge it by); a training history, whose shape within a schedule follows its learning
rate, needs `MIN_FIT_POINTS`."""
TARGET_MARGIN = 0.02
PLATEAU_GAIN = 0.005
"""A curve whose accuracy rose less than this (0.5 point) over its last quarter of epochs has levelled off."""


@dataclass
class HistorySpec:
    """A committed per-epoch history (jsonl with `epoch`, `seconds`, `valid_fer_accuracy`) of one curve.

    Attributes:
        path: the jsonl file, relative to the repo or absolute.
        epoch_offset / wall_offset_s: epochs and seconds of the run it continued (0 for a run from scratch).
        cpu_offset_s: that run's CPU seconds (None: unknown, and the curve has no CPU hours).
        offset_accuracy: that earlier run's final FER+ validation accuracy (a point at `epoch_offset`), if known.
        note: where the offsets come from.
        label: the curve's name (default: "Swin (<run>)" from the file name `history_<run>.jsonl`).
        probe: what its epochs are (default: "training history").
        running: the run is still training (no verdict before its schedule ends).
        finished: the run ended its schedule (judged by its best epoch, `verdict`).
    """

    path: str
    epoch_offset: int = 0
    wall_offset_s: float = 0.0
    cpu_offset_s: float | None = 0.0
    offset_accuracy: float | None = None
    note: str = ""
    label: str = ""
    probe: str = "training history"
    running: bool = False
    finished: bool = False


SWIN_HISTORIES = [HistorySpec(
    "reports/v5/history_teacher_swin.v3.jsonl", epoch_offset=30, wall_offset_s=112 * 60, cpu_offset_s=None,
    offset_accuracy=0.770,
    note="teacher_swin.v3 continues teacher_swin.v2 (30 epochs from scratch, 112 min, 77.0 % valid: README and "
         "teacher_swin_v3.yaml) on a fresh 20-epoch cosine schedule, distilled from two students")]
BAR_HISTORY = "reports/v6/history_au_r10t.v6.jsonl"


@dataclass
class Point:
    epochs: int
    wall_seconds: float
    valid_accuracy: float
    source: str = ""
    cpu_seconds: float | None = None


@dataclass
class Curve:
    """One direction: its points, the probe that measured them, the fit (None below `MIN_FIT_POINTS`), the verdict."""

    name: str
    probe: str
    points: list[Point]
    fit: dict | None = None
    verdict: str = ""
    notes: list[str] = field(default_factory=list)
    running: bool = False
    finished: bool = False


def _read_jsonl(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: cannot read a jsonl history ({e})") from None


def _resolve(path: str | Path) -> Path:
    p = Path(path)
    return p if p.is_absolute() or p.exists() else REPO / p


def history_points(spec: HistorySpec) -> list[Point]:
    """Points of one committed history (plus its offset point when known)."""
    path = _resolve(spec.path)
    rows = _read_jsonl(path)
    if not rows or "valid_fer_accuracy" not in rows[0]:
        raise ValueError(f"{path}: no `valid_fer_accuracy` per epoch")
    pts = [Point(spec.epoch_offset, spec.wall_offset_s, spec.offset_accuracy, "the run it continued (see note)")] \
        if spec.offset_accuracy else []
    wall, cpu = spec.wall_offset_s, spec.cpu_offset_s
    for r in rows:
        wall += float(r["seconds"])
        cpu = None if cpu is None or r.get("cpu_seconds") is None else cpu + float(r["cpu_seconds"])  # so far, as wall
        pts.append(Point(spec.epoch_offset + int(r["epoch"]), round(wall, 1), float(r["valid_fer_accuracy"]), path.name,
                         None if cpu is None else round(cpu, 1)))
    return pts


def snapshot_times(path: Path) -> tuple[float, float | None]:
    """(wall seconds, CPU seconds or None) of pretraining up to snapshot `path`: from the linear probe's record kept
    beside it (`.probe.json`, written when the snapshot was probed), else from the snapshot itself (a 27 MB load)."""
    probe = path.with_suffix(".probe.json")
    if probe.exists() and probe.stat().st_mtime >= path.stat().st_mtime:
        times = json.loads(probe.read_text())
    else:
        import torch

        times = torch.load(path, map_location="cpu", weights_only=False)
    return times["wall_seconds"], times.get("cpu_seconds")


def run_history_spec(run: str) -> HistorySpec:
    """The per-epoch history of teacher run `run` (`<cache>/runs/<run>/history.jsonl`) as a curve; a run initialised
    from an MAE snapshot (`init_from: "<mae run>@<epoch>"`) starts at that snapshot's pretraining wall time.

    Raises:
        FileNotFoundError: the run has no history yet.
    """
    import yaml

    from .runs import finished, history, run_dir, snapshot_path

    d = run_dir(run)
    rows, done = history(run), finished(run)
    if not rows:
        raise FileNotFoundError(f"{d / 'history.jsonl'}: no epoch of {run} finished yet")
    cfg = yaml.safe_load((d / "config.yaml").read_text()) or {}
    init = cfg.get("init_from") or ""
    progress = (f"finished: {len(rows)} epochs" if done else
                f"still training: {len(rows)} of its {cfg.get('epochs')} epochs; a fit's crossing past them is not "
                "reachable by this run")
    mae, _, epoch = init.partition("@")
    wall, cpu, note = 0.0, 0.0, f"{run} from scratch ({progress})"
    if epoch:
        wall, cpu = snapshot_times(snapshot_path(mae, int(epoch)))
        note = (f"{run} fine-tunes {init} (epochs are fine-tune epochs; its hours start after the "
                f"{wall / 3600:.1f} h of pretraining that snapshot took); {progress}")
    return HistorySpec(str(d / "history.jsonl"), wall_offset_s=wall, cpu_offset_s=cpu, note=note,
                       label=f"MAE-ViT teacher ({run})" if epoch else run,
                       probe=f"fine-tune of {init}" if epoch else "training history", running=not done,
                       finished=done)


def bar_from_history(path: str | Path) -> tuple[str, float]:
    """(model name, best FER+ validation accuracy) from a student's committed history `history_<name>.jsonl`."""
    p = _resolve(path)
    best = max(r["valid_fer_accuracy"] for r in _read_jsonl(p))
    return p.stem.removeprefix("history_"), float(best)


# ---------------------------------------------------------------------------------------------
# the MAE direction


def snapshots(run: str) -> list[tuple[int, Path]]:
    """(epoch, path) of every snapshot run `run` kept, by epoch."""
    from .runs import run_dir

    found = [(int(m.group(1)), p) for p in run_dir(run).glob("snapshot_e*.pt") if (m := re.search(r"_e(\d+)\.pt$", p.name))]
    return sorted(found)


def encoder_features(model, images: np.ndarray, batch: int = 512) -> np.ndarray:
    """(N, S, S) uint8 crops -> (N, D) float32 pooled encoder features (the teacher's `features`), no augmentation."""
    from ._torch import torch
    from .predict import to_input

    out = []
    model.eval()
    with torch.no_grad():
        for i in range(0, len(images), batch):
            out.append(model.forward_features(to_input(torch.from_numpy(images[i : i + batch])))[1].float().numpy())
    return np.concatenate(out)


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, valid_x: np.ndarray, valid_y: np.ndarray,
                 l2: float = 1e-4, steps: int = 200) -> float:
    """Multinomial logistic regression (L-BFGS, fixed L2, standardised features) on soft targets.

    Args: train_x (N, D), train_y (N, K) target distributions (FER+ votes / 10), valid_x (M, D), valid_y (M, K).
    Returns: validation accuracy (argmax against the majority vote), 0..1."""
    from ._torch import torch

    mu, sd = train_x.mean(0), train_x.std(0) + 1e-6
    xt = torch.from_numpy((train_x - mu) / sd).float()
    yt = torch.from_numpy(train_y).float()
    lin = torch.nn.Linear(xt.shape[1], yt.shape[1])
    opt = torch.optim.LBFGS(lin.parameters(), lr=1, max_iter=steps, history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = -(yt * torch.log_softmax(lin(xt), 1)).sum(1).mean() + l2 * lin.weight.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        pred = lin(torch.from_numpy((valid_x - mu) / sd).float()).argmax(1).numpy()
    return float((pred == valid_y.argmax(1)).mean())


def mae_curve(run: str, prepared: Path | None = None, finetune: Path | None = None, threads: int = 2,
              epochs: list[int] | None = None) -> Curve:
    """Probe the snapshots of MAE run `run` (linear probe, or a fine-tune with config `finetune`); `epochs` picks
    the snapshots (default: every one). A fine-tune is a training run of its own (`<config name>_<run>_e<epoch>`),
    resumable and reused once finished; finished fine-tunes of snapshots outside `epochs` stay on the curve."""
    from ._torch import seed_everything, torch
    from .config import TrainConfig
    from .dataset import build_tables
    from .paths import cache_dir
    from .runs import build_model, finished, history, load_run, run_dir
    from .train import train

    every = snapshots(run)
    snaps = [(e, p) for e, p in every if epochs is None or e in epochs]
    if not snaps:
        raise FileNotFoundError(f"{run_dir(run)}: no snapshot_e*.pt (set `snapshots:` in the MAE config and train it)")
    points: list[Point] = []
    if finetune:
        base = TrainConfig.from_yaml(finetune, prepared=str(prepared) if prepared else None, threads=threads)
        for epoch, path in every:
            cfg = TrainConfig(**{**asdict(base), "name": f"{base.name}_{run}_e{epoch:04d}", "init_from": f"{run}@{epoch}"})
            if (epoch, path) not in snaps and not finished(cfg.name):
                continue
            wall, _ = snapshot_times(path)
            train(cfg)
            hist = history(cfg.name)
            points.append(Point(epoch, wall, max(h["valid_fer_accuracy"] for h in hist),
                                f"fine-tune {cfg.name}: {sum(h['seconds'] for h in hist):.0f} s more"))
        return Curve(f"MAE-ViT ({run})", f"fine-tune ({Path(finetune).name})", points)
    seed_everything(0, threads)
    data: dict = {}

    def probe_data():
        """(train, valid) tables, built once and only when a snapshot still needs its probe."""
        if not data:
            tables, _ = build_tables(Path(prepared) if prepared else cache_dir() / "prepared")
            tr, va = tables["train"], tables["valid"]
            data["tr"] = tr.subset(np.flatnonzero((tr.source == "ferplus") & tr.expr_mask))
            data["va"] = va.subset(np.flatnonzero(va.expr_mask))
        return data["tr"], data["va"]

    _, cfg = load_run(run, "last")
    for epoch, path in snaps:
        # a snapshot never changes once written, so its probe is kept beside it and reused by later reports
        cached = path.with_suffix(".probe.json")
        if cached.exists() and cached.stat().st_mtime >= path.stat().st_mtime:
            d = json.loads(cached.read_text())
            points.append(Point(epoch, d["wall_seconds"], d["valid_accuracy"], path.name, d.get("cpu_seconds")))
            continue
        state = torch.load(path, map_location="cpu", weights_only=False)
        model = build_model(cfg)
        model.load_state_dict(state["model"])
        tr, va = probe_data()
        acc = linear_probe(encoder_features(model, tr.images), tr.expr, encoder_features(model, va.images), va.expr)
        points.append(Point(epoch, state["wall_seconds"], acc, path.name, state.get("cpu_seconds")))
        cached.write_text(json.dumps({"valid_accuracy": acc, "wall_seconds": state["wall_seconds"],
                                      "cpu_seconds": state.get("cpu_seconds")}))
        print(f"{run} epoch {epoch}: linear probe {acc:.4f} FER+ valid", flush=True)
    return Curve(f"MAE-ViT ({run})", "linear probe", points)


# ---------------------------------------------------------------------------------------------
# fit and verdict


def saturating(e, a: float, b: float, c: float):
    """The fitted curve acc(e) = a - b * e^-c (e: epochs, scalar or array; acc on the 0..1 scale), shared with the
    report's plot (`distill.scaling_report`)."""
    return a - b * np.power(e, -c)


def fit_curve(points: list[Point], bar: float, target: float, min_points: int = MIN_FIT_POINTS) -> dict | None:
    """acc(e) = a - b * e^-c by least squares, with the epochs (and wall hours) where it crosses `bar` and `target`
    (None where the asymptote stays below); None with fewer than `min_points` points or when it fails."""
    import warnings

    from scipy.optimize import OptimizeWarning, curve_fit

    if len(points) < min_points:
        return None
    e = np.array([p.epochs for p in points], float)
    y = np.array([p.valid_accuracy for p in points], float)
    try:
        with warnings.catch_warnings():  # 3 points leave no residual to estimate a covariance from: not news
            warnings.simplefilter("ignore", OptimizeWarning)
            (a, b, c), _ = curve_fit(saturating, e, y, p0=(y.max() + 0.02, 0.3, 0.5),
                                     bounds=([0, 0, 0.01], [1, 10, 5]), maxfev=20000)
    except (RuntimeError, ValueError):
        return None
    rmse = float(np.sqrt(np.mean((saturating(e, a, b, c) - y) ** 2)))
    exact = len(points) == 3
    s_per_epoch = (points[-1].wall_seconds - points[0].wall_seconds) / max(1, points[-1].epochs - points[0].epochs)

    def crossing(level: float) -> dict | None:
        if a <= level:
            return None
        epoch = float((b / (a - level)) ** (1 / c))
        return {"epochs": round(epoch, 1),
                "wall_hours": round((points[-1].wall_seconds + max(0, epoch - points[-1].epochs) * s_per_epoch) / 3600, 1)}

    at_bound = bool(np.isclose(b, 10) or np.isclose(c, 0.01) or np.isclose(c, 5) or np.isclose(a, 1))
    return {"form": "acc = a - b * epochs^-c", "a": round(float(a), 4), "b": round(float(b), 4), "c": round(float(c), 4),
            "rmse": round(rmse, 4), "at_bound": at_bound, "exact": exact, "bar": crossing(bar), "target": crossing(target)}


def _probes_snapshots(curve: Curve) -> bool:
    """Whether `curve`'s points are MAE snapshots, each probed by a short fine-tune (`mae_curve` with a config)."""
    return curve.probe.startswith("fine-tune (")


def verdict(curve: Curve, bar: float, target: float) -> str:
    """Stop or continue, with the numbers: against the bar for a teacher, against its own trend for a linear probe."""
    pts = curve.points
    last = pts[-1]
    quarter = [p for p in pts if p.epochs >= last.epochs - max(1, (last.epochs - pts[0].epochs) / 4)]
    if len(quarter) < 2:  # the trend needs two points: the last one and the one before it
        quarter = pts[-2:]
    gain = last.valid_accuracy - quarter[0].valid_accuracy
    rising = f"{round(gain * 100, 1) + 0.0:+.1f} points over epochs {quarter[0].epochs}-{last.epochs}"
    f = curve.fit
    head = f"last point {last.valid_accuracy * 100:.1f} % at {last.epochs} epochs ({last.wall_seconds / 3600:.1f} h); {rising}"
    if curve.running:  # mid-schedule, a dip or a flat stretch is the learning rate's doing, not a plateau
        asymptote = f"; fit asymptote {f['a'] * 100:.1f} %" if f else ""
        return (f"{head}{asymptote}: still training, no verdict before its schedule ends (a fit through a schedule "
                "still at a high learning rate is an indication only).")
    if curve.finished:  # the schedule ended: its best epoch is the teacher; a fit through an annealed run is no projection
        best = max(pts, key=lambda p: p.valid_accuracy)
        at = f"best {best.valid_accuracy * 100:.1f} % at epoch {best.epochs} of {last.epochs} ({head})"
        over, short = (best.valid_accuracy - bar) * 100, (target - best.valid_accuracy) * 100
        if best.valid_accuracy >= target:
            return f"{at}: {over:+.1f} points over the bar, at or above bar + 2: a teacher for the next student."
        if best.valid_accuracy >= bar:
            return (f"{at}: {over:+.1f} points over the bar, {short:.1f} short of bar + 2: above the students, below "
                    "the target; a student distilled from it is judged against its no-distillation twin on validation.")
        return (f"{at}: ended its schedule {-over:.1f} points below the bar ({bar * 100:.1f} %): stop this direction on "
                "this budget (a longer schedule or a larger encoder is a new curve to measure).")
    if f is None:
        trend = ("continue (one point, no trend yet)" if len(pts) < 2 else
                 "continue (still rising)" if gain >= PLATEAU_GAIN else "levelled off so far")
        need = SNAPSHOT_FIT_POINTS if _probes_snapshots(curve) else MIN_FIT_POINTS
        return f"fit unconstrained ({len(pts)} point(s) < {need}); {head}: {trend}."
    fit = (f"fit asymptote {f['a'] * 100:.1f} % (" + ("exact through 3 points, no residual" if f.get("exact") else
                                                      f"rmse {f['rmse'] * 100:.1f} points")
           + f"{', a parameter at its bound' if f['at_bound'] else ''})")
    if _probes_snapshots(curve) and not f["at_bound"]:
        e2, e4 = 2 * last.epochs, 4 * last.epochs
        more = saturating(e4, f["a"], f["b"], f["c"]) - last.valid_accuracy  # what 4x the pretraining would add
        projected = (f"{head}; {fit}: projected {saturating(e2, f['a'], f['b'], f['c']) * 100:.1f} % at {e2} and "
                     f"{saturating(e4, f['a'], f['b'], f['c']) * 100:.1f} % at {e4} pretraining epochs")
        if more < TARGET_MARGIN:
            return (f"{projected}: {3 * last.epochs} more pretraining epochs would add {more * 100:.1f} points to this "
                    f"probe, less than {TARGET_MARGIN * 100:.0f}: pause the pretraining. A short fine-tune understates a "
                    "real one, whose length is now the lever.")
        return f"{projected}: continue ({more * 100:.1f} points more in this probe by {e4} epochs)."
    if curve.probe != "linear probe" and gain < PLATEAU_GAIN and last.valid_accuracy < bar:
        return (f"{head}: levelled off {(bar - last.valid_accuracy) * 100:.1f} points below the bar ({bar * 100:.1f} %): "
                f"stop. The {fit} is not trusted here: the data stopped rising (within a schedule, the annealed "
                f"learning rate ends the rise; a longer schedule is a new curve to measure).")
    if curve.probe == "linear probe":
        go = gain >= PLATEAU_GAIN or f["a"] - last.valid_accuracy >= 0.01
        return (f"{head}; {fit}. A linear probe is not comparable with the bar; pretraining: "
                + ("continue (the encoder still improves)." if go else "stop (the encoder's probe has levelled off)."))
    if f["target"]:
        return f"{head}; {fit}: continue, crosses bar + 2 ({target * 100:.1f} %) at ~{f['target']['epochs']:.0f} epochs (~{f['target']['wall_hours']} h)."
    if f["bar"]:
        return (f"{head}; {fit}: crosses the bar ({bar * 100:.1f} %) at ~{f['bar']['epochs']:.0f} epochs "
                f"(~{f['bar']['wall_hours']} h) but levels off below bar + 2 ({target * 100:.1f} %): stop.")
    return f"{head}; {fit} < bar {bar * 100:.1f} %: stop (plateau below the best student)."


# ---------------------------------------------------------------------------------------------
# report


def study(mae_runs: list[str], swin: list[HistorySpec] | None = None, bar_history: str | Path = BAR_HISTORY,
          prepared: Path | None = None, finetune: list[Path] | None = None, threads: int = 2,
          finetune_epochs: list[int] | None = None, teachers: list[str] | None = None) -> dict:
    """Measure every direction; returns the report as a dict (see `write_report`). Each MAE run gets its linear-probe
    curve and, per config in `finetune`, a fine-tune curve over the snapshots `finetune_epochs` (default: every
    one) and those already fine-tuned by that config; each run in `teachers` its own training history (read, not
    trained: it may still be running)."""
    bar_name, bar = bar_from_history(bar_history)
    target = bar + TARGET_MARGIN
    curves, pending = [], []
    for run in mae_runs:
        try:
            curves.append(mae_curve(run, prepared, None, threads))
            for config in finetune or []:
                curves.append(mae_curve(run, prepared, config, threads, finetune_epochs))
        except FileNotFoundError:
            pending.append(f"MAE-ViT ({run}): not measured yet (no snapshot in `<cache>/runs/{run}/` so far).")
    specs = list(SWIN_HISTORIES if swin is None else swin)
    for run in teachers or []:
        try:
            specs.append(run_history_spec(run))
        except FileNotFoundError as e:
            pending.append(f"{run}: not measured yet ({e}).")
    for spec in specs:
        c = Curve(spec.label or f"Swin ({Path(spec.path).stem.removeprefix('history_')})", spec.probe, history_points(spec),
                  running=spec.running, finished=spec.finished)
        c.notes += [spec.note] if spec.note else []
        curves.append(c)
    for c in curves:
        c.fit = fit_curve(c.points, bar, target, SNAPSHOT_FIT_POINTS if _probes_snapshots(c) else MIN_FIT_POINTS)
        c.verdict = verdict(c, bar, target)
    return {"bar": {"model": bar_name, "valid_accuracy": round(bar, 4), "source": str(bar_history)},
            "target": round(target, 4), "curves": [asdict(c) for c in curves], "pending": pending}
