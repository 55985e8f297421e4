#!/usr/bin/env bash
# The README's first command (make demo): build rerank, create a small
# randomly initialised BERT reranker with the bundled vocabulary, train it
# for a few minutes on the bundled SciFact excerpt, then evaluate it before
# and after training on held-out dev queries (BM25 top-20 reranked).
#
# Everything goes to runs/demo/ (ignored by git). Settings can be changed
# through the environment, e.g. STEPS=400 scripts/demo.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
BIN=${BIN:-bin}
OUT=${OUT:-runs/demo}
DATA=examples/scifact-sample
STEPS=${STEPS:-200}
SEED=${SEED:-42}

start=$(date +%s)
echo "== build"
mkdir -p "$BIN"
"$GO" build -o "$BIN/rerank" ./cmd/rerank
R="$BIN/rerank"

rm -rf "$OUT"
mkdir -p "$OUT"

echo "== init: tiny BERT (2 layers x 128) with random weights"
"$R" init --preset tiny --arch bert --tokenizer examples/bert-uncased-tokenizer --output "$OUT/init" --seed "$SEED"

echo "== train: $STEPS steps of 4 queries x 8 passages on $DATA/train.jsonl.gz"
"$R" train --model "$OUT/init" --train-data "$DATA/train.jsonl.gz" --output-dir "$OUT/trained" \
	--max-steps "$STEPS" --per-device-train-batch-size 4 --train-group-size 8 \
	--query-max-len 32 --passage-max-len 96 --learning-rate 1e-3 --warmup-ratio 0.1 --weight-decay 0.01 \
	--logging-steps 10 --save-steps 100 --save-total-limit 1 --seed "$SEED"

echo "== eval: held-out dev queries, BM25 top-20 reranked, before vs after"
"$R" eval --beir "$DATA" --candidates "$DATA/bm25/dev.top20.jsonl" --rerank-top-k 20 \
	--query-max-len 32 --max-len 128 --metrics ndcg@10,mrr@10,map@20,recall@20 \
	--label bm25 --model "$OUT/init" --label before --model "$OUT/trained" --label after \
	--baseline before --quiet --json "$OUT/eval.json"

echo "== done in $(( $(date +%s) - start ))s; model in $OUT/trained, training log in $OUT/trained/metrics.jsonl"
