#!/usr/bin/env python3
"""Load a `tada export` file the way a PyTorch user would.

Usage: export_readback.py WEIGHTS.safetensors EXPECTED.json

EXPECTED.json maps each state_dict name of the reference model to {"shape": [...], "dtype":
"float32" | "int64" | ...}. The script builds a torch module with exactly those parameters and
buffers (BatchNorm statistics and counters as buffers), loads
`safetensors.torch.load_file(WEIGHTS)` into it with `load_state_dict` (strict: no missing, no
unexpected key) and checks every dtype, which load_state_dict would silently cast. Prints
{"tensors": N, "strict_load": "ok"}; exits non-zero on any difference.
"""

import json
import sys

import torch
from safetensors.torch import load_file

BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def module_with(expected):
    root = torch.nn.Module()
    for name, e in expected.items():
        *path, leaf = name.split(".")
        m = root
        for part in path:
            if part not in m._modules:
                m.add_module(part, torch.nn.Module())
            m = m._modules[part]
        t = torch.zeros(e["shape"], dtype=getattr(torch, e["dtype"]))
        if leaf in BUFFERS:
            m.register_buffer(leaf, t)
        else:
            m.register_parameter(leaf, torch.nn.Parameter(t, requires_grad=t.is_floating_point()))
    return root


def main(argv):
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    state = load_file(argv[1])
    with open(argv[2]) as f:
        expected = json.load(f)
    model = module_with(expected)
    model.load_state_dict(state)
    wrong = [
        f"{k}: {state[k].dtype}, expected torch.{expected[k]['dtype']}"
        for k in expected
        if state[k].dtype != getattr(torch, expected[k]["dtype"])
    ]
    if wrong:
        print("dtype differs: " + "; ".join(wrong), file=sys.stderr)
        return 1
    print(json.dumps({"tensors": len(state), "strict_load": "ok"}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
