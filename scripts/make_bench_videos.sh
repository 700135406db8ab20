#!/usr/bin/env bash
# Makes a UCF101-format benchmark dataset of 320x240 videos with the ffmpeg CLI:
#   scripts/make_bench_videos.sh DIR [N=32] [SECONDS=8] [KEYINT=50] [CODEC=h264]
# KEYINT: frames between key frames, or `default` for the encoder's own (x264: 250, with scene
# cuts; FFmpeg's mpeg4: 12). CODEC: h264 (libx264 in .mp4) or mpeg4 (MPEG-4 part 2 in .avi, as
# UCF101 and HMDB51 ship).
# DIR/videos/Class<k>/v_<i>.<ext> (25 fps, textured moving content), plus DIR/classInd.txt,
# DIR/trainlist01.txt, DIR/testlist01.txt (UCF101's own formats) and DIR/list.txt (`path label`,
# for benches/python/pyav_loader.py).
set -euo pipefail
dir=${1:?usage: make_bench_videos.sh DIR [N] [SECONDS] [KEYINT] [CODEC]}
n=${2:-32}
secs=${3:-8}
keyint=${4:-50}
codec=${5:-h264}
case "$codec" in
  h264) ext=mp4; enc=(-c:v libx264 -preset veryfast -pix_fmt yuv420p) ;;
  mpeg4) ext=avi; enc=(-c:v mpeg4 -qscale:v 4) ;;
  *) echo "CODEC must be h264 or mpeg4, not $codec" >&2; exit 2 ;;
esac
gop=()
if [ "$keyint" != default ]; then gop=(-g "$keyint"); fi
classes=4
mkdir -p "$dir/videos"
: >"$dir/classInd.txt"; : >"$dir/trainlist01.txt"; : >"$dir/testlist01.txt"; : >"$dir/list.txt"
for k in $(seq 1 $classes); do echo "$k Class$k" >>"$dir/classInd.txt"; mkdir -p "$dir/videos/Class$k"; done
for i in $(seq 1 "$n"); do
  k=$(( (i - 1) % classes + 1 ))
  rel="Class$k/v_$i.$ext"
  out="$dir/videos/$rel"
  if [ ! -s "$out" ]; then
    # testsrc2 moves; the noise makes the encoder spend bits like camera footage does.
    ffmpeg -v error -y -f lavfi -i "testsrc2=size=320x240:rate=25:duration=$secs" \
      -vf "hue=h=$((i * 37 % 360)),noise=alls=12:allf=t" "${enc[@]}" "${gop[@]}" "$out"
  fi
  echo "$rel $k" >>"$dir/trainlist01.txt"
  echo "$rel" >>"$dir/testlist01.txt"
  echo "videos/$rel $((k - 1))" >>"$dir/list.txt"
done
echo "made $n videos in $dir"
