#!/usr/bin/env bash
# gpu-check.sh: the one command to run on a GPU machine. It needs the work
# tree and the bundle `make gpu-bundle` wrote to bin/gpu/ (no Go, no
# network; nvcc, CMake and PyTorch are used when present). Under 9 minutes.
#
#   On the CPU machine, before sending the tree:
#     make gpu-bundle                       # bin/gpu/, about 30 MiB
#     mkdir -p shared && cp -r ../shared/golden shared/   # golden cases
#   On the GPU machine:
#     bash scripts/gpu-check.sh             # logs to ./gpu-logs, or $OUT
#     bash scripts/gpu-check.sh --dry-run   # any machine: see below
#
# Steps, each time-boxed (seconds; the whole run stops at $GPU_CHECK_BUDGET,
# default 530):
#   env        GPU, driver, toolkit, torch; unpack and verify the bundle;
#              rerank cuda-info (runtime, devices, where cuBLAS and NVML are)
#   kernels    build the kernels with the local nvcc (sm_90a on Hopper with
#              nvcc >= 12); without nvcc the bundle's prebuilt checker is used
#   check      the C++ kernel checks: every kernel against a float64 reference
#   gotest     the bundle's cuda-tagged Go tests (every op against the CPU
#              backend; golden parity on the GPU when shared/golden is there)
#   train      ~100 steps of a tiny BERT on a shared collection, fp32 then
#              bf16, against the CPU loss curve computed at bundle time: max
#              loss difference, pairs/s, NVML peak memory
#   bench      rerank bench-kernels, with cuBLAS and PyTorch SDPA beside
#   m3         full-size v2-m3 shape, random init, 8 x 512 tokens, LoRA and
#              full training in bf16: pairs/s and MFU (when `rerank init`
#              has the m3 preset)
#   nccl       data-parallel training over NCCL (when `rerank train` has
#              --ddp-backend)
#   serve      a load test of `rerank serve` on the GPU (when it exists)
#   sanitizer  compute-sanitizer memcheck, then racecheck, in the time left
# The hooks of the last three are the functions step_m3, step_nccl and
# step_serve below: fill them in as the features land.
#
# Files in $OUT (at most 8, summary.txt written last): build.log check.log
# gotest.log bench.txt bench.json train.log sanitizer.log summary.txt.
#
# --dry-run (also what happens when no GPU is found) lists the steps,
# checks the bundle is complete, starts every binary and checks that each
# reports "no CUDA device" cleanly, then exits 3 saying the GPU steps did
# not run. Exit status: 0 all passed, 1 something failed, 3 dry run.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DRY=0
for a in "$@"; do
	case $a in
	--dry-run) DRY=1 ;;
	-h | --help)
		sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "gpu-check: unknown argument $a (try --help)" >&2
		exit 2
		;;
	esac
done

OUT=${OUT:-./gpu-logs}
BUNDLE=${BUNDLE:-bin/gpu}
BUDGET=${GPU_CHECK_BUDGET:-530}
BIN=$ROOT/build/gpu-bin
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
for f in build.log check.log gotest.log bench.txt bench.json train.log sanitizer.log summary.txt; do rm -f "$OUT/$f"; done
export PATH=/usr/local/cuda/bin:$PATH
NVCC=${NVCC:-nvcc} # NVCC=none: use the bundle's prebuilt kernel checker
SUMMARY=$(mktemp)
trap 'rm -f "$SUMMARY"' EXIT
status=0
t0=$(date +%s)
now() { date +%s; }
elapsed() { echo "$(($(now) - t0))s"; }
say() { echo "$*" | tee -a "$SUMMARY"; }
ok() { say "ok    $STEP: $* ($(elapsed))"; }
bad() {
	status=1
	say "FAIL  $STEP: $* ($(elapsed))"
}
skip() { say "skip  $STEP: $* ($(elapsed))"; }
note() { say "      $STEP: $*"; }

