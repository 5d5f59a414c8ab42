#!/usr/bin/env bash
# After distill/train_all.sh: export the students, evaluate everything, write the model cards.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1
students=()
for run in au_r18.v1 au_r10t.v1; do
  [ -f "${LIBREFACE_CACHE:-$HOME/.cache/libreface}/runs/$run/done.json" ] && students+=("$run")
done
onnx=()
for run in "${students[@]}"; do
  python -m distill export "$run"
  stem=${run%.*}; ver=${run##*.}
  onnx+=("weights/$run.onnx" "weights/${stem}_int8.$ver.onnx")
done
runs=(teacher_swin.v1 teacher_mae.v1 "${students[@]}")
[ -f "${LIBREFACE_CACHE:-$HOME/.cache/libreface}/runs/au_r18_nokd.v1/done.json" ] && runs+=(au_r18_nokd.v1)
python -m distill evaluate --runs "${runs[@]}" --onnx "${onnx[@]}" --out reports
python -m distill cards "${students[@]}" --report reports/metrics.json
