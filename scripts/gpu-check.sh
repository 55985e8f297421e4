#!/usr/bin/env bash
# gpu-check.sh: the one script to run on a GPU machine (H100/H200: nvcc 12+,
# CMake, PyTorch; Go optional; no network). Under 8 minutes on an H100.
#
#   bash scripts/gpu-check.sh            # logs to ./gpu-logs
#   OUT=/some/dir bash scripts/gpu-check.sh
#
# 1. builds the kernels with CMake for this GPU's architecture (sm_90a on
#    Hopper when nvcc >= 12, else sm_XY);
# 2. runs build/rerank_kernels_check: every kernel against a float64 C++
#    reference on random inputs with NaN-poisoned outputs;
# 3. with Go: the cuda-tagged Go tests (every op against backend/cpu; the
#    golden parity tests of every package with cuda-tagged tests), then
#    `rerank bench-kernels` (with the PyTorch SDPA reference) and, when the
#    train command and ../shared/data are there, a short training run;
#    without Go: the benchmark from rerank_kernels_check plus
#    scripts/sdpa_bench.py;
# 4. when time is left, compute-sanitizer (memcheck, then racecheck) over the
#    standalone kernel tests.
# Files in $OUT (at most 8, so the device tool brings them all back):
#   build.log check.log gotest.log bench.txt bench.json sdpa.json sanitizer.log summary.txt
# Exit status: non-zero when a build or a test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-./gpu-logs}
mkdir -p "$OUT"
export PATH=/usr/local/cuda/bin:/usr/local/go/bin:$HOME/go/bin:$PATH
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
status=0
t0=$(date +%s)
say() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(($(date +%s) - t0))s; }

say "gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ) commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (dirty)')"
if command -v nvidia-smi >/dev/null; then
	say "gpu: $(nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader 2>/dev/null | head -1)"
	cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
else
	say "gpu: nvidia-smi not found"
	cap=""
fi
if ! command -v nvcc >/dev/null; then
	say "FAIL: nvcc not found (looked in PATH and /usr/local/cuda/bin)"
	exit 1
fi
nvver=$(nvcc --version | sed -n 's/.*release \([0-9]*\)\.\([0-9]*\).*/\1.\2/p')
say "nvcc $nvver, cmake $(cmake --version | head -1 | awk '{print $3}')"

# 1. Build for this GPU only (a Hopper build with nvcc >= 12 gets sm_90a).
archs=${RERANK_CUDA_ARCHS:-}
if [ -z "$archs" ]; then
	case "$cap" in
	90) if [ "${nvver%%.*}" -ge 12 ]; then archs="90a"; else archs="90"; fi ;;
	"") archs="80;90" ;;
	*) archs="$cap" ;;
	esac
fi
say "building kernels for $archs"
if ! (cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "-DRERANK_CUDA_ARCHS=$archs" -DRERANK_PTXAS_VERBOSE=ON &&
	cmake --build build -j"$(nproc)") >"$OUT/build.log" 2>&1; then
	say "FAIL: kernel build (see build.log)"
	tail -30 "$OUT/build.log"
	exit 1
fi
say "build ok ($(elapsed)); spills: $(grep -c 'bytes spill stores' "$OUT/build.log") kernels reported, $(grep -E '[1-9][0-9]* bytes spill stores' "$OUT/build.log" | wc -l) with spills"

# 2. Standalone kernel tests.
if timeout 180 build/rerank_kernels_check --no-bench >"$OUT/check.log" 2>&1; then
	say "kernel tests: $(tail -1 "$OUT/check.log") ($(elapsed))"
else
	status=1
	say "FAIL kernel tests: $(tail -1 "$OUT/check.log") ($(elapsed))"
	grep -E '^FAIL|FATAL' "$OUT/check.log" | head -20 | tee -a "$SUMMARY"
fi

have_torch=0
if python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
	have_torch=1
fi

# Go is used only when it is installed and the module cache already holds
# every dependency (nothing can be downloaded on the GPU machine).
use_go=0
if command -v go >/dev/null; then
	if GOPROXY=off GOFLAGS=-mod=mod go list -deps -test -tags cuda ./cuda/... ./cmd/rerank >/dev/null 2>"$OUT/gotest.log"; then
		use_go=1
	else
		say "go: $(go version), but the module cache lacks dependencies (see gotest.log); using the standalone binary"
	fi
fi
export GOPROXY=off

