#!/usr/bin/env bash
# distill/gpu_teacher.sh: MAE pretraining + fine-tuning of the ViT teacher on a GPU machine, in one call.
#
#   distill/gpu_teacher.sh [PACK_DIR [CACHE_DIR]]      (from the repo root; defaults: gpu_pack, gpu_cache)
#
# PACK_DIR: a `python -m distill pack --out gpu_pack` folder (a valid prepared folder, no unpacking; see its
# README.txt). CACHE_DIR becomes $LIBREFACE_CACHE: the runs live in CACHE_DIR/runs/<name>/ and each stage resumes from
# its last.pt when run again (`--max-minutes` stops a stage after the epoch in which its budget ran out, last.pt kept).
# Stages: `python -m distill pretrain-mae $MAE_CONFIG`, then, once that run is finished (done.json),
# `python -m distill train-teacher $TEACHER_CONFIG` (init_from: the MAE run's last checkpoint). Device: the configs
# say `device: auto` (the GPU where torch sees one, else the CPU), so the same script runs on a laptop.
#
# Environment (all optional):
#   PYTHON             interpreter (python3)
#   MAE_CONFIG         default distill/configs/pretrain_mae_gpu.yaml
#   TEACHER_CONFIG     default distill/configs/teacher_mae_v2.yaml
#   MAE_MINUTES        wall budget of the MAE stage in this call (5.5)
#   TEACHER_MINUTES    wall budget of the fine-tune in this call (2.5)
#   MAE_EPOCHS, TEACHER_EPOCHS, LIMIT   override the configs' epochs / the training rows (smoke runs)
#   FINETUNE_PARTIAL=1 fine-tune even if the MAE run stopped early (a different recipe: the status line says so)
#   OUT                where the results go back (the device tool sets it): gpu_teacher.log, and per run its small
#                      files + one model (the MAE run's latest snapshot, the teacher's best.pt; ~27 MB each) as one tar
#                      split into 15 MiB parts (the tool returns at most 8 files of 16 MiB, 64 MiB in all): here,
#                      `cat OUTDIR/gpu_runs.tar.part-* | tar xf - -C SOME_CACHE` gives SOME_CACHE/runs/<name>/.
#
# Across calls: a call returns only what is under $OUT, and the next call carries again only ignored repo paths named
# in `carry` (64 MiB with the working tree). Resuming in a later call means copying CACHE_DIR/runs back into the repo's
# gpu_cache/ and carrying it; the MAE run's last.pt (model + AdamW moments, ~80 MB) is over what one file may bring
# back (16 MiB) and what a call may carry, so in practice both stages must fit in ONE call (budgets above: ~8 min of a
# 10-minute call). The script ends with one status line: epochs reached, FER+ valid accuracy, device.
#
# Size: the device tool sends the whole working tree (tracked files included) plus `carry`, 64 MiB in all. The tree is
# ~99 MB today, 79 MB of it the four fp32 students kept in weights/ as teachers for `distill recover` (and the runs
# in weights/kept/, ~13 MB each); with the pack (~44 MiB) the call fits only if they are moved out of the tree for the
# call and back after it, e.g.
#   mkdir -p /tmp/fp32 && mv weights/au_r10t.v[2346].onnx weights/kept /tmp/fp32/   ... run ...
#   mv /tmp/fp32/*.onnx weights/ && mv /tmp/fp32/kept weights/
# (`git status` shows them deleted meanwhile; nothing is committed). Untested on a GPU so far: no task had one.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
PACK=${1:-gpu_pack}
CACHE=${2:-gpu_cache}
PY=${PYTHON:-python3}
MAE_CONFIG=${MAE_CONFIG:-distill/configs/pretrain_mae_gpu.yaml}
TEACHER_CONFIG=${TEACHER_CONFIG:-distill/configs/teacher_mae_v2.yaml}
OUTDIR=${OUT:-}
LOG=${OUTDIR:+$OUTDIR/gpu_teacher.log}
LOG=${LOG:-$CACHE/gpu_teacher.log}
mkdir -p "$CACHE" "$(dirname "$LOG")"
export LIBREFACE_CACHE=$(cd "$CACHE" && pwd) PYTHONUNBUFFERED=1 CUBLAS_WORKSPACE_CONFIG=:4096:8 HF_HUB_OFFLINE=1

# one clear line when the machine lacks something (nothing can be installed there)
if ! missing=$("$PY" - <<'EOF' 2>&1
import importlib
gone = []
for m in ("torch", "numpy", "yaml", "PIL", "tqdm", "sklearn", "distill._torch"):  # the last: timm, as training imports it
    try:
        importlib.import_module(m)
    except Exception as e:
        gone.append(f"{'timm' if m == 'distill._torch' else m} ({type(e).__name__}: {e})")
if not gone:
    from PIL import features
    if not features.check("webp"):
        gone.append("Pillow's WebP decoder")
if not gone:
    try:
        import distill.train  # noqa: F401 - the whole training import chain
    except Exception as e:
        gone.append(f"distill.train ({type(e).__name__}: {e})")
print(", ".join(gone))
raise SystemExit(1 if gone else 0)
EOF
); then
    echo "gpu_teacher: cannot run here: missing ${missing:-python ($PY)}" | tee -a "$LOG"
    exit 2