# Steps in order, with their boxes in seconds (0: whatever is left).
STEPS="env kernels check gotest train bench m3 nccl serve sanitizer"
declare -A BOX=([env]=40 [kernels]=150 [check]=90 [gotest]=150 [train]=120 [bench]=120 [m3]=150 [nccl]=120 [serve]=60 [sanitizer]=0)
RESERVE=5 # seconds kept for the summary
STEP=""
step_end=0

# run LOG CMD...: runs CMD with the time left in the step, output to LOG.
run() {
	local log=$1 left
	shift
	left=$((step_end - $(now)))
	if [ "$left" -le 1 ]; then
		echo "(out of time: $*)" >>"$log"
		return 124
	fi
	timeout -k 5 "$left" "$@" >>"$log" 2>&1
}

# ---- bundle ----------------------------------------------------------------

# unpack_bundle checks bin/gpu against its MANIFEST and unpacks the
# binaries into build/gpu-bin.
unpack_bundle() {
	if [ ! -f "$BUNDLE/MANIFEST" ] || [ ! -f "$BUNDLE/bundle.env" ]; then
		bad "no bundle in $BUNDLE: run \`make gpu-bundle\` on the CPU machine and send bin/gpu with the tree"
		return 1
	fi
	local bad_files
	bad_files=$(cd "$BUNDLE" && awk '{print $1"  "$3}' MANIFEST | sha256sum -c --quiet 2>&1)
	if [ -n "$bad_files" ]; then
		bad "bundle incomplete or changed since it was built: $(echo "$bad_files" | head -3 | tr '\n' ' ')"
		return 1
	fi
	# shellcheck source=/dev/null
	. "$BUNDLE/bundle.env"
	rm -rf "$BIN"
	mkdir -p "$BIN"
	local f missing=""
	for f in rerank rerank_kernels_check $(for t in $BUNDLE_TESTS; do echo "${t%%:*}"; done); do
		if [ -f "$BUNDLE/$f.gz" ]; then
			gzip -dc "$BUNDLE/$f.gz" >"$BIN/$f" && chmod +x "$BIN/$f"
		else
			missing="$missing $f"
		fi
	done
	for f in train/train.jsonl.gz train/cpu_metrics.jsonl; do [ -f "$BUNDLE/$f" ] || missing="$missing $f"; done
	if [ -n "$missing" ]; then
		bad "bundle lacks:$missing (rebuild it: make gpu-bundle)"
		return 1
	fi
	return 0
}

# Feature detection: the presets and commands other work adds.
# (The help is captured first: grep -q would end the pipe early, and
# pipefail would report rerank's SIGPIPE.)
helptext() { "$BIN/rerank" "$@" 2>/dev/null; }
has_m3() { grep -Eq '(^|[^a-z0-9-])m3([^a-z0-9-]|$)' <<<"$(helptext init --help)"; }
has_ddp() { grep -q -- '--ddp-backend' <<<"$(helptext train --help)"; }
has_serve() { grep -Eq '^ +serve[ ,]' <<<"$(helptext help)"; }

# ---- steps -----------------------------------------------------------------

step_env() {
	local log=$OUT/build.log
	{
		echo "== gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ)"
		nvidia-smi 2>&1 | head -20
	} >>"$log"
	if command -v nvidia-smi >/dev/null; then
		note "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -1)"
	fi
	if command -v "$NVCC" >/dev/null; then note "nvcc $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')"; fi
	if python3 -c 'import torch' 2>/dev/null; then
		note "torch $(python3 -c 'import torch; print(torch.__version__, "cuda", torch.version.cuda)' 2>/dev/null)"
	fi
	unpack_bundle || return 1
	note "bundle $BUNDLE_VERSION ($BUNDLE_DATE, nvcc $BUNDLE_NVCC, $BUNDLE_ARCHS): $(du -sh "$BUNDLE" | awk '{print $1}')"
	run "$log" "$BIN/rerank" cuda-info
	local rc=$?
	grep -E '^(rerank|device|cuBLAS|NVML)' "$log" | tail -6 | sed 's/^/      env: /' | tee -a "$SUMMARY"
	if [ $rc = 0 ]; then ok "bundle verified and unpacked; cuda-info found a GPU"; else bad "rerank cuda-info (exit $rc; see build.log)"; fi
}

