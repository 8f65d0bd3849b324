#!/usr/bin/env bash
# DeNS ablation on rMD17 aspirin: the same architecture and budget with and without DeNS.
# Protocol (as the MACE peer, ../shared/peers/train_mace_aspirin.sh): the first 1000 frames of
# rmd17_aspirin_train.xyz, 5 % of them for validation, the full 1800-frame test file.
#
#   bash benchmarks/ablation_aspirin.sh [MINUTES] [THREADS_PER_RUN] [WORKDIR]
#
# Both runs start together, each with THREADS_PER_RUN threads, so they share the machine
# equally; each stops cleanly after MINUTES and is then evaluated on the test set.
set -euo pipefail
MINUTES="${1:-60}"
THREADS="${2:-1}"
WORK="${3:-runs/ablation_aspirin}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$REPO/../shared/data/rmd17_aspirin"
PY="${PYTHON:-python}"
mkdir -p "$WORK"
"$PY" - "$DATA/rmd17_aspirin_train.xyz" "$WORK/train1000.xyz" <<'PY'
import sys, ase.io
ase.io.write(sys.argv[2], ase.io.read(sys.argv[1], ":1000"), format="extxyz")
PY
COMMON=(--train "$WORK/train1000.xyz" --valid-fraction 0.05 --forces conservative
        --channels 64 --l-max 2 --layers 2 --r-max 5.0 --batch-size 5 --lr 5e-3
        --max-epochs 60 --time-limit "$MINUTES" --seed 123 --no-progress)
export OMP_NUM_THREADS="$THREADS" MKL_NUM_THREADS="$THREADS"
dens-calc train "${COMMON[@]}" --out "$WORK/dens" --dens --dens-p 0.25 --dens-sigma 0.05 \
  --dens-ratio 0.25 --dens-lambda 5 --dens-lambda-decay > "$WORK/dens.log" 2>&1 &
dens-calc train "${COMMON[@]}" --out "$WORK/nodens" --no-dens > "$WORK/nodens.log" 2>&1 &
wait
for run in dens nodens; do
  dens-calc eval --model "$WORK/$run" "$DATA/rmd17_aspirin_test.xyz" --json --plot "$WORK/$run/plots" \
    | tee "$WORK/$run/test_eval.json"
done
