#!/usr/bin/env bash
# Training throughput of a config: runs `tada pretrain` (or `finetune` with --finetune) into a
# scratch folder and reports clips/s and the data-wait share from its metrics.jsonl, averaged
# over the logged windows after the first (which holds start-up). Usage:
#   scripts/bench_train.sh [--finetune] CONFIG [--set K=V]...
set -euo pipefail
cd "$(dirname "$0")/.."
cmd=pretrain
if [[ "${1:-}" == "--finetune" ]]; then cmd=finetune; shift; fi
config=${1:?usage: scripts/bench_train.sh [--finetune] CONFIG [--set K=V]...}
shift
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
bash scripts/setup.sh
cargo build --release --quiet --bin tada
./target/release/tada "$cmd" --config "$config" --output "$out" "$@" >/dev/null
python3 scripts/metrics_summary.py "$out/metrics.jsonl"