CHECK=""
step_kernels() {
	local log=$OUT/build.log cap archs nvver
	CHECK=$BIN/rerank_kernels_check
	if ! command -v "$NVCC" >/dev/null || ! command -v cmake >/dev/null; then
		skip "no nvcc or cmake here: using the bundle's rerank_kernels_check (nvcc $BUNDLE_NVCC)"
		return 0
	fi
	nvver=$("$NVCC" --version | sed -n 's/.*release \([0-9]*\)\.\([0-9]*\).*/\1.\2/p')
	cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
	archs=${RERANK_CUDA_ARCHS:-}
	if [ -z "$archs" ]; then
		case "$cap" in
		90) if [ "${nvver%%.*}" -ge 12 ]; then archs="90a"; else archs="90"; fi ;;
		"") archs="80;90" ;;
		*) archs="$cap" ;;
		esac
	fi
	echo "== kernels: nvcc $nvver, targets $archs" >>"$log"
	if run "$log" cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CUDA_COMPILER=$(command -v "$NVCC")" "-DRERANK_CUDA_ARCHS=$archs" -DRERANK_CUDA_PTX= -DRERANK_PTXAS_VERBOSE=ON &&
		run "$log" cmake --build build -j"$(nproc)"; then
		CHECK=$ROOT/build/rerank_kernels_check
		ok "built for sm_$archs with nvcc $nvver; $(grep -c 'bytes spill stores' "$log") kernels reported, $(grep -E '[1-9][0-9]* bytes spill stores' "$log" | wc -l) with spills"
	else
		bad "kernel build with nvcc $nvver for $archs (see build.log); using the bundle's checker"
		grep -m5 -E 'error' "$log" | sed 's/^/      /' | tee -a "$SUMMARY"
	fi
}

step_check() {
	local log=$OUT/check.log
	echo "== $CHECK --no-bench" >>"$log"
	if run "$log" "$CHECK" --no-bench; then
		ok "$(tail -1 "$log")"
	else
		bad "$(tail -1 "$log")"
		grep -E '^FAIL|FATAL' "$log" | head -10 | sed 's/^/      /' | tee -a "$SUMMARY"
	fi
}

# golden_env points the tests at the golden vectors sent in shared/golden.
golden_env() {
	if [ -d "$ROOT/shared/golden" ]; then
		export RERANK_GOLDEN=$ROOT/shared/golden RERANK_SHARED=$ROOT/shared
		return 0
	fi
	return 1
}

step_gotest() {
	local log=$OUT/gotest.log t name rel pat rc pass=0 skipn=0 failn=0
	if golden_env; then
		note "golden vectors: shared/golden"
	else
		note "golden cases skip: shared/golden absent (before sending: mkdir -p shared && cp -r ../shared/golden shared/)"
	fi
	for t in $BUNDLE_TESTS; do
		IFS=: read -r name rel pat <<<"$t"
		echo "== $name in $rel: -test.run '$pat'" >>"$log"
		(cd "$ROOT/$rel" && RERANK_REQUIRE_GPU=1 run "$log" "$BIN/$name" -test.run "$pat" -test.v -test.count 1)
		rc=$?
		[ $rc = 0 ] || failn=$((failn + 1))
		[ $rc = 124 ] && echo "(timed out)" >>"$log"
	done
	pass=$(grep -c -- '--- PASS' "$log")
	skipn=$(grep -c -- '--- SKIP' "$log")
	if [ $failn = 0 ]; then
		ok "$pass passed, $skipn skipped ($(echo "$BUNDLE_TESTS" | wc -w) test binaries)"
	else
		bad "$failn test binaries failed; $pass passed, $skipn skipped"
		grep -E -- '--- FAIL|panic:|timed out' "$log" | head -15 | sed 's/^/      /' | tee -a "$SUMMARY"
	fi
}

