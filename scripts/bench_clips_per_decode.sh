#!/usr/bin/env bash
# Loader efficiency of decode-once-many-clips (docs/benchmarks.md#decode-once-many-clips-issue-18):
# useful frames delivered per second by one loader worker with DATA.CLIPS_PER_DECODE 1, 2 and 4,
# against `ffmpeg -threads 1 -i F -f null -` full-decode frames/s of the same files, in
# interleaved rounds; prints every round and the medians.
#   scripts/bench_clips_per_decode.sh DATASET_DIR [ROUNDS=5] [SECONDS=10] [TADA=tada]
# DATASET_DIR as scripts/make_bench_videos.sh makes it, e.g.
#   scripts/make_bench_videos.sh /tmp/h18vid 16 10 default h264
#   scripts/make_bench_videos.sh /tmp/h18avi 16 10 default mpeg4
set -euo pipefail
dir=${1:?usage: bench_clips_per_decode.sh DATASET_DIR [ROUNDS] [SECONDS] [TADA]}
rounds=${2:-5}
secs=${3:-10}
tada=${4:-tada}
cfg="$dir/bench_k.yaml"
cat >"$cfg" <<EOF
VIDEO: {HEAD: {NUM_CLASSES: 4}}
TRAIN: {DATASET: ucf101, BATCH_SIZE: 8}
DATA: {DATA_ROOT_DIR: $dir/videos, ANNO_DIR: $dir}
DATA_LOADER: {NUM_WORKERS: 1}
EOF
mapfile -t files < <(find "$dir/videos" -type f \( -name '*.mp4' -o -name '*.avi' \) | sort)
# The index is built on first read; build it first so every round reads the same way.
"$tada" data check --config "$cfg" --index --workers 1 2>/dev/null | grep index
declare -A all
for r in $(seq 1 "$rounds"); do
  # Full decode of every file, one thread: frames over wall seconds.
  t0=$(date +%s.%N); frames=0
  for f in "${files[@]}"; do
    n=$(ffmpeg -hide_banner -nostats -threads 1 -i "$f" -f null - 2>&1 |
      tr '\r' '\n' | sed -n 's/^frame= *\([0-9]*\).*/\1/p' | tail -1)
    frames=$((frames + n))
  done
  t1=$(date +%s.%N)
  ff=$(echo "$frames / ($t1 - $t0)" | bc -l)
  all[ffmpeg]+="$(printf '%.0f' "$ff") "
  for k in 1 2 4; do
    line=$("$tada" bench data --config "$cfg" --seconds "$secs" --set DATA.CLIPS_PER_DECODE=$k | tail -1)
    fps=$(echo "$line" | sed -n 's/.* \([0-9.]*\) frames\/s per worker.*/\1/p')
    all[k$k]+="$fps "
  done
  echo "round $r: ffmpeg $(printf '%.0f' "$ff") frames/s | k=1,2,4: $(for k in 1 2 4; do echo -n "${all[k$k]}" | awk '{printf "%s ", $NF}'; done)useful frames/s per worker"
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
ffm=$(echo "${all[ffmpeg]}" | median)
echo "ffmpeg -threads 1 full decode: median $ffm frames/s (rounds: ${all[ffmpeg]})"
for k in 1 2 4; do
  m=$(echo "${all[k$k]}" | median)
  echo "tada, DATA.CLIPS_PER_DECODE=$k: median $m useful frames/s per worker = $(echo "100 * $m / $ffm" | bc -l | xargs printf '%.0f')% of ffmpeg (rounds: ${all[k$k]})"
done
