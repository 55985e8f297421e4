#!/usr/bin/env bash
# int8_quality.sh: how far int8 scoring (--int8) moves a trained model's
# ranking from float32 on a BEIR dev split: NDCG@10 of each, and Kendall's
# tau-b between the two scores of each query's candidates (min, mean,
# share of queries at >= 0.98). The issue's bound: NDCG@10 within 0.005,
# tau >= 0.98 per query.
#
#   bench/int8_quality.sh MODEL_DIR [BEIR_DIR] [OUT_DIR]
#
# BEIR_DIR defaults to ../shared/data/scifact (its bm25/dev.top100.jsonl
# candidates, reranked to depth 100); runs and metrics go to OUT_DIR
# (default bin/int8-quality).
set -euo pipefail
model=${1:?usage: $0 MODEL_DIR [BEIR_DIR] [OUT_DIR]}
root=$(cd "$(dirname "$0")/.." && pwd)
beir=${2:-$root/../shared/data/scifact}
out=${3:-$root/bin/int8-quality}
R=${RERANK:-$root/bin/rerank}
[ -x "$R" ] || go build -o "$R" "$root/cmd/rerank"
mkdir -p "$out"
for mode in fp32 int8; do
	flag=""
	[ $mode = int8 ] && flag=--int8
	"$R" eval --beir "$beir" --split dev --candidates "$beir/bm25/dev.top100.jsonl" --rerank-top-k 100 \
		--max-len 128 --query-max-len 32 --metrics ndcg@10 --model "$model" --label $mode $flag \
		--quiet --json "$out/$mode.json" --runs "$out/$mode" | tee "$out/$mode.txt"
done
echo "NDCG@10: $(grep -E '^fp32 ' "$out/fp32.txt" | head -1)   $(grep -E '^int8 ' "$out/int8.txt" | head -1)"
python3 - "$out" <<'PY'
import sys, os, glob
out = sys.argv[1]
def run(path):
    r = {}
    for line in open(path):
        q, _, d, _, s, _ = line.split()
        r.setdefault(q, {})[d] = float(s)
    return r
def tau_b(x, y):
    n, c, d, tx, ty = len(x), 0, 0, 0, 0
    for i in range(n):
        for j in range(i + 1, n):
            a, b = x[i] - x[j], y[i] - y[j]
            if a == 0 and b == 0: continue
            if a == 0: tx += 1
            elif b == 0: ty += 1
            elif (a > 0) == (b > 0): c += 1
            else: d += 1
    den = ((c + d + tx) * (c + d + ty)) ** 0.5
    return (c - d) / den if den else 1.0
f = run(glob.glob(os.path.join(out, "fp32", "*.run"))[0])
q8 = run(glob.glob(os.path.join(out, "int8", "*.run"))[0])
taus = []
for q, s in f.items():
    docs = sorted(s)
    taus.append(tau_b([s[d] for d in docs], [q8[q][d] for d in docs]))
print("queries %d  tau-b min %.4f  mean %.4f  queries with tau >= 0.98: %d/%d" % (
    len(taus), min(taus), sum(taus) / len(taus), sum(t >= 0.98 for t in taus), len(taus)))
PY
