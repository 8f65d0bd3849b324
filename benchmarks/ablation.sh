#!/usr/bin/env bash
# DeNS ablation: the same architecture and wall-clock budget with and without DeNS (or any set of
# DeNS settings), then `dens-calc eval` of every run on the dataset's test file(s).
#
#   bash benchmarks/ablation.sh DATASET [MINUTES] [THREADS_PER_RUN] [WORKDIR] [NAME="FLAGS" ...]
#
# DATASET: aspirin (rMD17: the first TRAIN_FRAMES frames of the train file, 5 % of them for
#          validation, the full 1800-frame test file; as ../shared/peers/train_mace_aspirin.sh)
#          3bpa    (train_300K, 5 % for validation, E0s from iso_atoms.xyz; tests test_300K, test_600K)
# Runs: by default "dens" (the MD17 recipe of DENS.md: p 0.25, r 0.25, σ 0.05 Å, λ 5 decaying to 0)
# and "nodens"; NAME="FLAGS" arguments replace them (e.g. a σ scan: s02="--dens --dens-sigma 0.02").
# All runs start together with THREADS_PER_RUN threads each, so they share the machine equally, and
# each stops cleanly after MINUTES.  Environment: TRAIN_FRAMES (aspirin, default 1000), EPOCHS
# (length of the cosine schedule; aspirin 60, 3bpa 90), PYTHON, and PATH must find dens-calc.
set -euo pipefail
DATASET="${1:?usage: ablation.sh aspirin|3bpa [MINUTES] [THREADS] [WORKDIR] [NAME=FLAGS ...]}"
MINUTES="${2:-60}"
THREADS="${3:-1}"
WORK="${4:-runs/ablation_$DATASET}"
shift $(( $# < 4 ? $# : 4 ))
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SHARED="$REPO/../shared/data"
PY="${PYTHON:-python}"
mkdir -p "$WORK"
case "$DATASET" in
  aspirin)
    TRAIN_FRAMES="${TRAIN_FRAMES:-1000}"
    "$PY" - "$SHARED/rmd17_aspirin/rmd17_aspirin_train.xyz" "$WORK/train.xyz" "$TRAIN_FRAMES" <<'PY'
import sys, ase.io
ase.io.write(sys.argv[2], ase.io.read(sys.argv[1], f":{int(sys.argv[3])}"), format="extxyz")
PY
    DATA=(--train "$WORK/train.xyz")
    TESTS=("$SHARED/rmd17_aspirin/rmd17_aspirin_test.xyz")
    EPOCHS="${EPOCHS:-60}" ;;
  3bpa)
    DATA=(--train "$SHARED/3BPA/train_300K.xyz" --e0s "$SHARED/3BPA/iso_atoms.xyz")
    TESTS=("$SHARED/3BPA/test_300K.xyz" "$SHARED/3BPA/test_600K.xyz")
    EPOCHS="${EPOCHS:-90}" ;;
  *) echo "unknown dataset '$DATASET' (aspirin or 3bpa)" >&2; exit 2 ;;
esac
RUNS=("$@")
if [ ${#RUNS[@]} -eq 0 ]; then
  RUNS=("dens=--dens --dens-p 0.25 --dens-sigma 0.05 --dens-ratio 0.25 --dens-lambda 5 --dens-lambda-decay"
        "nodens=--no-dens")
fi
COMMON=("${DATA[@]}" --valid-fraction 0.05 --forces conservative --channels 64 --l-max 2 --layers 2
        --r-max 5.0 --batch-size 5 --lr 5e-3 --max-epochs "$EPOCHS" --time-limit "$MINUTES" --seed 123
        --no-progress)
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
for spec in "${RUNS[@]}"; do
  name="${spec%%=*}"
  read -r -a flags <<< "${spec#*=}"
  if grep -qE "training stopped \((max_epochs|early_stopping)\)" "$WORK/$name/train.log" 2>/dev/null; then
    echo "$name: already finished ($WORK/$name), evaluating only"
  elif [ -f "$WORK/$name/last.pt" ]; then   # stopped by the time limit or killed: continue the same trajectory
    dens-calc train --resume "$WORK/$name" --time-limit "$MINUTES" > "$WORK/$name.log" 2>&1 &
  else
    dens-calc train "${COMMON[@]}" --out "$WORK/$name" "${flags[@]}" > "$WORK/$name.log" 2>&1 &
  fi
done
wait
for spec in "${RUNS[@]}"; do
  name="${spec%%=*}"
  for test in "${TESTS[@]}"; do
    tag="$(basename "$test" .xyz)"
    dens-calc eval --model "$WORK/$name" "$test" --json --plot "$WORK/$name/plots_$tag" \
      > "$WORK/$name/eval_$tag.json"
  done
done
echo "done: $WORK"
