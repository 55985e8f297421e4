#!/usr/bin/env bash
# cpu_vs_ort.sh: rerank's CPU inference, float32 and --int8, against ONNX
# Runtime 1.30 (fp32 and int8, ../shared/bench/ort_ref.js) and PyTorch
# (../shared/bench/torch_cpu_ref.py), side by side: each round runs all
# five, the order rotating between rounds, and the summary gives per-round
# ratios with their median: rerank/ORT fp32, rerank int8/ORT int8,
# rerank/PyTorch.
#
#   bench/cpu_vs_ort.sh [--shape minilm-l6] [--seq 128] [--rounds 4] [--steps 5]
#
# Needs node and npm (onnxruntime-node), Debian's python3-torch for the
# export and the PyTorch runs. The ONNX Runtime package and exported
# models are cached in bin/ort (ORT_DIR); raw records go to
# bin/bench-out/*.jsonl.
set -euo pipefail

shape=minilm-l6 seq=128 rounds=4 steps=5 warmup=2
while [ $# -gt 0 ]; do
	case "$1" in
	--shape) shape=$2; shift 2 ;;
	--seq) seq=$2; shift 2 ;;
	--rounds) rounds=$2; shift 2 ;;
	--steps) steps=$2; shift 2 ;;
	--warmup) warmup=$2; shift 2 ;;
	*) echo "usage: $0 [--shape S] [--seq N] [--rounds R] [--steps N] [--warmup N]" >&2; exit 2 ;;
	esac
done

. "$(dirname "$0")/lib.sh"
ort=${ORT_DIR:-$root/bin/ort}
need_torch
command -v node >/dev/null || { echo "node missing: apt-get install -y nodejs npm" >&2; exit 1; }
mkdir -p "$ort"
if [ ! -d "$ort/node_modules/onnxruntime-node" ]; then
	# --ignore-scripts: the install script fetches CUDA files from a host
	# this machine cannot reach; the CPU library is in the package.
	(cd "$ort" && npm install --ignore-scripts onnxruntime-node@1.30.0 >&2)
fi
if [ ! -f "$ort/models/$shape.int8.onnx" ]; then
	LD_LIBRARY_PATH=$ob $py "$shared/bench/ort_export.py" --preset "$shape" --variants fp32,int8 --out-dir "$ort/models" >&2
fi
bench_build
ours=$out/ours-$shape-$seq-$stamp.jsonl ours8=$out/ours8-$shape-$seq-$stamp.jsonl
torch=$out/torch-$shape-$seq-$stamp.jsonl orts=$out/ort-$shape-$seq-$stamp.jsonl

bench_header
run() {
	case $2 in
	rerank) "$root/bin/rerank" bench --shape "$shape" --seq "$seq" --modes infer --steps "$steps" --warmup "$warmup" --no-peak --json "$ours" ;;
	rerank8) "$root/bin/rerank" bench --shape "$shape" --seq "$seq" --modes infer --steps "$steps" --warmup "$warmup" --no-peak --int8 --json "$ours8" ;;
	pytorch) LD_LIBRARY_PATH=$ob $py "$shared/bench/torch_cpu_ref.py" --preset "$shape" --seq "$seq" --threads 2 --modes infer \
		--steps "$steps" --warmup "$warmup" --json "$torch" ;;
	ort) node "$shared/bench/ort_ref.js" --modules "$ort/node_modules" --dir "$ort/models" --preset "$shape" --seq "$seq" \
		--threads 2 --warmup "$warmup" --steps "$steps" --json "$orts" ;;
	ort8) node "$shared/bench/ort_ref.js" --modules "$ort/node_modules" --dir "$ort/models" --preset "$shape" --seq "$seq" \
		--variant int8 --threads 2 --warmup "$warmup" --steps "$steps" --json "$orts" ;;
	esac 2>&1 | tail -1 | sed "s/^/round $1 $2  load $(cut -d' ' -f1 /proc/loadavg)  /"
}
bench_rounds "$rounds" rerank ort rerank8 ort8 pytorch

$py - "$ours" "$ours8" "$torch" "$orts" <<'PY'
import json, statistics, sys
load = lambda p: [json.loads(l) for l in open(p)] if p else []
ours, ours8, torch, orts = (load(p) for p in sys.argv[1:5])
ofp = [r for r in orts if r.get("variant", "fp32") == "fp32"]
oq8 = [r for r in orts if r.get("variant") == "int8"]
def line(name, a, b, ka, kb):
    if not a or not b:
        print(f"{name}: missing runs"); return
    x, y = [r[ka] for r in a], [r[kb] for r in b]
    ratios = [p / q for p, q in zip(x, y)]
    print(f"{name}: median {statistics.median(x):.2f} vs {statistics.median(y):.2f} pairs/s, ratio median {statistics.median(ratios):.2f}x "
          f"(per round {', '.join(f'{v:.2f}' for v in ratios)})")
line("rerank fp32 / ORT fp32", ours, ofp, "PairsPerS", "pairs_per_s")
line("rerank int8 / ORT int8", ours8, oq8, "PairsPerS", "pairs_per_s")
line("rerank fp32 / PyTorch ", ours, torch, "PairsPerS", "pairs_per_s")
rss = lambda rs, k: statistics.median(r[k] for r in rs) if rs else float("nan")
print(f"peak RSS MiB: rerank {rss(ours, 'PeakRSSMiB'):.0f}, rerank int8 {rss(ours8, 'PeakRSSMiB'):.0f}, "
      f"ORT fp32 {rss(ofp, 'peak_rss_mib'):.0f}, ORT int8 {rss(oq8, 'peak_rss_mib'):.0f}, PyTorch {rss(torch, 'peak_rss_mib'):.0f}")
PY