# train_model writes the training check's model to build/gpu-train/model
# (same seed as the CPU reference, so the same bytes) and checks it.
train_model() {
	local log=$1 dir=$ROOT/build/gpu-train sha
	rm -rf "$dir"
	mkdir -p "$dir"
	# shellcheck disable=SC2086
	run "$log" "$BIN/rerank" init $TRAIN_INIT --output "$dir/model" || return 1
	sha=$(sha256sum "$dir/model/model.safetensors" | awk '{print $1}')
	if [ -n "$TRAIN_MODEL_SHA256" ] && [ "$sha" != "$TRAIN_MODEL_SHA256" ]; then
		echo "model.safetensors sha256 $sha, the CPU reference started from $TRAIN_MODEL_SHA256" >>"$log"
		return 2
	fi
	return 0
}

step_train() {
	local log=$OUT/train.log dir=$ROOT/build/gpu-train mode flag tol rc
	train_model "$log"
	rc=$?
	if [ $rc = 1 ]; then
		bad "rerank init (see train.log)"
		return
	elif [ $rc = 2 ]; then
		bad "the initial model differs from the CPU reference's (see train.log)"
		return
	fi
	for mode in fp32 bf16; do
		flag=""
		tol=0.05
		if [ $mode = bf16 ]; then
			flag=--bf16
			tol=0.25
		fi
		echo "== train $mode" >>"$log"
		# shellcheck disable=SC2086
		if ! run "$log" "$BIN/rerank" train --device cuda $flag --model "$dir/model" \
			--train-data "$BUNDLE/train/train.jsonl.gz" --output-dir "$dir/$mode" $TRAIN_ARGS; then
			bad "$mode training run (see train.log)"
			tail -1 "$log" | sed 's/^/      /' | tee -a "$SUMMARY"
			continue
		fi
		if line=$(python3 scripts/gpu-loss-compare.py "$BUNDLE/train/cpu_metrics.jsonl" "$dir/$mode/metrics.jsonl" --label "$mode" --tol $tol); then
			ok "$line"
		else
			bad "$line"
		fi
		echo "$line" >>"$log"
	done
}

step_bench() {
	local py=python3
	python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || py=""
	[ -n "$py" ] || note "PyTorch with CUDA not found: no SDPA reference"
	if run "$OUT/bench.txt" "$BIN/rerank" bench-kernels --quick --json-out "$OUT/bench.json" --python "$py" \
		--sdpa-script "$ROOT/scripts/sdpa_bench.py"; then
		ok "$(grep -c . "$OUT/bench.txt") lines in bench.txt; $(grep -c 'x$' "$OUT/bench.txt") reference ratios"
	else
		bad "bench-kernels (see bench.txt)"
		tail -1 "$OUT/bench.txt" | sed 's/^/      /' | tee -a "$SUMMARY"
	fi
}

