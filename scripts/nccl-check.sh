#!/usr/bin/env bash
# nccl-check.sh: the NCCL step of the GPU check (scripts/gpu-check.sh calls
# it with RERANK_BIN set to the bundle's rerank; it also runs alone). Needs
# that, or Go and built kernels (build/librerank_kernels.a), and a libnccl.so.2 (the PyTorch wheel's nvidia-nccl is found by itself).
#
#   1. one rank through NCCL (--ddp-backend nccl): every collective runs;
#      its losses must equal a plain one-process run;
#   2. two ranks on the one GPU, where NCCL allows it (NCCL_HOSTID per rank;
#      from NCCL 2.30 NCCL_MULTI_RANK_GPU_ENABLE=1), each with batch B,
#      against one process with batch 2B: per-step losses within 1e-4.
#
#   OUT=dir bash scripts/nccl-check.sh     # logs in $OUT/nccl.log
# Exit status: 0 passed (or skipped: no NCCL), 1 failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./gpu-logs}
mkdir -p "$OUT"
LOG="$OUT/nccl.log"
: >"$LOG"
say() { echo "nccl: $*" | tee -a "$LOG"; }
export PATH=/usr/local/cuda/bin:/usr/local/go/bin:$HOME/go/bin:$PATH

if ! ldconfig -p 2>/dev/null | grep -q 'libnccl.so.2' && [ -z "${RERANK_NCCL_LIBRARY:-}" ]; then
	dir=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
	if [ -n "$dir" ] && [ -f "$dir/libnccl.so.2" ]; then
		export LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	else
		say "SKIP: no libnccl.so.2 (neither on the loader's path nor in the PyTorch wheel)"
		exit 0
	fi
fi
ver=$(python3 -c 'import torch; print(".".join(map(str, torch.cuda.nccl.version())))' 2>/dev/null || echo unknown)
say "NCCL $ver (${LD_LIBRARY_PATH:-system})"

W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
# RERANK_BIN: a cuda-tagged rerank already built (gpu-check.sh passes the
# bundle's, on GPU machines without Go).
BIN=${RERANK_BIN:-$W/rerank}
if [ -z "${RERANK_BIN:-}" ] && ! go build -tags cuda -o "$BIN" ./cmd/rerank >>"$LOG" 2>&1; then
	say "FAIL: go build -tags cuda (run make kernels first)"
	exit 1
fi
"$BIN" init --preset tiny --arch bert --tokenizer examples/bert-uncased-tokenizer --output "$W/init" --seed 3 >>"$LOG" 2>&1
# No dropout: 2 ranks x B and 1 process x 2B then compute the same function.
python3 - "$W/init/config.json" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
for k in ("hidden_dropout_prob", "attention_probs_dropout_prob", "classifier_dropout"):
    c[k] = 0.0
json.dump(c, open(p, "w"), indent=2)
PY
DATA=examples/scifact-sample/train.jsonl.gz
common=(train --model "$W/init" --train-data "$DATA" --device cuda:0 --max-steps 8 --train-group-size 4
	--query-max-len 32 --passage-max-len 64 --learning-rate 1e-3 --logging-steps 1 --save-steps 0 --quiet --ddp-timeout 2m)
losses() { python3 -c 'import json,sys; print(" ".join("%.6f" % json.loads(l)["loss"] for l in open(sys.argv[1]) if "loss" in json.loads(l)))' "$1/metrics.jsonl"; }
close() { # close A B: per-step losses within 1e-4 relative
	python3 - "$1" "$2" <<'PY'
import sys
a = [float(x) for x in sys.argv[1].split()]; b = [float(x) for x in sys.argv[2].split()]
ok = len(a) == len(b) and len(a) > 0 and all(abs(x - y) <= 1e-4 * max(abs(x), 1e-3) for x, y in zip(a, b))
sys.exit(0 if ok else 1)
PY
}
status=0

timeout 300 "$BIN" "${common[@]}" --per-device-train-batch-size 4 --output-dir "$W/one4" >>"$LOG" 2>&1 || { say "FAIL: one process, batch 4"; exit 1; }
timeout 300 "$BIN" "${common[@]}" --per-device-train-batch-size 2 --output-dir "$W/one2" >>"$LOG" 2>&1 || { say "FAIL: one process, batch 2"; exit 1; }
ref4=$(losses "$W/one4"); ref2=$(losses "$W/one2")
say "one process, batch 4: $ref4"

# 1. One rank through NCCL.
if RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 timeout 300 "$BIN" "${common[@]}" --per-device-train-batch-size 2 --ddp-backend nccl --output-dir "$W/nccl1" >>"$LOG" 2>&1; then
	got=$(losses "$W/nccl1")
	if close "$ref2" "$got"; then say "PASS: 1 rank through NCCL equals one process"; else say "FAIL: 1 rank through NCCL: $got vs $ref2"; status=1; fi
else
	say "FAIL: 1 rank through NCCL did not run (see $LOG)"
	status=1
fi

# 2. Two ranks on one GPU, torchrun-style environment, TCP rendezvous.
two() { # two NAME HOSTIDS ENV...: ranks 0 and 1 with ENV added (and a NCCL_HOSTID each when HOSTIDS=1); rank 0 writes $W/NAME
	local name=$1 hostids=$2
	shift 2
	local port=$((20000 + RANDOM % 20000))
	local h0=() h1=()
	if [ "$hostids" = 1 ]; then h0=(NCCL_HOSTID=rerank-rank0); h1=(NCCL_HOSTID=rerank-rank1); fi
	env "$@" "${h1[@]}" RANK=1 LOCAL_RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
		timeout 300 "$BIN" "${common[@]}" --per-device-train-batch-size 2 --output-dir "$W/$name" >>"$LOG" 2>&1 &
	local p1=$!
	env "$@" "${h0[@]}" RANK=0 LOCAL_RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
		timeout 300 "$BIN" "${common[@]}" --per-device-train-batch-size 2 --output-dir "$W/$name" >>"$LOG" 2>&1
	local r0=$?
	wait $p1
	local r1=$?
	[ $r0 -eq 0 ] && [ $r1 -eq 0 ]
}
ran=""
if two hostid 1 NCCL_P2P_DISABLE=1 NCCL_SHM_DISABLE=1 NCCL_SOCKET_IFNAME=lo NCCL_IB_DISABLE=1; then
	ran=hostid
elif two multi 0 NCCL_MULTI_RANK_GPU_ENABLE=1; then
	ran=multi
fi
if [ -z "$ran" ]; then
	say "SKIP: NCCL $ver refuses two ranks on one GPU (NCCL_HOSTID and NCCL_MULTI_RANK_GPU_ENABLE=1 both failed; see $LOG)"
else
	got=$(losses "$W/$ran")
	if close "$ref4" "$got"; then
		say "PASS: 2 ranks x batch 2 on one GPU ($ran) equal one process x batch 4: $got"
	else
		say "FAIL: 2 ranks x batch 2 ($ran): $got vs one process x 4: $ref4"
		status=1
	fi
fi
exit $status
