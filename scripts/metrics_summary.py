#!/usr/bin/env python3
"""Training throughput from a run's metrics.jsonl: clips/s and the data-wait share, averaged
over the logged windows after the first (which holds start-up); with --loss also the first and
last logged loss. Used by scripts/bench_train.sh and scripts/bench_gpu.sh.

    metrics_summary.py METRICS.jsonl [--loss]
"""
import json
import sys

rows = [json.loads(line) for line in open(sys.argv[1])]
if len(rows) < 2:
    sys.exit("need at least two logged windows (raise OPTIMIZER.MAX_EPOCH or lower LOG_PERIOD)")
windows = rows[1:]
clips = sum(r["clips_per_s"] for r in windows) / len(windows)
wait = sum(r["data_wait_share"] for r in windows) / len(windows)
line = f"{len(windows)} windows after the first: {clips:.2f} clips/s, data-wait share {100 * wait:.1f}%"
if "--loss" in sys.argv[2:]:
    line += f", loss {rows[0]['loss']:.3f} -> {rows[-1]['loss']:.3f} over {rows[-1]['step']} steps"
print(line)
