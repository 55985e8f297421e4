#!/usr/bin/env python3
"""Compares a GPU training run's loss curve with the CPU reference's.

    gpu-loss-compare.py CPU_METRICS GPU_METRICS --label fp32 --tol 0.05

Both files are rerank's metrics.jsonl (one record per logged step: step,
loss, pairs_per_second, and on the GPU gpu_peak_memory and
gpu_peak_process_memory). Prints one line: the steps compared, the largest
|gpu - cpu| loss difference and its step, the median pairs/s after the
first 10 steps, and NVML's peak memory. Exits 1 when the curves do not
cover the same steps or the difference is over --tol. Standard library
only: it runs on the GPU machine, which has no Go.
"""
import argparse
import json
import statistics
import sys


def read(path):
    recs = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as e:
                sys.exit(f"{path}:{n}: not JSON: {e}")
            if "step" in r and "loss" in r:
                recs[int(r["step"])] = r
    if not recs:
        sys.exit(f"{path}: no step with a loss")
    return recs


def gib(b):
    return f"{b / 2**30:.2f}GiB" if b else "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cpu")
    ap.add_argument("gpu")
    ap.add_argument("--label", default="gpu")
    ap.add_argument("--tol", type=float, default=0.05)
    a = ap.parse_args()
    cpu, gpu = read(a.cpu), read(a.gpu)
    steps = sorted(set(cpu) & set(gpu))
    if not steps:
        print(f"{a.label}: no common step between {a.cpu} and {a.gpu}")
        return 1
    diffs = [(abs(gpu[s]["loss"] - cpu[s]["loss"]), s) for s in steps]
    worst, at = max(diffs)
    pps = [gpu[s]["pairs_per_second"] for s in steps if s > 10 and "pairs_per_second" in gpu[s]]
    last = gpu[max(gpu)]
    dev = last.get("gpu_peak_memory", 0)
    proc = last.get("gpu_peak_process_memory", 0)
    ok = worst <= a.tol and len(steps) == len(cpu)
    print(
        f"{a.label}: {len(steps)}/{len(cpu)} steps, max |loss gpu-cpu| {worst:.2e} at step {at} "
        f"(tol {a.tol:g}), final loss gpu {gpu[steps[-1]]['loss']:.4f} cpu {cpu[steps[-1]]['loss']:.4f}, "
        f"{statistics.median(pps) if pps else 0:.0f} pairs/s (median, steps > 10), "
        f"nvml peak memory: device {gib(dev)}, process {gib(proc)}"
        + ("" if ok else "  FAIL")
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
