#!/usr/bin/env bash
# The main job: set-up (idempotent), release build, then run.
# Until `tada demo` lands (trainers issue) this runs the smallest real command, `tada info`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec cargo run --quiet --release --bin tada -- info "$@"
