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

root=$(cd "$(dirname "$0")/.." && pwd)
shared=${RERANK_SHARED:-$root/../shared}
ref=$shared/bench/torch_cpu_ref.py
py=/usr/bin/python3
[ -f "$ref" ] || { echo "no $ref: set RERANK_SHARED" >&2; exit 1; }
$py -c 'import torch' 2>/dev/null || { echo "PyTorch missing: apt-get install -y python3-torch python3-numpy libopenblas0-openmp" >&2; exit 1; }
ob=$(dpkg -L libopenblas0-openmp 2>/dev/null | grep -m1 '/openblas-openmp$' || true)
[ -n "$ob" ] || echo "warning: libopenblas0-openmp not installed; PyTorch runs on its default BLAS" >&2

mkdir -p "$root/bin/bench-out"
(cd "$root" && go build -o bin/rerank ./cmd/rerank)
stamp=$(date -u +%Y%m%dT%H%M%SZ)
ours=$root/bin/bench-out/ours-$shape-$seq-$stamp.jsonl
theirs=$root/bin/bench-out/torch-$shape-$seq-$stamp.jsonl

echo "# $(date -u '+%F %T') UTC, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), commit $(git -C "$root" describe --always --dirty)"
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
run_ours() {
	"$root/bin/rerank" bench --shape "$shape" --seq "$seq" --modes "$modes" --steps "$steps" --warmup "$warmup" --json "$ours" |
		sed "s/^/round $1 rerank  /"
}
run_torch() {
	LD_LIBRARY_PATH=$ob $py "$ref" --preset "$shape" --seq "$seq" --threads 2 --modes "$modes" --steps "$steps" \
		--warmup "$warmup" --json "$theirs" | sed "s/^/round $1 pytorch /"
}
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) -eq 1 ]; then run_ours "$r"; run_torch "$r"; else run_torch "$r"; run_ours "$r"; fi
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

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
