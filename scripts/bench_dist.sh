#!/usr/bin/env bash
# Data-parallel scaling on this machine's CPUs (docs/benchmarks.md#data-parallel-training): the
# same config as one process with 1 thread, one process with NPROC threads, and NPROC ranks of
# 1 thread each under `tada launch` (Gloo), in ROUNDS interleaved rounds; prints the median
# clips/s of each (global clips: every rank's) and the scaling efficiency
# clips/s(NPROC ranks) / (NPROC x clips/s(1 process, 1 thread)). Usage:
#   scripts/bench_dist.sh [CONFIG] [NPROC] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-configs/bench/dist_mosi_r2d3d_18_cpu.yaml}
nproc=${2:-2}
rounds=${3:-3}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash scripts/setup.sh
cargo build --release --quiet --bin tada
tada=./target/release/tada
clips() { python3 scripts/metrics_summary.py "$1/metrics.jsonl" | sed -E 's/.*: ([0-9.]+) clips\/s.*/\1/'; }
declare -a one many ranks
for r in $(seq 1 "$rounds"); do
  OMP_NUM_THREADS=1 $tada pretrain --config "$config" -o "$out/one$r" -q >/dev/null
  one+=("$(clips "$out/one$r")")
  OMP_NUM_THREADS=$nproc $tada pretrain --config "$config" -o "$out/many$r" -q >/dev/null
  many+=("$(clips "$out/many$r")")
  OMP_NUM_THREADS=1 $tada launch --nproc "$nproc" -- pretrain --config "$config" -o "$out/ranks$r" -q >/dev/null 2>&1
  ranks+=("$(clips "$out/ranks$r")")
  echo "round $r: 1 process x 1 thread ${one[-1]} | 1 process x $nproc threads ${many[-1]} | $nproc ranks x 1 thread ${ranks[-1]} clips/s"
done
python3 - "$nproc" "${one[*]}" "${many[*]}" "${ranks[*]}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
one, many, ranks = (statistics.median(map(float, a.split())) for a in sys.argv[2:5])
print(f"median clips/s: 1 process x 1 thread {one:.2f} | 1 process x {n} threads {many:.2f} | "
      f"{n} ranks x 1 thread {ranks:.2f}")
print(f"scaling efficiency {n} ranks: {ranks / (n * one):.1%} of {n} x one rank; "
      f"{ranks / many:.2f}x the one-process run on the same {n} threads")
PY
