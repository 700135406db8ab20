#!/usr/bin/env python3
"""Convert localisation feature files saved with torch.save (`<clip>.pkl`, as the reference's
feature zoo keeps them, numpy arrays or tensors) into NumPy files tada reads with
DATA.LOAD_TYPE numpy: `<clip>.npy` for a features folder, `<clip>.npz` (verb_class,
noun_class) for a classifier-results folder.

    .venv/bin/python scripts/convert_features.py IN_DIR OUT_DIR [--classifier]

torch.load unpickles with weights_only=False here: only convert files you trust (tada's own
reader never executes anything from a file, which is why it reads tensors alone).
"""

import argparse
import os
import sys

import numpy as np
import torch


def as_array(x):
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("--classifier", action="store_true",
                    help="the files are dicts with verb_class and noun_class")
    a = ap.parse_args()
    os.makedirs(a.output, exist_ok=True)
    names = sorted(n for n in os.listdir(a.input) if n.endswith(".pkl"))
    if not names:
        sys.exit(f"{a.input}: no .pkl files")
    for i, name in enumerate(names):
        path = os.path.join(a.input, name)
        data = torch.load(path, weights_only=False, map_location="cpu")
        stem = os.path.join(a.output, name[:-4])
        if a.classifier:
            missing = [k for k in ("verb_class", "noun_class") if k not in data]
            if missing:
                sys.exit(f"{path}: no {', '.join(missing)} entry")
            np.savez(stem + ".npz", verb_class=as_array(data["verb_class"]).astype(np.float32),
                     noun_class=as_array(data["noun_class"]).astype(np.float32))
        else:
            arr = as_array(data).astype(np.float32)
            if arr.ndim != 2:
                sys.exit(f"{path}: shape {arr.shape}; features are (rows, channels)")
            np.save(stem + ".npy", np.ascontiguousarray(arr))
        if (i + 1) % 1000 == 0:
            print(f"{i + 1}/{len(names)}", flush=True)
    print(f"converted {len(names)} files into {a.output}")


if __name__ == "__main__":
    main()
