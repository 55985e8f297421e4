#!/usr/bin/env bash
# cpu_vs_torch.sh: rerank's CPU steps against the PyTorch reference
# (../shared/bench/torch_cpu_ref.py), side by side on the same machine in the
# same minutes. Each round runs both, the order alternating between rounds,
# and the summary gives per-round ratios with their median and spread.
#
#   bench/cpu_vs_torch.sh [--shape minilm-l6] [--seq 128] [--rounds 5] [--steps 5] [--modes infer,train]
#
# Needs Debian's python3-torch and libopenblas0-openmp (see
# ../shared/bench/README.md); PyTorch gets OpenBLAS's OpenMP build and 2
# threads, as that README asks. Raw records go to bin/bench-out/*.jsonl.
set -euo pipefail

shape=minilm-l6 seq=128 rounds=5 steps=5 warmup=2 modes=infer,train
while [ $# -gt 0 ]; do
	case "$1" in
	--shape) shape=$2; shift 2 ;;
	--seq) seq=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--steps) steps=$2; shift 2 ;;
	--warmup) warmup=$2; shift 2 ;;
	--modes) modes=$2; shift 2 ;;
	*) echo "usage: $0 [--shape S] [--seq N] [--rounds R] [--steps N] [--warmup N] [--modes infer,train]" >&2; exit 2 ;;
	esac
done

. "$(dirname "$0")/lib.sh"
ref=$shared/bench/torch_cpu_ref.py
[ -f "$ref" ] || { echo "no $ref: set RERANK_SHARED" >&2; exit 1; }
need_torch
[ -n "$ob" ] || echo "warning: libopenblas0-openmp not installed; PyTorch runs on its default BLAS" >&2

bench_build
ours=$out/ours-$shape-$seq-$stamp.jsonl
theirs=$out/torch-$shape-$seq-$stamp.jsonl

bench_header
run() {
	case $2 in
	rerank) "$root/bin/rerank" bench --shape "$shape" --seq "$seq" --modes "$modes" --steps "$steps" --warmup "$warmup" --json "$ours" |
		sed "s/^/round $1 rerank  /" ;;
	pytorch) LD_LIBRARY_PATH=$ob $py "$ref" --preset "$shape" --seq "$seq" --threads 2 --modes "$modes" --steps "$steps" \
		--warmup "$warmup" --json "$theirs" | sed "s/^/round $1 pytorch /" ;;
	esac
}
bench_rounds "$rounds" rerank pytorch

$py - "$ours" "$theirs" <<'PY'
import json, statistics, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
theirs = [json.loads(l) for l in open(sys.argv[2])]
for mode in ("infer", "train"):
    o = [r for r in ours if r["Mode"] == mode and r["RealTokens"] == r["N"] * r["Seq"]]
    t = [r for r in theirs if r["mode"] == mode]
    if not o or not t:
        continue
    op = [r["PairsPerS"] for r in o]
    tp = [r["pairs_per_s"] for r in t]
    ratios = [a / b for a, b in zip(op, tp)]
    orss = statistics.median(r["PeakRSSMiB"] for r in o)
    trss = statistics.median(r["peak_rss_mib"] for r in t)
    print(f"{mode:5s} pairs/s  rerank median {statistics.median(op):.2f} (min {min(op):.2f}, max {max(op):.2f})"
          f"  pytorch median {statistics.median(tp):.2f} (min {min(tp):.2f}, max {max(tp):.2f})"
          f"  ratio median {statistics.median(ratios):.2f}x (per round {', '.join(f'{x:.2f}' for x in ratios)})"
          f"  peak RSS MiB rerank {orss:.0f} pytorch {trss:.0f}"
          f"  other load rerank {statistics.median(r['OtherLoad'] for r in o):.0%} pytorch {statistics.median(r['other_cpu_frac'] for r in t):.0%}")
PY
