"""The evaluation report (`libreface-distill evaluate`): torch runs and exported ONNX students on FER+ test and
CK+ held-out subjects -> `metrics.json`, `metrics.md` and confusion PNGs.

The metrics themselves (and what each one is measured against) are in `distill.metrics`; running a model over a
table is `distill.predict`. Their names stay importable from here.
"""

from __future__ import annotations

import numpy as np

from .data.records import EXPRESSIONS
from .metrics import OCCURRENCE_THRESHOLD, baseline_metrics, task_metrics
from .predict import onnx_predict, predict, predict_views

__all__ = ["OCCURRENCE_THRESHOLD", "baseline_metrics", "confusion_png", "markdown", "onnx_ms_per_face", "onnx_predict",
           "predict", "predict_views", "report", "task_metrics"]


# ---------------------------------------------------------------------------------------------
# the report


def onnx_ms_per_face(path, threads: int = 2, batch: int = 16, repeats: int = 30, mirror: bool = False) -> dict[str, float]:
    """Median wall time per face (ms) at batch 1 and at `batch` faces (with `mirror`, each face runs twice),
    ONNX Runtime with `threads` threads."""
    import time

    from libreface.models.session import StudentModel

    model = StudentModel(path, threads=threads, mirror=mirror)
    s = model.card.input_size
    res = {}
    for n in (1, batch):
        x = np.random.default_rng(0).normal(size=(n, 3, s, s)).astype(np.float32)
        for _ in range(3):
            model.run(x)
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model.run(x)
            times.append((time.perf_counter() - t) / n)
        res[f"ms_per_face_batch{n}"] = round(1000 * float(np.median(times)), 3)
    return res


