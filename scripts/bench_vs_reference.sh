#!/usr/bin/env bash
# Training-step time of tada and of the reference on the same config, on the CPU, in turns
# (tada, reference, tada, reference, ...) so that both see the same machine load:
#   scripts/bench_vs_reference.sh REFERENCE CONFIG BATCH THREADS ROUNDS [--set K=V]...
# CONFIG is relative to the REFERENCE checkout (e.g. configs/projects/epic-kitchen-ar/csn_ek100.yaml).
# tada side: `tada bench model` (release build); reference side: scripts/bench_step_reference.py
# (needs the Python environment of scripts/fixtures/README.md: PYTHONPATH with torchvision,
# einops, pyyaml, simplejson, psutil beside the project's .venv). Both run the same step:
# forward in training mode, cross-entropy on the first prediction, backward, SGD momentum 0.9.
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${1:?usage: REFERENCE CONFIG BATCH THREADS ROUNDS [--set K=V]...}
config=${2:?config}
batch=${3:?batch}
threads=${4:?threads}
rounds=${5:?rounds}
shift 5
seconds=${BENCH_SECONDS:-20}
bin=${TADA_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release --quiet --bin tada
  bin=${CARGO_TARGET_DIR:-target}/release/tada
fi
for r in $(seq 1 "$rounds"); do
  echo "round $r"
  OMP_NUM_THREADS=$threads "$bin" bench model --config "$ref/$config" --batch "$batch" \
    --seconds "$seconds" "$@" 2>&1 | grep -i "median" || true
  OMP_NUM_THREADS=$threads .venv/bin/python scripts/bench_step_reference.py --reference "$ref" \
    --config "$config" --batch "$batch" --threads "$threads" --seconds "$seconds" "$@"
done
