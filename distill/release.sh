#!/usr/bin/env bash
# After distill/train_all.sh: export the finished students, evaluate every finished run, write the model cards.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
runs_dir=${LIBREFACE_CACHE:-$HOME/.cache/libreface}/runs
done_() { [ -f "$runs_dir/$1/done.json" ]; }
students=() onnx=() runs=()
for run in au_r18.v1 au_r10t.v1; do
  done_ "$run" || continue
  students+=("$run")
  python -m distill export "$run"
  onnx+=("weights/$run.onnx" "weights/${run%.*}_int8.${run##*.}.onnx")
done
for run in teacher_swin.v1 teacher_mae.v1 "${students[@]}" au_r18_nokd.v1; do
  done_ "$run" && runs+=("$run")
done
python -m distill evaluate --runs "${runs[@]}" --onnx "${onnx[@]}" --out reports
python -m distill cards "${students[@]}" --report reports/metrics.json