fi
if [ ! -f "$PACK/ferplus/train.npz" ]; then
    echo "gpu_teacher: $PACK is not a pack folder (no ferplus/train.npz); make one with python -m distill pack --out $PACK" | tee -a "$LOG"
    exit 2
fi

common=(--prepared "$PACK")
[ -n "${LIMIT:-}" ] && common+=(--limit "$LIMIT")
mae_args=(--max-minutes "${MAE_MINUTES:-5.5}")
[ -n "${MAE_EPOCHS:-}" ] && mae_args+=(--epochs "$MAE_EPOCHS")
teacher_args=(--max-minutes "${TEACHER_MINUTES:-2.5}")
[ -n "${TEACHER_EPOCHS:-}" ] && teacher_args+=(--epochs "$TEACHER_EPOCHS")
run_name() { "$PY" -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['name'])" "$1"; }
MAE_RUN=$(run_name "$MAE_CONFIG")
TEACHER_RUN=$(run_name "$TEACHER_CONFIG")
t0=$(date +%s)
note=""

"$PY" -m distill pretrain-mae "$MAE_CONFIG" "${common[@]}" "${mae_args[@]}" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
if [ "$rc" -eq 0 ] && { [ -f "$LIBREFACE_CACHE/runs/$MAE_RUN/done.json" ] || [ "${FINETUNE_PARTIAL:-0}" = 1 ]; }; then
    [ -f "$LIBREFACE_CACHE/runs/$MAE_RUN/done.json" ] || note="fine-tuned from an UNFINISHED MAE run"
    "$PY" -m distill train-teacher "$TEACHER_CONFIG" "${common[@]}" "${teacher_args[@]}" 2>&1 | tee -a "$LOG"
    rc=${PIPESTATUS[0]}
elif [ "$rc" -eq 0 ]; then
    note="MAE stopped early: fine-tune not started (run again with the cache carried, or FINETUNE_PARTIAL=1)"
fi

if [ -n "$OUTDIR" ]; then  # the small files + best checkpoints, as <= 15 MiB parts (the tool's per-file limit)
    files=()
    for run in "$MAE_RUN" "$TEACHER_RUN"; do
        for f in config.yaml history.jsonl done.json calibration.json; do
            [ -f "$LIBREFACE_CACHE/runs/$run/$f" ] && files+=("runs/$run/$f")
        done
        # one model file a run (~27 MB each): its latest snapshot (the MAE run's final encoder, `init_from: RUN@EPOCH`),
        # else best.pt (the teacher's checkpoint chosen on FER+ valid)
        snap=$(cd "$LIBREFACE_CACHE/runs/$run" 2>/dev/null && ls snapshot_e*.pt 2>/dev/null | sort | tail -1)
        if [ -n "$snap" ]; then
            files+=("runs/$run/$snap")
        elif [ -f "$LIBREFACE_CACHE/runs/$run/best.pt" ]; then
            files+=("runs/$run/best.pt")
        fi
    done
    if [ ${#files[@]} -gt 0 ]; then
        tar cf - -C "$LIBREFACE_CACHE" "${files[@]}" | split -b 15M -d - "$OUTDIR/gpu_runs.tar.part-"
    fi
fi

"$PY" - "$LIBREFACE_CACHE" "$MAE_RUN" "$TEACHER_RUN" "$rc" "$(( $(date +%s) - t0 ))" "$note" <<'EOF' | tee -a "$LOG"
import json, sys
from pathlib import Path

import yaml

cache, mae, teacher, rc, seconds, note = sys.argv[1:]
parts, device = [], ""
for run in (mae, teacher):
    d = Path(cache) / "runs" / run
    hist = [json.loads(x) for x in (d / "history.jsonl").read_text().splitlines() if x.strip()] if (d / "history.jsonl").exists() else []
    if not hist:
        parts.append(f"{run}: no epoch")
        continue
    epochs = yaml.safe_load((d / "config.yaml").read_text())["epochs"]
    last = hist[-1]
    device = last.get("device", device)
    s = f"{run}: epoch {last['epoch']}/{epochs} ({'done' if (d / 'done.json').exists() else 'stopped'})"
    if "valid_fer_accuracy" in last:
        best = max(h["valid_fer_accuracy"] for h in hist)
        s += f", FER+ valid accuracy {last['valid_fer_accuracy']:.4f} (best {best:.4f})"
    elif "loss_mae" in last:
        s += f", loss_mae {last['loss_mae']:.4f}"
    parts.append(s)
status = "ok" if rc == "0" else f"FAILED (exit {rc})"
print(f"gpu_teacher: {status} | " + " | ".join(parts) + f" | {device or 'no device recorded'} | {seconds} s"
      + (f" | {note}" if note else ""))
EOF
exit "$rc"