if [ $use_go = 1 ]; then
	say "go: $(go version)"
	# 3a. Every package's cuda-tagged Go tests: the backend against backend/cpu,
	# and the golden parity tests (lora, nn, ...) on the GPU backend. The
	# golden vectors come from $RERANK_GOLDEN, ./shared/golden (copy
	# ../shared/golden there before the run: ../shared does not travel to
	# the GPU machine) or ../shared/golden.
	if [ -z "${RERANK_GOLDEN:-}" ] && [ -d shared/golden ]; then export RERANK_GOLDEN="$PWD/shared/golden"; fi
	say "golden vectors: ${RERANK_GOLDEN:-$( [ -d ../shared/golden ] && echo ../shared/golden || echo 'none (golden cases skip)')}"
	pkgs=$(grep -rl --include='*_test.go' '^//go:build cuda' . 2>/dev/null | xargs -r -n1 dirname | sort -u | tr '\n' ' ')
	if RERANK_REQUIRE_GPU=1 timeout 240 go test -tags cuda -count=1 -timeout 230s ./cuda/... $pkgs \
		>"$OUT/gotest.log" 2>&1; then
		say "go tests: ok ($(grep -c -- '--- PASS' "$OUT/gotest.log") passed lines; $(elapsed))"
	else
		status=1
		say "FAIL go tests ($(elapsed)):"
		grep -E -- '--- FAIL|Error|panic' "$OUT/gotest.log" | head -20 | tee -a "$SUMMARY"
	fi
	# 3b. Benchmark through the CLI.
	if go build -tags cuda -o bin/rerank-cuda ./cmd/rerank >>"$OUT/build.log" 2>&1; then
		py=python3
		[ $have_torch = 1 ] || py=""
		timeout 240 bin/rerank-cuda bench-kernels --json-out "$OUT/bench.json" --python "$py" >"$OUT/bench.txt" 2>&1 || {
			status=1
			say "FAIL bench-kernels (see bench.txt)"
		}
		say "bench-kernels done ($(elapsed))"
		# 3c. A short training run on the GPU, once rerank train takes --device.
		if [ -d ../shared/data ] && bin/rerank-cuda train --help 2>/dev/null | grep -q -- '--device'; then
			say "train: rerank train --device cuda exists; add its short run here (model and data from ../shared)"
		else
			say "train: skipped (rerank train has no --device flag yet, or ../shared/data is absent)"
		fi
	else
		status=1
		say "FAIL: go build -tags cuda (see build.log)"
	fi
else
	say "go: not used; running the standalone benchmark instead"
	timeout 200 build/rerank_kernels_check --bench-only --json "$OUT/bench.json" >"$OUT/bench.txt" 2>&1 || {
		status=1
		say "FAIL: benchmark (see bench.txt)"
	}
	if [ $have_torch = 1 ]; then
		timeout 120 python3 scripts/sdpa_bench.py bge-base:16:512:12:64 bge-reranker-v2-m3:16:512:16:64 MiniLM-L6:64:128:12:32 \
			>"$OUT/sdpa.json" 2>>"$OUT/bench.txt" || say "sdpa reference failed"
	fi
	say "benchmark done ($(elapsed))"
fi

# 4. Sanitizers over the kernel tests, in the time that is left (8 minutes in all).
if command -v compute-sanitizer >/dev/null; then
	left=$((450 - ($(date +%s) - t0)))
	if [ $left -gt 60 ]; then
		: >"$OUT/sanitizer.log"
		for tool in memcheck racecheck; do
			left=$((450 - ($(date +%s) - t0)))
			[ $left -gt 30 ] || break
			echo "== $tool" >>"$OUT/sanitizer.log"
			if timeout $left compute-sanitizer --tool $tool --error-exitcode 3 build/rerank_kernels_check --no-bench \
				>>"$OUT/sanitizer.log" 2>&1; then
				say "compute-sanitizer $tool: clean ($(elapsed))"
			else
				rc=$?
				if [ $rc = 124 ]; then
					say "compute-sanitizer $tool: ran out of time ($(elapsed))"
				else
					status=1
					say "FAIL compute-sanitizer $tool (exit $rc; see sanitizer.log)"
					grep -m5 -E '=========.*(Invalid|Race|hazard|Error)' "$OUT/sanitizer.log" | tee -a "$SUMMARY"
				fi
			fi
		done
	else
		say "compute-sanitizer: skipped, too little time left"
	fi
else
	say "compute-sanitizer: not installed"
fi

# Short table last: the device tool returns the end of the output.
if [ -s "$OUT/bench.txt" ]; then
	echo
	grep -E 'gemm_bf16|attention|lora_merge|peaks|device' "$OUT/bench.txt" | head -60
fi
echo
cat "$SUMMARY"
say "total $(elapsed), status $status"
exit $status
