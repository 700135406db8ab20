#!/usr/bin/env bash
# Makes a UCF101-format benchmark dataset of 320x240 H.264 mp4 clips with the ffmpeg CLI:
#   scripts/make_bench_videos.sh DIR [N=32] [SECONDS=8]
# DIR/videos/Class<k>/v_<i>.mp4 (25 fps, key frame every 2 s, textured moving content), plus
# DIR/classInd.txt, DIR/trainlist01.txt, DIR/testlist01.txt (UCF101's own formats) and DIR/list.txt
# (`path label`, for benches/python/pyav_loader.py).
set -euo pipefail
dir=${1:?usage: make_bench_videos.sh DIR [N] [SECONDS]}
n=${2:-32}
secs=${3:-8}
classes=4
mkdir -p "$dir/videos"
: >"$dir/classInd.txt"; : >"$dir/trainlist01.txt"; : >"$dir/testlist01.txt"; : >"$dir/list.txt"
for k in $(seq 1 $classes); do echo "$k Class$k" >>"$dir/classInd.txt"; mkdir -p "$dir/videos/Class$k"; done
for i in $(seq 1 "$n"); do
  k=$(( (i - 1) % classes + 1 ))
  rel="Class$k/v_$i.mp4"
  out="$dir/videos/$rel"
  if [ ! -s "$out" ]; then
    # testsrc2 moves; the noise makes the encoder spend bits like camera footage does.
    ffmpeg -v error -y -f lavfi -i "testsrc2=size=320x240:rate=25:duration=$secs" \
      -vf "hue=h=$((i * 37 % 360)),noise=alls=12:allf=t" -c:v libx264 -preset veryfast -g 50 \
      -pix_fmt yuv420p "$out"
  fi
  echo "$rel $k" >>"$dir/trainlist01.txt"
  echo "$rel" >>"$dir/testlist01.txt"
  echo "videos/$rel $((k - 1))" >>"$dir/list.txt"
done
echo "made $n videos in $dir"
