"""Baseline for `tada bench data`: the same training-clip pipeline in PyTorch with PyAV decoding,
through torch.utils.data.DataLoader, so the two can be compared per worker on the same files.

    .venv/bin/python -m pip install av   # once; not part of the set-up
    .venv/bin/python benches/python/pyav_loader.py LIST.txt --workers 1 --seconds 20

LIST.txt: one `path label` per line (UCF101 trainlist style, paths relative to the list's folder
or absolute). Pipeline per clip, as tada's (docs/transforms.md#the-clip-pipeline): interval-based sampling of 16
frames at rate 4 (fps / target fps 30 scaling), seek to the key frame before the first wanted frame
and decode forward, RGB uint8 -> float, random flip, short side to U(168, 224), random 112 crop,
normalise (no colour jitter, as tada's default COLOR_AUG: false).

--style seek (default): seek, decode forward, convert only the wanted frames (the strongest PyAV
  pipeline we could write). --style read_video: what torchvision.io.read_video (pyav backend; gone
  from torchvision 0.26) did: decode every frame of the clip's time span and convert each to RGB,
  then index. Decoding is single-threaded (codec thread_count 1) so the figure is per core.
"""
import argparse
import os
import random
import time

import av
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


class Clips(Dataset):
    def __init__(self, items, style, frames=16, rate=4, target_fps=30.0, scales=(168, 224), crop=112):
        self.items, self.frames, self.rate, self.target_fps = items, frames, rate, target_fps
        self.style = style
        self.scales, self.crop = scales, crop
        self.mean = torch.tensor([0.45] * 3).view(3, 1, 1, 1)
        self.std = torch.tensor([0.225] * 3).view(3, 1, 1, 1)

    def __len__(self):
        return len(self.items)

    def indices(self, n, fps):
        span = self.frames * self.rate * fps / self.target_fps
        start = random.uniform(0, max(n - span, 0))
        idx = torch.linspace(start, start + span - 1, self.frames).clamp(0, n - 1).long()
        return idx.tolist()

    def decode(self, path):
        with av.open(path) as c:
            s = c.streams.video[0]
            s.thread_count = 1
            fps = float(s.average_rate)
            n = s.frames or int(round(float(s.duration * s.time_base) * fps))
            want = self.indices(n, fps)
            first, last = min(want), max(want)
            tb = float(s.time_base)
            start = s.start_time or 0
            c.seek(int(first / fps / tb) + start, stream=s, backward=True, any_frame=False)
            got = {}
            for f in c.decode(s):
                i = int(round((f.pts - start) * tb * fps))
                if i > last:
                    break
                if self.style == "read_video":
                    if i >= first:
                        got[i] = f.to_ndarray(format="rgb24")
                elif i in want and i not in got:
                    got[i] = f.to_ndarray(format="rgb24")
            return np.stack([got[i] for i in want])

    def __getitem__(self, k):
        path, label = self.items[k]
        t = torch.from_numpy(self.decode(path))  # (T, H, W, 3) uint8
        x = t.permute(3, 0, 1, 2).float() / 255.0
        if random.random() < 0.5:
            x = x.flip(3)
        h, w = x.shape[2:]
        short = int(random.uniform(*self.scales))
        nh, nw = (short, int(w / h * short)) if h < w else (int(h / w * short), short)
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False)
        y0 = int(random.uniform(0, nh - self.crop))
        x0 = int(random.uniform(0, nw - self.crop))
        x = x[:, :, y0 : y0 + self.crop, x0 : x0 + self.crop]
        return (x - self.mean) / self.std, label


def main():
    p = argparse.ArgumentParser()
    p.add_argument("list")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--style", choices=["seek", "read_video"], default="seek")
    a = p.parse_args()
    root = os.path.dirname(os.path.abspath(a.list))
    items = []
    for line in open(a.list):
        if line.strip():
            path, label = line.split()
            items.append((path if os.path.isabs(path) else os.path.join(root, path), int(label)))
    loader = DataLoader(Clips(items, a.style), batch_size=a.batch, shuffle=True, num_workers=a.workers,
                        persistent_workers=a.workers > 0)
    clips, t0 = 0, None
    while True:
        for x, _ in loader:
            if t0 is None:
                t0 = time.perf_counter()  # the first batch pays for worker start-up
                continue
            clips += x.shape[0]
            if time.perf_counter() - t0 >= a.seconds:
                dt = time.perf_counter() - t0
                print(f"PyAV ({a.style}) + DataLoader, {a.workers} workers, clip {tuple(x.shape[1:])}: "
                      f"{clips} clips in {dt:.2f} s")
                print(f"{clips / dt:.1f} clips/s, {clips / dt / max(a.workers, 1):.1f} clips/s per worker")
                return


if __name__ == "__main__":
    main()