# step_m3: full-size throughput. A bge-reranker-v2-m3-shaped model (24 x
# 1024, XLM-R vocabulary) with random weights, 8 sequences of 512 tokens per
# step (1 query x 8 passages, SciFact abstracts fill 512 tokens), bf16,
# LoRA then full training. MFU = 6 * non-embedding parameters * tokens/s
# (+ attention) over the bf16 peak bench-kernels measured (else the H100
# datasheet's 989 TFLOP/s).
step_m3() {
	local log=$OUT/train.log dir=$ROOT/build/gpu-m3 mode extra
	if ! has_m3; then
		skip "rerank init has no m3 preset yet"
		return
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	local tok=$BUNDLE/xlmr-tokenizer
	[ -f "$tok/tokenizer.json" ] || tok=examples/bert-uncased-tokenizer
	echo "== m3: init" >>"$log"
	if ! run "$log" "$BIN/rerank" init --preset m3 --arch xlm-roberta --tokenizer "$tok" --output "$dir/model" --seed 1; then
		bad "rerank init --preset m3 (see train.log)"
		return
	fi
	for mode in lora full; do
		extra=""
		[ $mode = lora ] && extra="--lora-rank 32 --lora-alpha 64 --lora-target-modules query,key,value,dense"
		echo "== m3 $mode" >>"$log"
		# shellcheck disable=SC2086
		if run "$log" "$BIN/rerank" train --device cuda --bf16 --model "$dir/model" \
			--train-data examples/scifact-sample/train.jsonl.gz --output-dir "$dir/$mode" \
			--max-steps 12 --per-device-train-batch-size 1 --train-group-size 8 --query-max-len 32 \
			--passage-max-len 480 --learning-rate 1e-5 --warmup-steps 0 --logging-steps 1 --save-steps 0 \
			--seed 1 --quiet $extra; then
			ok "$mode: $(python3 - "$dir/$mode/metrics.jsonl" "$dir/model/config.json" "$OUT/bench.json" <<'EOF'
import json, statistics, sys
recs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cfg = json.load(open(sys.argv[2]))
peak = 989.0
try:
    p = json.load(open(sys.argv[3]))["peak"]
    if p.get("measured"): peak = p["bf16_tflops"]
except Exception:
    pass
L, H, I = cfg["num_hidden_layers"], cfg["hidden_size"], cfg["intermediate_size"]
S = 512
params = L * (4 * H * H + 2 * H * I)
pps = statistics.median([r["pairs_per_second"] for r in recs[2:] if "pairs_per_second" in r] or [0])
flops_per_pair = 6 * params * S + 12 * L * S * S * H  # dense + attention, forward + backward
mfu = 100 * pps * flops_per_pair / (peak * 1e12)
mem = recs[-1].get("gpu_peak_process_memory", 0) / 2**30 if recs else 0
print(f"{pps:.1f} pairs/s = {pps*S:.0f} tokens/s at 512 tokens, MFU {mfu:.1f}% of {peak:.0f} TFLOP/s "
      f"(full-training FLOPs; upper bound if sequences are shorter), peak process memory {mem:.1f}GiB")
EOF
)"
		else
			bad "m3 $mode training (see train.log)"
			tail -1 "$log" | sed 's/^/      /' | tee -a "$SUMMARY"
		fi
	done
	rm -rf "$dir"
}

# step_nccl: data-parallel training over NCCL, through scripts/nccl-check.sh
# (the dist work's check: one rank through NCCL equals one process; two
# ranks on the one GPU where NCCL allows it) with the bundle's rerank. Its
# lines go to train.log (its own nccl.log stays in a temporary folder, so
# $OUT keeps at most 8 files).
step_nccl() {
	local log=$OUT/train.log tmp rc
	if ! has_ddp || [ ! -f scripts/nccl-check.sh ]; then
		skip "rerank train has no --ddp-backend yet"
		return
	fi
	tmp=$(mktemp -d)
	echo "== nccl: scripts/nccl-check.sh" >>"$log"
	RERANK_BIN=$BIN/rerank OUT=$tmp run "$log" bash scripts/nccl-check.sh
	rc=$?
	rm -rf "$tmp"
	grep '^nccl: ' "$log" | tail -4 | cut -c1-200 | sed 's/^/      /' | tee -a "$SUMMARY"
	if [ $rc = 0 ]; then ok "nccl-check.sh passed (or skipped, as said above)"; else bad "nccl-check.sh (exit $rc; see train.log)"; fi
}

