#!/usr/bin/env python3
"""Training-step time of the reference's model for a config, on the CPU: the same step as
`tada bench model` (forward in training mode, cross-entropy on the first prediction against
class 0, backward, SGD with momentum 0.9 at lr 1e-3), on random input of
(batch, NUM_INPUT_CHANNELS, NUM_INPUT_FRAMES, TRAIN_CROP_SIZE, TRAIN_CROP_SIZE), two warm-up steps,
then steps for about --seconds (at least 3); prints the median and mean step time.

Usage (environment as in scripts/fixtures/README.md):
    PYTHONPATH=/tmp/fxlib .venv/bin/python scripts/bench_step_reference.py \\
        --reference /tmp/TAdaConv --config configs/projects/epic-kitchen-ar/csn_ek100.yaml \\
        --set DATA.NUM_INPUT_FRAMES=8 --set DATA.TRAIN_CROP_SIZE=112 --batch 1 --threads 2

--config is relative to the reference checkout (as its own launcher reads it) or absolute.
scripts/bench_vs_reference.sh runs this and `tada bench model` on the same config in turns.
"""

import argparse
import os
import statistics
import sys
import time

import torch
import yaml

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures"))
from reference import Reference  # noqa: E402


def overrides(pairs):
    """{"A": {"B": value}} from ["A.B=value"], values parsed as YAML (as tada's --set)."""
    out = {}
    for p in pairs:
        key, _, value = p.partition("=")
        node = out
        *parents, leaf = key.split(".")
        for k in parents:
            node = node.setdefault(k, {})
        node[leaf] = yaml.safe_load(value)
    return out


def first_prediction(out):
    while isinstance(out, (tuple, list)):
        out = out[0]
    if isinstance(out, dict):
        out = next(iter(out.values()))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    ref = Reference(args.reference)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg, _ = ref.cfg(args.config, overrides(args.set))
    model = ref.model(cfg)
    model.train()
    d = cfg.DATA
    shape = (args.batch, d.NUM_INPUT_CHANNELS, d.NUM_INPUT_FRAMES, d.TRAIN_CROP_SIZE,
             d.TRAIN_CROP_SIZE)
    x = torch.randn(shape)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)

    def step():
        logits = first_prediction(model(x))
        loss = torch.nn.functional.cross_entropy(
            logits, torch.zeros(logits.shape[0], dtype=torch.long))
        opt.zero_grad(set_to_none=False)
        loss.backward()
        opt.step()

    step()
    step()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds or len(times) < 3:
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    print(f"reference step time: input {list(shape)}, {args.threads} threads: median "
          f"{statistics.median(times) * 1e3:.0f} ms (mean {statistics.mean(times) * 1e3:.0f} ms "
          f"over {len(times)} steps)")


if __name__ == "__main__":
    main()
