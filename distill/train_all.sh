#!/usr/bin/env bash
# The whole training chain, in order; each stage resumes from its checkpoint when run again.
# Usage: bash distill/train_all.sh [SHARED_DATA_DIR]   (default ../shared/data)
#        RECOVER=1 bash distill/train_all.sh             a new machine: rebuild the shipped students' runs from
#                                                        their fp32 ONNX files in weights/ instead of retraining them,
#                                                        and the runs kept in weights/kept/ (`distill keep RUN`)
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-../shared/data}
export HF_HUB_OFFLINE=1
cache=${LIBREFACE_CACHE:-$HOME/.cache/libreface}
[ -f "$cache/prepared/ferplus/prepare_report.json" ] && [ -f "$cache/prepared/ckplus/prepare_report.json" ] ||
  python -m distill prepare --dataset ferplus "$data/ferplus" --dataset ckplus "$data/ckplus48"
if [ "${RECOVER:-0}" = 1 ]; then
  for pair in au_r18.v1:student_r18 au_r10t.v1:student_r10t au_r10t.v2:student_r10t_v2 au_r10t.v3:student_r10t_v3 au_r10t.v4:student_r10t_v4 au_r10t.v6:student_r10t_v6; do
    run=${pair%%:*} cfg=${pair##*:}
    [ -f "$cache/runs/$run/done.json" ] || python -m distill recover "weights/$run.onnx" "distill/configs/$cfg.yaml"
  done
  for kept in weights/kept/*.pt; do  # teachers and unfinished pretraining runs kept by `distill keep RUN`
    [ -f "$kept" ] || continue
    run=$(basename "$kept" .pt)
    [ -f "$cache/runs/$run/last.pt" ] || [ -f "$cache/runs/$run/best.pt" ] || python -m distill recover "$kept"
  done
fi
python -m distill train-teacher distill/configs/teacher_swin.yaml
python -m distill pretrain-mae distill/configs/pretrain_mae.yaml
python -m distill train-teacher distill/configs/teacher_mae.yaml
python -m distill train-student distill/configs/student_r18.yaml
python -m distill train-student distill/configs/student_r18_nokd.yaml
python -m distill train-student distill/configs/student_r10t.yaml        # its teacher is au_r18_nokd.v1
python -m distill train-student distill/configs/student_r10t_nokd.yaml
python -m distill train-student distill/configs/student_r10t_v2.yaml    # teachers: au_r10t.v1, au_r18_nokd.v1
python -m distill train-student distill/configs/student_r10t_nokd_v2.yaml  # ablation partner of v2 and v3 (12 epochs)
python -m distill train-student distill/configs/student_r10t_v3.yaml    # teachers: au_r10t.v2, au_r10t_nokd.v2
python -m distill train-student distill/configs/student_r10t_nokd_v4.yaml  # 18 epochs, bfloat16 (ablation partner of v4)
python -m distill train-student distill/configs/student_r10t_v4.yaml    # teachers: au_r10t_nokd.v4, au_r10t.v3, au_r10t.v2
python -m distill train-teacher distill/configs/teacher_swin_v2.yaml   # 30-epoch Swin from scratch (bfloat16, 112 min): 75.1 % FER+ test
python -m distill train-teacher distill/configs/teacher_swin_v3.yaml   # v2 + 20 epochs taught by au_r10t.v4 + au_r10t.v3 (94 min): 79.9 % FER+ test
python -m distill train-student distill/configs/student_r10t_v5.yaml    # teachers: teacher_swin.v3, au_r10t.v4, au_r10t.v3 (32 min): 82.9 %, not shipped
python -m distill train-student distill/configs/student_r10t_nokd_v6.yaml  # 30 epochs, no distillation (54 min): 82.7 % (ablation of v6)
python -m distill train-student distill/configs/student_r10t_v6.yaml    # teachers: au_r10t.v4, au_r10t.v3, au_r10t.v2; 30 epochs (79 min): 84.1 %
# The teachers issue (docs/models.md, "Teachers: the scaling study"): the next student's no-distillation twin, the long
# MAE pretraining (200 epochs: ~10 h on 2 AMD EPYC cores with the fused attention kernel, ~4.7 h on 2 Xeon cores
# with AMX and the math attention of session 7; snapshots for the scaling study) and the study itself.
[ -f "$cache/prepared/videos/prepare_report.json" ] || python -m distill prepare --dataset videos "$data/videos"
python -m distill train-student distill/configs/student_r10t_nokd_v8.yaml  # OpenFace AUs, filming augmentations, no distillation (49 min)
nice -n 19 python -m distill pretrain-mae distill/configs/pretrain_mae_v2.yaml
python -m distill scaling --finetune distill/configs/teacher_mae_probe.yaml distill/configs/teacher_mae_probe_deit.yaml \
  --finetune-epochs 10 25 50 100 200   # DeiT probe: needs au_r10t.v6 (trained above, or RECOVER=1)
python -m distill train-teacher distill/configs/teacher_mae_deit_v2.yaml  # the real fine-tune of the 50-epoch snapshot (~4 h)
python -m distill scaling --finetune distill/configs/teacher_mae_probe.yaml distill/configs/teacher_mae_probe_deit.yaml \
  --finetune-epochs 10 25 50 --teachers teacher_mae_deit.v2   # the report as committed
python -m distill evaluate --split valid --runs teacher_mae_deit.v2 au_r10t.v6 --ensemble teacher_mae_deit.v2 au_r10t.v6 \
  --out reports/teacher_ensemble   # the next student's two teachers, alone and averaged (FER+ Valid)
python -m distill train-student distill/configs/student_r10t_v9.yaml   # the next student: v8's recipe, taught by the MAE teacher + au_r10t.v6
python -m distill export au_r10t.v9 --weights "$cache/eval_weights"   # not shipped: exported beside the twin for comparison
python -m distill export au_r10t_nokd.v8 --weights "$cache/eval_weights"
python -m distill evaluate --split valid --aus openface --onnx weights/au_r10t_int8.v7.onnx \
  "$cache/eval_weights/au_r10t_nokd_int8.v8.onnx" "$cache/eval_weights/au_r10t_int8.v9.onnx" "$cache/eval_weights/au_r10t.v9.onnx" \
  --runs au_r10t.v9 au_r10t_nokd.v8 --out reports/v9_valid   # the distillation gain and the default's choice (FER+ Valid)
python -m distill robustness --onnx weights/au_r10t_int8.v7.onnx "$cache/eval_weights/au_r10t_nokd_int8.v8.onnx" \
  "$cache/eval_weights/au_r10t_int8.v9.onnx" --out reports/v9_robustness   # turned, occluded and relit faces (FER+ Valid)
# Session 7 on: the teacher from the 200-epoch pretraining, class-balanced, kept in weights/kept/ once finished; its
# ensemble with au_r10t.v6 measured per class; then the student distilled from them (the pretraining line above
# resumes to epoch 200 first).
python -m distill train-teacher distill/configs/teacher_mae_deit_v3.yaml   # ~1.5 h on 2 Xeon cores with AMX
python -m distill keep teacher_mae_deit.v3
python -m distill evaluate --split valid --runs teacher_mae_deit.v3 au_r10t.v6 --ensemble teacher_mae_deit.v3 au_r10t.v6 \
  --out reports/teacher_ensemble_v3
python -m distill train-student distill/configs/student_r10t_v10.yaml   # only if that ensemble beats the students (its header)