def confusion_png(confusion: list[list[int]], path, title: str) -> None:
    """Save a row-normalised confusion matrix as a PNG (matplotlib, no face images)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(confusion, np.float64)
    norm = cm / np.maximum(cm.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6), dpi=110)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(8), EXPRESSIONS, rotation=45, ha="right")
    ax.set_yticks(range(8), EXPRESSIONS)
    for i in range(8):
        for j in range(8):
            if cm[i].sum():
                ax.text(j, i, f"{norm[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("FER+ majority vote")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _row(name: str, kind: str, m_test: dict, m_ck: dict, extra: dict | None = None) -> dict:
    return {"model": name, "kind": kind,
            "fer_accuracy": m_test.get("fer_accuracy"), "fer_macro_f1": m_test.get("fer_macro_f1"),
            "ck_accuracy": m_ck.get("ck_accuracy"), "au_mean_auc": m_ck.get("au_mean_auc"),
            "au_mean_f1": m_ck.get("au_mean_f1"), **(extra or {})}


def report(runs: list[str], onnx: list, out_dir, prepared=None, threads: int = 2, ensemble: list | None = None,
           split: str = "test", aus: str = "disfa") -> dict:
    """Evaluate torch runs and exported ONNX models on FER+ and CK+ held-out subjects.

    `split`: "test" (FER+ `FER2013Test` + CK+ test subjects: the figures a shipped model reports, scored once per
    model) or "valid" (FER+ `FER2013Valid` + CK+ validation subjects: the figures models, thresholds and sources are
    chosen on; see `distill.dataset`). `aus`: the AUs scored against the human CK+ codes ("disfa": the 12 every model
    has; "openface": also AU07, AU10, AU14, AU23, for models with OpenFace's set).

    Every ONNX model is evaluated twice: as it is (row `<file>`) and with mirror averaging (row `<file> +mirror`,
    the analyzer's default; see `libreface.models.session.StudentModel`). `ensemble`: ONNX files (`*.onnx`) and/or
    training runs (torch checkpoints, e.g. a teacher and the students it is distilled with) whose outputs are
    averaged into one more pair of rows (`ensemble of N`, as it is and `+mirror`): how much better the models would
    be together than alone, i.e. whether they have anything left to teach each other, and what the averaged signal
    a student distils from several teachers is worth.

    Writes `<out_dir>/metrics.json`, `<out_dir>/metrics.md` and `<out_dir>/confusion_<model>.png`.
    """
    import json
    from pathlib import Path

    from .dataset import build_tables
    from .labels import au_set
    from .paths import cache_dir
    from .predict import select_aus
    from .train import load_run

    if split not in ("test", "valid"):
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables, cal = build_tables(Path(prepared) if prepared else cache_dir() / "prepared", aus=aus)
    aset = au_set(aus)

    def metrics(pred: dict, table) -> dict:
        return task_metrics(pred, table, aus=aset)

    fer_key, ck_key = f"fer_{split}", f"ck_{split}"
    test, ck = tables[split], tables.get(ck_key)
    rows, details = [], {}
    base = baseline_metrics(ck, cal.trace, aus=aset) if ck is not None else {}
    rows.append(_row("blendshape baseline", "mapping", {}, base))
    details["blendshape baseline"] = base
    splits = {fer_key: test, ck_key: ck}
    cached: dict = {}
    models: dict = {}

    def torch_outputs(run: str, split: str, mirror: bool) -> dict[str, np.ndarray]:
        # a run's outputs in the table's AU columns; `mirror` averages each face with its mirror image, as the
        # analyzer does with an exported student
        key = (run, split, mirror)
        if key not in cached:
            if run not in models:
                models[run] = load_run(run)
            model, rcfg = models[run]
            cached[key] = select_aus(predict_views(model, splits[split], mirror), rcfg.aus, aus)
        return cached[key]

    def onnx_outputs(path: Path, split: str, mirror: bool) -> dict[str, np.ndarray]:
        # each ONNX model runs once per table and view, also when it is an ensemble member too
        key = (path.resolve(), split, mirror)
        if key not in cached:
            cached[key] = onnx_predict(path, splits[split], threads, mirror=mirror, aus=aus)
        return cached[key]

    def outputs(member: str | Path, split: str, mirror: bool) -> dict[str, np.ndarray]:
        if str(member).endswith(".onnx"):
            return onnx_outputs(Path(member), split, mirror)
        return torch_outputs(str(member), split, mirror)

    for run in runs:
        m_test = metrics(torch_outputs(run, fer_key, False), test)
        m_ck = metrics(torch_outputs(run, ck_key, False), ck) if ck is not None else {}
        rows.append(_row(run, "torch", m_test, m_ck))
        details[run] = {fer_key: m_test, ck_key: m_ck}

    for path in map(Path, onnx):
        for mirror in (False, True):
            name, stem = (f"{path.name} +mirror", f"{path.stem}_mirror") if mirror else (path.name, path.stem)
            m_test = metrics(onnx_outputs(path, fer_key, mirror), test)
            m_ck = metrics(onnx_outputs(path, ck_key, mirror), ck) if ck is not None else {}
            speed = onnx_ms_per_face(path, threads=threads, mirror=mirror)
            rows.append(_row(name, "onnx", m_test, m_ck, speed))
            details[name] = {fer_key: m_test, ck_key: m_ck, "speed": speed}
            confusion_png(m_test["fer_confusion"], out_dir / f"confusion_{stem}.png", f"{stem}: FER+ {split}")
    if ensemble:
        members = list(ensemble)
        label = " + ".join(Path(p).stem if str(p).endswith(".onnx") else str(p) for p in members)
        for mirror in (False, True):
            name = f"ensemble of {len(members)}: {label}" + (" +mirror" if mirror else "")
            m = {}
            for key, table in splits.items():
                if table is None:
                    continue
                preds = [outputs(p, key, mirror) for p in members]
                m[key] = metrics({k: np.mean([pr[k] for pr in preds], axis=0) for k in preds[0]}, table)
            rows.append(_row(name, "ensemble", m[fer_key], m.get(ck_key, {})))
            details[name] = m
    result = {"split": split, "aus": aus, "rows": rows, "details": details, "calibration": json.loads(cal.to_json()),
              "n": {fer_key: int(len(test)), ck_key: int(len(ck)) if ck is not None else 0,
                    f"{ck_key}_subjects": int(len(set(ck.subject))) if ck is not None else 0}}
    (out_dir / "metrics.json").write_text(json.dumps(result, indent=1, default=float))
    (out_dir / "metrics.md").write_text(markdown(result))
    return result


def _fmt(v, pct: bool = True) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    return f"{100 * v:.1f}" if pct else f"{v:.2f}"


def markdown(result: dict) -> str:
    """The Markdown form of `report`'s result."""
    n = result["n"]
    split = result.get("split", "test")
    fer_key, ck_key = f"fer_{split}", f"ck_{split}"
    ck_rule = "numbers divisible by 5" if split == "test" else "numbers = 1 (mod 5), held out of training since the validation split"
    lines = [
        f"| model | kind | FER+ {split} acc % | FER+ macro-F1 % | CK+ acc % ({split} subjects) | AU mean AUC % | AU mean F1 % | "
        "ms/face b1 | ms/face b16 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['model']} | {r['kind']} | {_fmt(r['fer_accuracy'])} | {_fmt(r['fer_macro_f1'])} | {_fmt(r['ck_accuracy'])} | "
            f"{_fmt(r['au_mean_auc'])} | {_fmt(r['au_mean_f1'])} | {_fmt(r.get('ms_per_face_batch1'), False)} | "
            f"{_fmt(r.get('ms_per_face_batch16'), False)} |"
        )
    lines += ["", f"FER+ {split}: {n[fer_key]} faces (majority vote of 10 annotators). CK+ {split} subjects: {n[ck_key]} images of "
              f"{n[f'{ck_key}_subjects']} subjects ({ck_rule}), human FACS AU codes. AU figures are over the "
              f"{'12 DISFA' if result.get('aus', 'disfa') == 'disfa' else 'human-coded OpenFace'} AUs, occurrence probability vs "
              "the human code; F1 at threshold 0.5 (baseline: calibrated trace anchor).", ""]
    recall = [(name, d[fer_key]["fer_recall"]) for name, d in result["details"].items()
              if isinstance(d.get(fer_key), dict) and "fer_recall" in d[fer_key]]
    if recall:
        classes = list(recall[0][1])
        lines += [f"Per-class recall % on FER+ {split} (majority vote; faces per class in the header):", "",
                  "| model | " + " | ".join(f"{c} ({recall[0][1][c]['n']})" for c in classes) + " |",
                  "|---|" + "---:|" * len(classes)]
        for name, rec in recall:
            lines.append(f"| {name} | " + " | ".join(_fmt(rec[c]["recall"]) for c in classes) + " |")
        lines.append("")
    per_au = [(name, d) for name, d in result["details"].items() if ck_key in d and "au" in d[ck_key]]
    base = result["details"].get("blendshape baseline", {}).get("au")
    if per_au and base:
        aus = list(base)
        lines += [f"Per-AU AUC % on CK+ {split} subjects (positives / images):", "",
                  "| AU | n+ / n | baseline | " + " | ".join(name for name, _ in per_au) + " |",
                  "|---|---|---:|" + "---:|" * len(per_au)]
        for au in aus:
            lines.append(f"| {au} | {base[au]['n_pos']} / {base[au]['n']} | {_fmt(base[au]['auc'])} | "
                         + " | ".join(_fmt(d[ck_key]["au"][au]["auc"]) for _, d in per_au) + " |")
    return "\n".join(lines) + "\n"