# step_serve: a load test of `rerank serve` on the GPU: the tiny model,
# 127.0.0.1 only, 400 TEI /rerank requests of 32 documents from 16 clients.
step_serve() {
	local log=$OUT/train.log dir=$ROOT/build/gpu-train port=18181 pid i
	if ! has_serve; then
		skip "rerank has no serve command yet"
		return
	fi
	[ -d "$dir/model" ] || train_model "$log" || {
		bad "rerank init (see train.log)"
		return
	}
	echo "== serve" >>"$log"
	"$BIN/rerank" serve --device cuda --model "$dir/model" --host 127.0.0.1 --port "$port" >>"$log" 2>&1 &
	pid=$!
	for i in $(seq 1 30); do
		python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 1
	done
	if run "$log" python3 scripts/gpu-serve-load.py "$port"; then
		ok "$(grep '^serve:' "$log" | tail -1)"
	else
		bad "serve load test (see train.log)"
	fi
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

step_sanitizer() {
	local log=$OUT/sanitizer.log tool rc
	if ! command -v compute-sanitizer >/dev/null; then
		skip "compute-sanitizer not installed"
		return
	fi
	for tool in memcheck racecheck; do
		if [ $((step_end - $(now))) -lt 30 ]; then
			skip "$tool: too little time left"
			continue
		fi
		echo "== $tool" >>"$log"
		run "$log" compute-sanitizer --tool $tool --error-exitcode 3 "$CHECK" --no-bench
		rc=$?
		if [ $rc = 0 ]; then
			ok "$tool clean"
		elif [ $rc = 124 ] || [ $rc = 137 ]; then
			skip "$tool ran out of time"
		else
			bad "$tool (exit $rc; see sanitizer.log)"
			grep -m5 -E '=========.*(Invalid|Race|hazard|Error)' "$log" | sed 's/^/      /' | tee -a "$SUMMARY"
		fi
	done
}

# ---- dry run ---------------------------------------------------------------

# expect_no_device LOG WHAT CMD...: CMD must exit non-zero saying "no CUDA
# device" within 60 s.
expect_no_device() {
	local log=$1 what=$2 rc
	shift 2
	echo "== $what: $*" >>"$log"
	timeout -k 5 60 "$@" >>"$log" 2>&1
	rc=$?
	if [ $rc = 0 ]; then
		bad "$what succeeded without a GPU"
	elif [ $rc = 124 ] || [ $rc = 137 ]; then
		bad "$what hung (killed after 60 s)"
	elif tail -5 "$log" | grep -q "no CUDA device"; then
		ok "$what: exit $rc, \"$(tail -5 "$log" | grep -o 'no CUDA device.*' | head -1 | cut -c1-110)\""
	else
		bad "$what: exit $rc without saying \"no CUDA device\": $(tail -1 "$log")"
	fi
}

dry_run() {
	local log=$OUT/build.log t name rel pat rc sha
	STEP=list
	say "dry run: the steps a GPU machine runs (time box in seconds; budget ${BUDGET}s):"
	for s in $STEPS; do say "      $s ${BOX[$s]}"; done
	STEP=bundle
	unpack_bundle || return
	ok "$BUNDLE matches its MANIFEST ($(wc -l <"$BUNDLE/MANIFEST") files, $(du -sh "$BUNDLE" | awk '{print $1}'), built $BUNDLE_DATE from $BUNDLE_VERSION)"
	STEP=start
	step_end=$(($(now) + 120))
	if timeout 30 "$BIN/rerank" version >>"$log" 2>&1; then ok "rerank version: $(tail -1 "$log")"; else bad "rerank does not start: $(tail -1 "$log")"; fi
	expect_no_device "$log" "rerank cuda-info" "$BIN/rerank" cuda-info
	grep -E '^(cuBLAS|NVML)' "$log" | tail -2 | cut -c1-160 | sed 's/^/      start: /' | tee -a "$SUMMARY"
	train_model "$OUT/train.log"
	rc=$?
	sha=$(sha256sum "$ROOT/build/gpu-train/model/model.safetensors" 2>/dev/null | awk '{print $1}')
	case $rc in
	0) ok "the bundle's rerank init writes the CPU reference's initial model (sha256 ${sha:0:12})" ;;
	2) bad "the bundle's rerank init writes another model than the CPU reference's (see train.log)" ;;
	*) bad "rerank init (see train.log)" ;;
	esac
	expect_no_device "$log" "rerank train --device cuda" "$BIN/rerank" train --device cuda --model "$ROOT/build/gpu-train/model" \
		--train-data "$BUNDLE/train/train.jsonl.gz" --output-dir "$ROOT/build/gpu-dry" --max-steps 1 --quiet
	expect_no_device "$log" "rerank bench-kernels" "$BIN/rerank" bench-kernels --quick --python ""
	golden_env || true
	for t in $BUNDLE_TESTS; do
		IFS=: read -r name rel pat <<<"$t"
		echo "== $name in $rel: -test.run '$pat'" >>"$log"
		(cd "$ROOT/$rel" && timeout -k 5 120 "$BIN/$name" -test.run "$pat" -test.v -test.count 1) >"$log.tmp" 2>&1
		rc=$?
		cat "$log.tmp" >>"$log"
		# Tests that open the GPU must skip saying "no CUDA device"; a test
		# that needs no GPU (e.g. NCCL's missing-library error) may pass.
		local npass nskip nnodev
		npass=$(grep -c -- '--- PASS' "$log.tmp")
		nskip=$(grep -c -- '--- SKIP' "$log.tmp")
		nnodev=$(grep -c "no CUDA device" "$log.tmp")
		if [ $rc = 0 ] && ! grep -q -- '--- FAIL' "$log.tmp" && [ $((npass + nskip)) -gt 0 ] && [ "$nnodev" -ge "$nskip" ]; then
			ok "$name: starts; $nskip tests skip with \"no CUDA device\", $npass need no GPU and pass"
		else
			bad "$name: exit $rc; $npass passed, $nskip skipped ($nnodev saying \"no CUDA device\"), $(grep -c -- '--- FAIL' "$log.tmp") failed"
		fi
		rm -f "$log.tmp"
	done
	STEP=features
	note "m3 preset: $(has_m3 && echo yes || echo no); --ddp-backend: $(has_ddp && echo yes || echo no); serve: $(has_serve && echo yes || echo no)"
	if ! command -v python3 >/dev/null; then bad "python3 not found: the training comparison needs it"; fi
}

