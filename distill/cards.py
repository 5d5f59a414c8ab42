"""Model cards: one Markdown file per shipped model in `weights/cards/`, written from the evaluation report."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .evaluate import _fmt
from .labels import AU_BLENDSHAPES, au_set
from .runs import trained_on, where_trained
from .train import finished, load_run

COMMANDS = """```
pip install torch==2.13.0 && pip install -e '.[train]' -c constraints.txt
bash distill/train_all.sh ../shared/data            # prepare, MAE pretraining, teachers, students
python -m distill export {run}                      # writes {run} (fp32) and its int8 twin
python -m distill evaluate --runs {runs} --onnx {onnx} --out {out}/
```"""


# "wall time 41 min on 2 CPU cores (teachers: au_r10t_nokd.v2 46 min)" in a card written earlier; the place may
# also be "one NVIDIA H200 GPU" or both (`runs.where_trained`), a teacher's place follows its time where it differs
_WALL = re.compile(r"wall time \d+ min on [^.()]+?(?: \(teachers: [^)]*\))?(?=\.)")


def write_card(name: str, run: str, report_json: Path | list[Path], out_dir: Path, onnx_files: list[str]) -> Path:
    """Write `<out_dir>/<name>.md` for the exported model `name` (fp32 and its int8 twin) trained by `run`.

    `report_json` is one `metrics.json` of `distill evaluate` or several, whose rows are merged (a later report's row
    replaces an earlier one of the same model; the first report's counts are used). When `run` is a rebuilt run
    without a recorded wall time (`distill recover` of an ONNX file exported before its card carried one), the
    training time the card being replaced states is kept, teachers' times included."""
    reports_paths = [report_json] if isinstance(report_json, (str, Path)) else list(report_json)
    reports = [json.loads(Path(r).read_text()) for r in reports_paths]
    report = reports[0]
    rows = {r["model"]: r for rep in reports for r in rep["rows"]}
    _, cfg = load_run(run)
    own = finished(run)
    done = {t: finished(t) for t in cfg.teachers}
    teachers_wall = {t: d["wall_seconds"] for t, d in done.items() if "wall_seconds" in d}
    recovered = {t: d["recovered_from"] for t, d in done.items() if "recovered_from" in d}
    path = out_dir / f"{name}.md"
    if "wall_seconds" in own:
        place = where_trained(trained_on(run) or ["cpu"], cfg.threads)

        def teacher(t: str, seconds: float) -> str:
            there = where_trained(trained_on(t), cfg.threads)
            return f"{t} {seconds / 60:.0f} min" + (f" on {there}" if there and there != place else "")

        wall = f"wall time {own['wall_seconds'] / 60:.0f} min on {place}" + (
            f" (teachers: {', '.join(teacher(t, s) for t, s in teachers_wall.items())})" if teachers_wall else "")
    elif path.exists() and (earlier := _WALL.search(path.read_text())):
        wall = earlier.group(0)
    else:
        wall = "wall time not recorded on this machine (see the card's git history)"
    lines = [
        f"# {name}", "",
        f"ResNet student (`{cfg.arch}`, timm architecture, randomly initialised) trained by libreface's own code, "
        "run with ONNX Runtime by the `libreface` analyzer. Input: 64x64 grey aligned face crops (`libreface.align`, "
        "the same function at training and inference). Outputs: AU intensity 0-5 and occurrence probability for "
        f"{', '.join(au_set(cfg.aus).occurrence_names)} (intensity for {', '.join(au_set(cfg.aus).intensity_names)}); 8 expression probabilities (FER+ classes); a {report.get('feature_dim', 512)}-d feature vector.",
        "",
        "## Training",
        "",
        f"- Distilled from: {', '.join(cfg.teachers) or 'no teacher (task losses only)'}; loss weights {cfg.weights}.",
        f"- {cfg.epochs} epochs, batch {cfg.batch_size}, AdamW lr {cfg.lr}, weight decay {cfg.weight_decay}, seed {cfg.seed}"
        + (", bfloat16 autocast (float32 weights and losses)" if cfg.amp == "bf16" else "") + "; "
        f"{wall}."
        + "".join(f" {t} was rebuilt from `{Path(p).name}` by `distill recover` (its checkpoint was on another machine)."
                  for t, p in recovered.items()),
        "- Data: FER+ `FER2013Train` (28,385 faces with 10-annotator votes; majority unknown / not-a-face dropped) and the CK+ "
        "training subjects of `distill.dataset.ck_split` at training time (number not divisible by 5; models trained since "
        "the validation split also leave out numbers = 1 mod 5; from the CK+48 training-subject subset), every image landmarked "
        "and aligned by the runtime's own MediaPipe front-end; faces the landmarker missed (6 %) are aligned with the "
        "mean face layout and get no AU label.",
        "- Expression labels: FER+ vote distributions (soft targets); CK+ emotion labels (no neutral in CK+).",
        "- AU intensity labels: **not human**. MediaPipe blendshapes mapped to FACS AUs and calibrated to 0-5 "
        "(`distill/labels.py`): neutral-face median -> 0, CK+ F1-optimal presence threshold -> 1, 99.5th percentile -> 5.",
        "- AU occurrence labels: human CK+ FACS codes (training subjects) plus the calibrated blendshape signal (intensity >= 1) "
        "at weight 0.3 elsewhere.",
        "",
        "AU -> blendshapes used for the teacher signal:", "",
        "| AU | blendshapes |", "|---|---|",
        *[f"| {n} | {', '.join(AU_BLENDSHAPES[int(n[2:])])}"
          f"{' (landmark geometry instead: ' + cfg.au_sources[n] + ')' if n in cfg.au_sources else ''} |"
          for n in au_set(cfg.aus).occurrence_names],
        "",
        "## Evaluation (`distill evaluate`)", "",
        "| model | FER+ test acc % | FER+ macro-F1 % | CK+ acc % | AU mean AUC % | AU mean F1 % | ms/face (b1, b16) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    # the same architecture and schedule with / without distillation, when both were evaluated
    twin = cfg.ablation or (run.replace("_nokd.", ".") if "_nokd." in run else run.replace(".v", "_nokd.v", 1))
    mirrored = [f"{o} +mirror" for o in onnx_files]  # as the analyzer runs them by default
    for key in dict.fromkeys(["blendshape baseline", *cfg.teachers, twin, run, *onnx_files, *mirrored]):  # a teacher may be the twin
        r = rows.get(key)
        if r:
            speed = f"{r.get('ms_per_face_batch1', '–')}, {r.get('ms_per_face_batch16', '–')}" if r["kind"] == "onnx" else "–"
            lines.append(f"| {key} | {_fmt(r['fer_accuracy'])} | {_fmt(r['fer_macro_f1'])} | {_fmt(r['ck_accuracy'])} | "
                         f"{_fmt(r['au_mean_auc'])} | {_fmt(r['au_mean_f1'])} | {speed} |")
    n = report["n"]
    lines += [
        "",
        f"What each number is measured against: FER+ test = `FER2013Test`, {n['fer_test']} faces, majority vote of 10 "
        f"annotators. CK+ = {n['ck_test']} images of {n['ck_test_subjects']} CK+ subjects never used in training (numbers "
        "divisible by 5 within the local training-subject subset), emotion labels and human FACS AU codes; AU AUC/F1 "
        "compare the occurrence probability with those codes (F1 at 0.5). Intensities have no human reference here: they "
        "follow the calibrated blendshape signal. `+mirror`: each face also run mirrored and the two outputs averaged, "
        "as `libreface --mirror` does. Speed: ONNX Runtime, 2 threads, median per face.",
        *([f"Rows merged from {', '.join(f'`{Path(r).as_posix()}`' for r in reports_paths)}."] if len(reports_paths) > 1 else []),
        "",
        "## Commands", "",
        COMMANDS.format(run=run, name=name, runs=" ".join(dict.fromkeys([*cfg.teachers, twin, run])),
                        onnx=" ".join(f"weights/{o}" for o in onnx_files), out=Path(reports_paths[0]).parent.as_posix()),
        "",
        "## Terms of use",
        "",
        "The weights are released under Apache-2.0 with libreface. They were trained on FER2013 images (collected from "
        "the web for the ICML 2013 challenge; no explicit licence, usually read as research-only) with Microsoft's FER+ "
        "labels (MIT), and on CK+ (research-only agreement): no image of either is contained in or recoverable from this "
        "repository. Check whether your use of a model trained on these datasets fits your institution's rules.",
        "",
        "## Known limits",
        "",
        "- Trained on 48x48 grey web and posed-lab faces: expect lower accuracy on profile views, strong occlusion, "
        "children, and lighting unlike FER2013's; colour is discarded.",
        "- AU intensities imitate MediaPipe's blendshapes, not human FACS intensity coders; AU6 and AU9 rely on proxies "
        "(see the table), AU26 and AU15 have few CK+ positives.",
        "- Short training on 2 CPU cores: see the README for how far the targets are and what would close the gap.",
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def write_added_aus_card(name: str, result: dict, out_dir: Path, table_md: str) -> Path:
    """Write `<out_dir>/<name>.md` for a student grown by `distill add-aus` from the result it returned and its
    Markdown report `table_md` (`distill.add_aus.markdown(result)`)."""

    base = result["base"]
    lines = [
        f"# {name}", "",
        f"`{base}` (see its card for the trunk, its training and its 12 DISFA AUs, unchanged here) with OpenFace 2.2's "
        "remaining AUs added by `python -m distill add-aus`: AU07, AU10, AU14, AU23, AU45 intensity (0-5) and "
        "occurrence, AU28 occurrence. Outputs: 17 AU intensities and 18 AU occurrences in OpenFace's order, 8 expression "
        "probabilities and the base's feature vector, which the new linear heads read (the trunk is the base's, "
        "byte for byte; so are its expression and feature outputs).", "",
        "## How the added AUs are made", "",
        "- Teacher signal: MediaPipe blendshapes mapped to each AU (`distill/labels.py`, `AU_BLENDSHAPES`) and calibrated "
        "to 0-5 on the training rows only (FER+ Train, CK+ subjects whose number is not 0 or 1 mod 5).",
        "- Heads: one linear intensity head (5 * sigmoid, on the calibrated signal) and one occurrence head (sigmoid; human "
        "CK+ FACS codes for AU7/10/14/23 on training subjects, calibrated intensity >= 1 at weight 0.3 elsewhere) per AU.",
        "- Source per AU, chosen on the CK+ validation subjects (numbers = 1 mod 5): the head or the calibrated blendshape "
        "mapping, whichever has the higher AUC against the human codes. AUs whose source is the mapping are listed in "
        "the card's `blendshape_aus` entry (blendshapes, calibration anchors, logistic probability map); the analyzer "
        "computes them from each face's blendshapes (`libreface/models/blendshape_aus.py`). The graph still holds a head "
        "for every added AU, so runtimes that ignore the entry get the head's values.",
        "- The base student trained on the CK+ validation subjects; the added heads did not.", "",
        "## Measurements", "",
        table_md.split("\n", 2)[2],
        "## Commands", "",
        "```",
        f"python -m distill add-aus --base {base} --name {name} --out reports/aus17",
        "```", "",
        "## Known limits", "",
        "- AU23 uses mouthPress as a proxy (no lip-tightener blendshape exists); AU28 has no human reference here and is "
        "unmeasured; AU45 is measured only against a geometric eye-closure reference, not human blink codes.",
        "- Few CK+ positives per added AU on the validation and test subjects (see n+): the AUCs have wide error bars.",
        "- Terms of use and the base's limits: see the base's card.",
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.md"
    path.write_text("\n".join(lines) + "\n")
    return path
