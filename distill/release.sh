#!/usr/bin/env bash
# After distill/train_all.sh: export the shipped students (fp32 + static int8), evaluate every finished run
# (teachers, students, no-distillation ablations, the exported ONNX files), write the model cards.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
runs_dir=${LIBREFACE_CACHE:-$HOME/.cache/libreface}/runs
done_() { [ -f "$runs_dir/$1/done.json" ]; }
shipped=(au_r18.v1 au_r10t.v1 au_r10t.v2 au_r10t.v3 au_r10t.v4 au_r10t.v6)   # exported to weights/; the default is set in libreface/weights.py
students=() onnx=() runs=()
for run in "${shipped[@]}"; do
  done_ "$run" || continue
  students+=("$run")
  [ -f "weights/$run.onnx" ] || python -m distill export "$run"
  onnx+=("weights/$run.onnx" "weights/${run%.*}_int8.${run##*.}.onnx")
done
for run in teacher_swin.v1 teacher_swin.v2 teacher_swin.v3 teacher_mae.v1 au_r18.v1 au_r18_nokd.v1 au_r10t.v1 au_r10t_nokd.v1 au_r10t.v2 au_r10t_nokd.v2 au_r10t.v3 au_r10t_nokd.v4 au_r10t.v4 au_r10t.v5 au_r10t_nokd.v6 au_r10t.v6; do
  done_ "$run" && runs+=("$run")
done
python -m distill evaluate --runs "${runs[@]}" --onnx "${onnx[@]}" --out reports
python -m distill cards "${students[@]}" --report reports/metrics.json
