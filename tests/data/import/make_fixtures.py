"""Writes the small torch.save files under tests/data/import/ (run once; the tests need no Python).

    /work/main/.venv/bin/python tests/data/import/make_fixtures.py   # torch 2.11

Every value is a formula the Rust tests recompute: tensor number k of a state dict (in key order)
holds (arange(numel) * 0.25 + k) reshaped and cast to its dtype; num_batches_tracked is 7.
"""
import collections
import os

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


def state_dict(prefix=""):
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv3d(2, 3, (1, 3, 3)), torch.nn.BatchNorm3d(3), torch.nn.Linear(4, 2)
    )
    sd = net.state_dict()
    out = collections.OrderedDict()
    for k, (name, t) in enumerate(sd.items()):
        if name.endswith("num_batches_tracked"):
            v = torch.tensor(7, dtype=torch.int64)
        else:
            v = (torch.arange(t.numel(), dtype=torch.float64) * 0.25 + k).reshape(t.shape).to(t.dtype)
        out[prefix + name] = v
    out._metadata = sd._metadata  # as a real state_dict() carries
    return out


def save(obj, name, **kw):
    path = os.path.join(HERE, name)
    torch.save(obj, path, **kw)
    print(name, os.path.getsize(path))


save(state_dict(), "plain_state_dict.pth")
save(dict(state_dict("module.")), "ddp_state_dict.pth")  # a plain dict, DDP names
save(state_dict(), "legacy_state_dict.pth", _use_new_zipfile_serialization=False)
save(state_dict(), "protocol4_state_dict.pth", pickle_protocol=4)

big = torch.arange(12, dtype=torch.float32).reshape(3, 4)
zoo = {
    "f16": torch.arange(5, dtype=torch.float16) * 0.5,
    "bf16": torch.arange(5, dtype=torch.bfloat16) * 0.5,
    "f64": torch.arange(5, dtype=torch.float64) * 0.5,
    "i32": torch.arange(-2, 3, dtype=torch.int32),
    "i16": torch.arange(-2, 3, dtype=torch.int16),
    "i8": torch.arange(-2, 3, dtype=torch.int8),
    "u8": torch.arange(250, 255, dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "transposed": torch.arange(6, dtype=torch.float32).reshape(2, 3).t(),
    "big": big,
    "row": big[1],  # a view at storage offset 4 of big's storage
    "scalar": torch.tensor(3.5),
    "empty": torch.zeros(0, 3),
}
save(zoo, "dtype_zoo.pth")

ema = state_dict("module.")
for k in ema:
    if ema[k].is_floating_point():
        ema[k] = ema[k] + 100
save(
    {
        "epoch": 4,
        "model_state": state_dict(),
        "optimizer_state": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
        "cfg": '{"TRAIN": {"BATCH_SIZE": 8}}',
        "model_ema_state": ema,
    },
    "ema_checkpoint.pyth",
)
