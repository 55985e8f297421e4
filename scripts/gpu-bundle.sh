#!/usr/bin/env bash
# gpu-bundle.sh: builds bin/gpu/, everything a GPU machine without Go needs
# to run scripts/gpu-check.sh in full (make gpu-bundle runs it).
#
#   bash scripts/gpu-bundle.sh [DIR]      # default bin/gpu
#   GPU_BUNDLE_NO_REF=1 ...               # skip the CPU reference run
#
# DIR receives, gzip-compressed (gpu-check.sh unpacks them):
#   - PKG.test: the stripped cuda-tagged test binary of every package that
#     has cuda-tagged tests (go test -c -tags cuda), e.g. cuda.test, lora.test;
#   - rerank: the cuda-tagged command;
#   - rerank_kernels_check: the standalone kernel tests, a fallback for a
#     machine whose own nvcc cannot build the kernels;
# plus train/ (the training data and the CPU loss curve the GPU run is
# compared with), bundle.env (what gpu-check.sh needs to know) and
# MANIFEST (every file with its size and sha256).
#
# The kernels are compiled with the local nvcc (11.8 here) for sm_80 and
# sm_90 plus compute_90 PTX, which newer drivers JIT for newer GPUs. The
# CUDA runtime is linked statically; cuBLAS and NVML are opened at run time
# (kernels/dynload.h, cuda/libpath), and the CPU backend is built without
# OpenBLAS (tag noblas), so the binaries need nothing beyond glibc,
# libstdc++ and the driver. That is checked here with ldd, and again by
# TestGPUBundle (cuda/bundle_test.go).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bin/gpu}
GO=${GO:-go}
MAX_MIB=${GPU_BUNDLE_MAX_MIB:-60}
VERSION=${VERSION:-$(git describe --always --dirty 2>/dev/null || echo dev)}
# Every build of the bundle uses the same tags; noblas drops the OpenBLAS
# dependency of backend/cpu (the GPU machine has no libopenblas).
TAGS=cuda,noblas
LDFLAGS="-s -w -X main.version=$VERSION"
# The training check: a tiny BERT from `rerank init` (same seed, same
# bytes on both machines), a shared collection, 100 steps, a loss logged at
# every step. gpu-check.sh runs the same arguments on the GPU.
TRAIN_SEED=42
TRAIN_INIT="--preset tiny --arch bert --tokenizer examples/bert-uncased-tokenizer --seed $TRAIN_SEED"
TRAIN_ARGS="--max-steps 100 --per-device-train-batch-size 4 --train-group-size 8 --query-max-len 32 --passage-max-len 96 --learning-rate 1e-3 --warmup-ratio 0.1 --weight-decay 0.01 --logging-steps 1 --save-steps 0 --seed $TRAIN_SEED --quiet"

t0=$(date +%s)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
step() { echo "gpu-bundle: $* ($(($(date +%s) - t0))s)"; }
fail() {
	echo "gpu-bundle: FAIL: $*" >&2
	[ -s "$log" ] && tail -40 "$log" >&2
	exit 1
}

command -v nvcc >/dev/null || fail "nvcc not found: install the CUDA toolkit (bash scripts/setup-debian.sh installs Debian's nvcc 11.8)"

# 1. Kernels: sm_80 and sm_90 SASS, compute_90 PTX (the defaults of
# CMakeLists.txt with nvcc 11.8, so `make kernels` shares this build).
step "kernels: nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), sm_80 sm_90 + compute_90 PTX"
{ cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "-DRERANK_CUDA_ARCHS=80;90" -DRERANK_CUDA_PTX=90 &&
	cmake --build build -j"$(nproc 2>/dev/null || echo 2)"; } >"$log" 2>&1 || fail "kernel build"

stage="$OUT.tmp"
rm -rf "$stage"
mkdir -p "$stage/train"

