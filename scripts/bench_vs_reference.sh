#!/usr/bin/env bash
# Training-step time of tada and of the reference on the same config, on the CPU, in interleaved
# rounds (tada, reference, tada, reference, ...) so that both see the same machine load; prints
# each round's medians and, at the end, the median over rounds of each side and their ratio
# (reference step time / tada step time: above 1 means tada is faster):
#   scripts/bench_vs_reference.sh REFERENCE CONFIG BATCH THREADS ROUNDS [--set K=V]...
# REFERENCE is a checkout of alibaba-mmai-research/TAdaConv (git clone
# https://github.com/alibaba-mmai-research/TAdaConv; the figures in docs/benchmarks.md used
# 75b7839); CONFIG is relative to it (e.g. configs/projects/epic-kitchen-ar/csn_ek100.yaml).
# tada side: `tada bench model` (release build, or TADA_BIN); reference side:
# scripts/bench_step_reference.py in the project's .venv with PYTHONPATH holding torchvision,
# einops, pyyaml, simplejson and psutil (scripts/fixtures/README.md). Both run the same step:
# forward in training mode, cross-entropy on the first prediction, backward, SGD momentum 0.9.
# BENCH_SECONDS (default 20) is each side's timing budget per round.
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
median_of() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ours=(); theirs=()
for r in $(seq 1 "$rounds"); do
  t=$(OMP_NUM_THREADS=$threads "$bin" bench model --config "$ref/$config" --batch "$batch" \
    --seconds "$seconds" "$@" 2>&1 | grep -o 'median [0-9.]*' | head -n 1 | cut -d' ' -f2)
  p=$(OMP_NUM_THREADS=$threads .venv/bin/python scripts/bench_step_reference.py --reference "$ref" \
    --config "$config" --batch "$batch" --threads "$threads" --seconds "$seconds" "$@" \
    | grep -o 'median [0-9.]*' | cut -d' ' -f2)
  echo "round $r: tada ${t} ms, reference ${p} ms"
  ours+=("$t"); theirs+=("$p")
done
mt=$(printf '%s\n' "${ours[@]}" | median_of)
mp=$(printf '%s\n' "${theirs[@]}" | median_of)
echo "$config batch $batch, $threads threads, $rounds rounds: tada median ${mt} ms, reference median ${mp} ms, ratio $(awk -v a="$mp" -v b="$mt" 'BEGIN { printf "%.2f", a / b }')x"
