#!/usr/bin/env bash
# The main job: set-up (idempotent), release build, then `tada demo`: MoSI pretraining on embedded
# images, then linear probes of the MoSI backbone and of a random one on embedded videos (about a
# minute on 2 cores after the build). Extra arguments go to `tada demo` (e.g. --seed 1).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --quiet --release --bin tada
exec target/release/tada demo "$@"