# ---- main ------------------------------------------------------------------

have_gpu=0
if [ $DRY = 0 ] && command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
	have_gpu=1
fi
say "gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)'); logs in $OUT"

if [ $have_gpu = 0 ]; then
	[ $DRY = 1 ] || say "no GPU found (nvidia-smi -L lists none): doing the dry run"
	dry_run
	cat "$SUMMARY" >"$OUT/summary.txt"
	if [ $status != 0 ]; then
		echo "gpu-check: dry run FAILED (see above and $OUT/build.log); the GPU steps did not run" | tee -a "$OUT/summary.txt"
		exit 1
	fi
	echo "gpu-check: dry run passed; the GPU steps did not run ($STEPS): run this on a GPU machine" | tee -a "$OUT/summary.txt"
	exit 3
fi

for s in $STEPS; do
	STEP=$s
	left=$((t0 + BUDGET - RESERVE - $(now)))
	box=${BOX[$s]}
	[ "$box" = 0 ] || [ "$box" -gt "$left" ] && box=$left
	if [ "$box" -lt 15 ]; then
		skip "out of time (${left}s left of ${BUDGET}s)"
		continue
	fi
	step_end=$(($(now) + box))
	if [ "$s" != env ] && [ -z "${BUNDLE_TESTS:-}" ]; then
		skip "no bundle"
		continue
	fi
	"step_$s"
done

if [ -s "$OUT/bench.txt" ]; then
	echo
	grep -E 'gemm_bf16|attention|peaks|device|x$' "$OUT/bench.txt" | head -40
fi
echo
say "total $(elapsed), status $status"
cp "$SUMMARY" "$OUT/summary.txt"
echo "== summary ($OUT/summary.txt)"
cat "$OUT/summary.txt"
exit $status