# 2. Test binaries: every package whose test files change with the cuda tag.
listtests() { "$GO" list -e -tags "$1" -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}} {{.TestGoFiles}} {{.XTestGoFiles}}{{end}}' ./... | sort; }
pkgs=$(comm -13 <(listtests noblas) <(listtests "$TAGS") | awk '{print $1}')
[ -n "$pkgs" ] || fail "no package has cuda-tagged tests"
mod=$("$GO" list -m)
tests=""
for p in $pkgs; do
	rel=${p#"$mod"/}
	name=$(echo "$rel" | tr / _).test
	step "test binary $name ($rel)"
	"$GO" test -c -tags "$TAGS" -ldflags "-s -w" -o "$stage/$name" "./$rel" >"$log" 2>&1 || fail "go test -c ./$rel"
	# The tests to run: those of the files with the cuda tag.
	funcs=$(grep -lE '^//go:build.*\bcuda\b' "$rel"/*_test.go | xargs grep -ho '^func Test[A-Za-z0-9_]*' |
		sed 's/^func //' | sort -u | paste -sd'|')
	[ -n "$funcs" ] || fail "$rel: no Test function in its cuda-tagged test files"
	tests="$tests $name:$rel:^($funcs)\$"
done

# 3. The command, and the standalone kernel tests.
step "rerank (cuda-tagged)"
"$GO" build -tags "$TAGS" -ldflags "$LDFLAGS" -o "$stage/rerank" ./cmd/rerank >"$log" 2>&1 || fail "go build ./cmd/rerank"
# The kernels inside: SASS for sm_80 and sm_90, PTX for compute_90.
archs="sm_80 sm_90 compute_90"
if command -v cuobjdump >/dev/null; then
	elf=$(cuobjdump --list-elf "$stage/rerank" 2>/dev/null | grep -o 'sm_[0-9a]*' | sort -u | tr '\n' ' ')
	ptx=$(cuobjdump --list-ptx "$stage/rerank" 2>/dev/null | grep -o 'sm_[0-9a]*' | sort -u | sed 's/sm_/compute_/' | tr '\n' ' ')
	archs="${elf}${ptx% }"
	[ "$archs" = "sm_80 sm_90 compute_90" ] || fail "rerank holds kernels for '$archs', want 'sm_80 sm_90 compute_90'"
fi
cp build/rerank_kernels_check "$stage/rerank_kernels_check"
strip "$stage/rerank_kernels_check"

# 4. No CUDA library may be linked: only the driver, opened at run time.
for f in "$stage"/*; do
	[ -f "$f" ] || continue
	if ldd "$f" 2>/dev/null | grep -E 'libcudart|libcublas|libnccl|libnvidia-ml|libopenblas'; then
		fail "$f links a library the GPU machine may lack (see above)"
	fi
done

# 5. The CPU loss curve the GPU training run is compared with.
data=../shared/data/cranfield/reranker_train.jsonl.gz
if [ ! -f "$data" ]; then
	[ "${CI:-}" = true ] && fail "$data not found (CI=true: ../shared must be there)"
	data=examples/scifact-sample/train.jsonl.gz
	echo "gpu-bundle: ../shared/data not found; training on $data instead"
fi
cp "$data" "$stage/train/train.jsonl.gz"
# The XLM-R tokenizer of the full-size (m3) step, when ../shared has it.
xlmr=../shared/models/xlmr-layout-unigram-tokenizer/tokenizer.json
if [ -f "$xlmr" ]; then
	mkdir -p "$stage/xlmr-tokenizer"
	cp "$xlmr" "$stage/xlmr-tokenizer/"
fi
if [ "${GPU_BUNDLE_NO_REF:-}" != 1 ]; then
	step "CPU reference: 100 training steps"
	"$GO" build -ldflags "$LDFLAGS" -o build/rerank-host ./cmd/rerank >"$log" 2>&1 || fail "go build (host rerank)"
	ref=$(mktemp -d)
	# shellcheck disable=SC2086 # the argument lists split on purpose
	{ build/rerank-host init $TRAIN_INIT --output "$ref/model" &&
		build/rerank-host train --model "$ref/model" --train-data "$stage/train/train.jsonl.gz" \
			--output-dir "$ref/out" $TRAIN_ARGS; } >"$log" 2>&1 || fail "CPU reference run"
	cp "$ref/out/metrics.jsonl" "$stage/train/cpu_metrics.jsonl"
	model_sha=$(sha256sum "$ref/model/model.safetensors" | awk '{print $1}')
	rm -rf "$ref"
else
	model_sha=""
fi

# 6. Compress the binaries, describe the bundle, swap it into place.
for f in "$stage"/*.test "$stage/rerank" "$stage/rerank_kernels_check"; do gzip -6 "$f" & done
wait
{
	echo "# written by scripts/gpu-bundle.sh; read by scripts/gpu-check.sh"
	echo "BUNDLE_VERSION='$VERSION'"
	echo "BUNDLE_COMMIT='$(git rev-parse HEAD 2>/dev/null || echo unknown)'"
	echo "BUNDLE_DATE='$(date -u +%Y-%m-%dT%H:%M:%SZ)'"
	echo "BUNDLE_NVCC='$(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p')'"
	echo "BUNDLE_ARCHS='$archs'"
	echo "BUNDLE_TESTS='${tests# }'"
	echo "TRAIN_INIT='$TRAIN_INIT'"
	echo "TRAIN_ARGS='$TRAIN_ARGS'"
	echo "TRAIN_DATA_FROM='$data'"
	echo "TRAIN_MODEL_SHA256='$model_sha'"
} >"$stage/bundle.env"
(cd "$stage" && find . -type f ! -name MANIFEST | sed 's|^\./||' | sort | while read -r f; do
	echo "$(sha256sum "$f" | awk '{print $1}') $(stat -c %s "$f") $f"
done) >"$stage/MANIFEST"
rm -rf "$OUT"
mv "$stage" "$OUT"

bytes=$(du -sb "$OUT" | awk '{print $1}')
mib=$(awk -v b="$bytes" 'BEGIN{printf "%.1f", b/1048576}')
step "bundle $OUT: $mib MiB in $(wc -l <"$OUT/MANIFEST") files (limit $MAX_MIB MiB)"
awk '{printf "  %-32s %6.1f MiB\n", $3, $2/1048576}' "$OUT/MANIFEST"
if [ "$bytes" -gt $((MAX_MIB * 1048576)) ]; then
	fail "the bundle is $mib MiB, over $MAX_MIB MiB: the GPU machine receives at most 64 MiB"
fi
