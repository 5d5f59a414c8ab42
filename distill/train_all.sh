#!/usr/bin/env bash
# The whole training chain, in order; each stage resumes from its checkpoint when run again.
# Usage: bash distill/train_all.sh [SHARED_DATA_DIR]   (default ../shared/data)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
export HF_HUB_OFFLINE=1
cache=${LIBREFACE_CACHE:-$HOME/.cache/libreface}
[ -f "$cache/prepared/ferplus/prepare_report.json" ] && [ -f "$cache/prepared/ckplus/prepare_report.json" ] ||
  python -m distill prepare --dataset ferplus "$data/ferplus" --dataset ckplus "$data/ckplus48"
python -m distill train-teacher distill/configs/teacher_swin.yaml
python -m distill pretrain-mae distill/configs/pretrain_mae.yaml
python -m distill train-teacher distill/configs/teacher_mae.yaml
python -m distill train-student distill/configs/student_r18.yaml
python -m distill train-student distill/configs/student_r18_nokd.yaml
python -m distill train-student distill/configs/student_r10t.yaml        # its teacher is au_r18_nokd.v1
python -m distill train-student distill/configs/student_r10t_nokd.yaml
python -m distill train-student distill/configs/student_r10t_v2.yaml    # teachers: au_r10t.v1, au_r18_nokd.v1
python -m distill train-teacher distill/configs/teacher_swin_v2.yaml  # in progress: the longer teacher for the next students
