#!/usr/bin/env bash
# Reproduces examples/report-multi: `rerank eval --report` over two of the
# shared collections (cranfield and cisi, dev splits, BM25 top-20 reranked)
# with three runs: the BM25 candidates, a randomly initialised small BERT
# cross-encoder (`rerank init --preset tiny`, 2 layers x 128; no pretrained
# weights can be downloaded here) and the same model after a short `rerank train` on
# cranfield's training queries. Then, when chromium is installed (it is not
# part of scripts/setup-debian.sh), a headless screenshot of the HTML.
#
# Run from the repository root with ../shared present. Models go to
# runs/report-multi/ (ignored by git); the report to examples/report-multi/report.
set -euo pipefail
cd "$(dirname "$0")/../.."

DATA=${DATA:-../shared/data}
OUT=${OUT:-runs/report-multi}
DEST=examples/report-multi
STEPS=${STEPS:-300}

mkdir -p bin "$OUT"
go build -o bin/rerank ./cmd/rerank
R=bin/rerank
rm -rf "$OUT/base" "$OUT/trained"

"$R" init --preset tiny --arch bert --tokenizer examples/bert-uncased-tokenizer --output "$OUT/base" --seed 7

"$R" train --model "$OUT/base" --train-data "$DATA/cranfield/reranker_train.jsonl.gz" --output-dir "$OUT/trained" \
	--max-steps "$STEPS" --per-device-train-batch-size 4 --train-group-size 8 \
	--query-max-len 32 --passage-max-len 96 --learning-rate 1e-3 --warmup-ratio 0.1 --weight-decay 0.01 \
	--logging-steps 10 --save-steps 0 --seed 7

"$R" eval --beir "$DATA/cranfield" --beir "$DATA/cisi" --split dev --rerank-top-k 20 \
	--query-max-len 32 --max-len 128 --metrics ndcg@10,mrr@10,map@20,recall@20 \
	--label bm25 --model "$OUT/base" --label base --model "$OUT/trained" --label trained \
	--examples 3 --training-log "$OUT/trained/metrics.jsonl" \
	--title "BM25, a random-init tiny BERT and the same trained on cranfield: cranfield + cisi dev" \
	--quiet --report "$DEST/report"

if command -v chromium >/dev/null; then
	chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
		--disable-component-update --disable-sync --user-data-dir="$(mktemp -d)" --window-size=1280,3000 \
		--screenshot="$DEST/report-screenshot.png" "file://$PWD/$DEST/report/index.html" 2>&1 | grep -v -e dbus -e 'unexpected operator' || true
fi
