#!/usr/bin/env bash
# CUDA checks and GPU training throughput (docs/benchmarks.md, "Training on a GPU"), for a machine
# with a CUDA GPU:
#
#   scripts/bench_gpu.sh [--bin DIR] [OUT]
#
# 1. `tada info`, then the CUDA tests (tests/cuda.rs: autocast dtypes, MoSI in fp32/bf16/fp16,
#    contrastive + ParamCrop in bf16, CUDA vs CPU forward, checkpoints loading on the CPU);
# 2. `tada bench model` (forward + backward + SGD step alone) of R2D3D-18;
# 3. MoSI pretraining of R2D3D-18 (configs/bench/mosi_r2d3d_18_gpu.yaml) at batch 8 and 32 images
#    in each precision, and SimCLR + ParamCrop (configs/bench/simclr_paramcrop_r2d3d_18_gpu.yaml)
#    in fp32 and bf16: clips/s and data-wait share from metrics.jsonl (windows after the first),
#    and the peak GPU memory nvidia-smi reports for the process (CUDA context and the caching
#    allocator's reserve included, which is what the card has to hold).
# 4. `tada demo` on the GPU.
#
# DIR holds prebuilt `tada` and `integration` (the test binary) for machines without a Rust
# toolchain; libtorch is then taken from TADA_LIBTORCH_LIB, else from the python3 `torch`
# package, which must be the version tada was built against. Without --bin both are built here.
# Everything goes to OUT (default output/bench/gpu): one log per run and report.txt.
set -uo pipefail
cd "$(dirname "$0")/.."

bin_dir=""
if [[ "${1:-}" == "--bin" ]]; then bin_dir=${2:?--bin needs a folder}; shift 2; fi
out=${1:-output/bench/gpu}
mkdir -p "$out"
report="$out/report.txt"
: >"$report"
say() { printf '%s\n' "$*" | tee -a "$report"; }

if [[ -n "$bin_dir" ]]; then
  tada=$bin_dir/tada
  tests=$bin_dir/integration
  lib=${TADA_LIBTORCH_LIB:-$(python3 -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')}
  export LD_LIBRARY_PATH="$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
else
  bash scripts/setup.sh
  cargo build --release --quiet --bin tada || exit 1
  tada=target/release/tada
  tests=$(cargo test --release --no-run --test integration --message-format=json 2>/dev/null |
    python3 -c 'import json,sys; print([j["executable"] for j in map(json.loads, sys.stdin) if j.get("executable")][-1])')
fi

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | sed 's/^/gpu: /' | tee -a "$report"
"$tada" info 2>&1 | tee -a "$report" || { say "tada does not start"; exit 1; }
# Without CUDA every run below would fall back to the CPU and take hours.
grep -q '^CUDA *available' "$report" || { say "CUDA not available to tada: stopping"; exit 1; }

# --- CUDA tests
timeout 300 "$tests" cuda:: --test-threads=1 --nocapture >"$out/cuda_tests.log" 2>&1
say "cuda tests: $(grep '^test result' "$out/cuda_tests.log" || echo 'did not finish (see cuda_tests.log)')"
grep -E 'skipped|relative L2|mean' "$out/cuda_tests.log" | sed 's/^/  /' | tee -a "$report"

# --- peak GPU memory of one command: nvidia-smi polled every 100 ms, minus what was in use before
gpu_mem() { nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits | head -n 1; }
with_peak_mem() {  # with_peak_mem LOG CMD...; sets $peak_mib
  local log=$1; shift
  local base; base=$(gpu_mem)
  local poll="$out/.mem"
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 100 >"$poll" 2>/dev/null &
  local smi=$!
  # A hung run must not eat the machine's time: each gets RUN_TIMEOUT seconds (default 150).
  timeout "${RUN_TIMEOUT:-150}" "$@" >"$log" 2>&1
  local rc=$?
  kill "$smi" 2>/dev/null; wait "$smi" 2>/dev/null
  peak_mib=$(awk -v b="$base" 'BEGIN { m = b } $1 + 0 > m { m = $1 + 0 } END { print m - b }' "$poll")
  return $rc
}

# --- model step alone
with_peak_mem "$out/bench_model.log" "$tada" bench model --config configs/bench/mosi_r2d3d_18_gpu.yaml --batch 8 --seconds 10
say "bench model, batch 8 images (40 clips), fp32: $(tail -n 2 "$out/bench_model.log" | tr '\n' ' ')peak ${peak_mib} MiB"

# --- training runs
run_bench() {  # run_bench NAME CONFIG STEPS BATCH PRECISION
  local name=$1 config=$2 steps=$3 batch=$4 precision=$5
  local dir="$out/$name"
  rm -rf "$dir"
  if with_peak_mem "$out/$name.log" "$tada" pretrain --config "$config" --output "$dir" \
    --set TRAIN.BATCH_SIZE="$batch" --set TRAIN.NUM_SAMPLES=$((batch * steps)) \
    --set TRAIN.PRECISION="$precision"; then
    say "$name: $(python3 scripts/metrics_summary.py "$dir/metrics.jsonl" --loss), peak ${peak_mib} MiB"
  else
    say "$name: FAILED: $(tail -n 1 "$out/$name.log")"
  fi
}
for precision in fp32 bf16 fp16; do
  for batch in 8 32; do
    run_bench "mosi_b${batch}_${precision}" configs/bench/mosi_r2d3d_18_gpu.yaml 60 "$batch" "$precision"
  done
done
for precision in fp32 bf16; do
  run_bench "simclr_paramcrop_b16_${precision}" configs/bench/simclr_paramcrop_r2d3d_18_gpu.yaml 60 16 "$precision"
done
rm -f "$out/.mem"

# --- the demo (MoSI pretraining, two probes, test) end to end on the GPU
start=$(date +%s)
if timeout "${RUN_TIMEOUT:-150}" "$tada" demo --output "$out/demo" >"$out/demo.log" 2>&1; then
  say "demo on the GPU ($(( $(date +%s) - start )) s): $(grep 'probe accuracy' "$out/demo.log")"
else
  say "demo: FAILED: $(tail -n 1 "$out/demo.log")"
fi

# libtorch prints "Warning:" lines for deprecated calls; tada should make none per step.
say "libtorch warnings in the logs: $(cat "$out"/*.log | grep -c 'Warning:')"
