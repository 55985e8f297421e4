# rerank: build, test, benchmark.
#
#   make demo    install what is missing, build rerank, create a small model,
#                train it on the bundled sample and evaluate it before and after
#   make test    install what is missing, then check formatting, vet and test
#                everything, and compile the CUDA kernels (CI runs exactly this)
#
# Both start with `setup` (scripts/setup-debian.sh), which does nothing when
# everything is installed.

GO      ?= go
BIN     ?= bin
NVCC    ?= $(shell command -v nvcc 2>/dev/null)
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: setup all build test vet gotest mpi-test portable gotest-purego gotest-routes fmt-check bench kernels kernels-check kernels-emu cuda-vet gpu-bundle gpu-bundle-check gpu-check demo clean

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/rerank ./cmd/rerank

test: setup
	$(MAKE) fmt-check vet portable gotest gotest-purego gotest-routes kernels-check

fmt-check:
	@bad=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$bad" ]; then echo "gofmt needed: $$bad"; exit 1; fi

vet:
	$(GO) vet ./...
	$(GO) vet -tags mpi ./dist/ ./train/ ./cmd/rerank/

gotest:
	$(GO) test -count=1 -timeout 25m ./...
	$(MAKE) mpi-test

# mpi-test runs the data-parallel tests through real `mpirun -np 2
# --oversubscribe` (Open MPI from scripts/setup-debian.sh; as root with
# Open MPI's run-as-root variables): 2 ranks equal 1 process, one
# all-reduce per step, a killed rank stops the other, resume after a kill.
mpi-test:
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
		$(GO) test -tags mpi -count=1 -timeout 5m ./dist/ ./train/ -run 'MPI|Detect|Open'

# portable builds and vets the pure-Go configurations (no cgo, no
# OpenBLAS, no C kernels): CGO_ENABLED=0, and a cross-compile to
# linux/arm64 (compiled and vetted, not run); and the tag noblas, the
# same pure-Go backend with cgo on, vetted here (gotest-purego compiles
# and runs it).
portable:
	$(GO) vet -tags noblas ./...
	CGO_ENABLED=0 $(GO) build ./... && CGO_ENABLED=0 $(GO) vet ./...
	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) build ./... && GOOS=linux GOARCH=arm64 CGO_ENABLED=0 $(GO) vet ./...

# gotest-purego runs the numeric core's tests (golden parity, gradients,
# allocation counts) once more on the pure-Go backend.
gotest-purego:
	$(GO) test -count=1 -tags noblas ./backend/... ./nn/... ./lora/

# gotest-routes runs golden parity once more with the layers' products
# forced onto each GEMM route this CPU can take (RERANK_CPU_GEMM); the
# default route ran in gotest, and the routes it cannot take are named.
gotest-routes:
	@for r in avx512 avx2 openblas go; do \
		if $(GO) run ./backend/cpu/internal/routes $$r; then \
			echo "golden parity, RERANK_CPU_GEMM=$$r"; \
			RERANK_CPU_GEMM=$$r $(GO) test -count=1 -run Golden ./nn/ ./lora/ || exit 1; \
		else echo "skipped RERANK_CPU_GEMM=$$r: not on this CPU or in this build"; fi; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 3x ./...

# kernels-check tests the kernels' logic on the CPU (kernels-emu), compiles
# every CUDA kernel (nvcc 11.8 here: sm_80 and sm_90 + compute_90 PTX; nvcc
# 12+ adds sm_90a), vets the cuda-tagged Go code, then builds the GPU bundle
# (every cuda-tagged binary, linked against build/librerank_kernels.a) and
# checks it (gpu-bundle-check). No GPU needed. Without nvcc the compile
# steps say so and pass, except under CI=true.
kernels-check: kernels-emu
	@if [ -z "$(NVCC)" ]; then \
		if [ "$$CI" = "true" ]; then echo "nvcc not found: CI must compile the kernels (see .ci/run)"; exit 1; fi; \
		echo "nvcc not found: skipping the CUDA compile check"; \
	else $(MAKE) kernels && $(MAKE) cuda-vet && $(MAKE) gpu-bundle-check; fi

# kernels builds build/librerank_kernels.a and build/rerank_kernels_check.
# CUDA_ARCHS overrides the targets (e.g. CUDA_ARCHS=90a on an H100 with nvcc 12+).
CUDA_ARCHS ?=
kernels:
	@if [ -f CMakeLists.txt ] && ls kernels/*.cu >/dev/null 2>&1; then \
		cmake -S . -B build -DCMAKE_BUILD_TYPE=Release $(if $(CUDA_ARCHS),"-DRERANK_CUDA_ARCHS=$(CUDA_ARCHS)") >/dev/null && \
		cmake --build build -j$$(nproc 2>/dev/null || echo 2); \
	else echo "no kernels yet"; fi

# cuda-vet vets the cuda-tagged Go code (gpu-bundle links it). The NCCL
# backend (package dist) is vetted and its missing-library error tested
# without NCCL: it loads libnccl.so.2 at run time.
cuda-vet:
	$(GO) vet -tags cuda ./cuda/... ./dist/ ./cmd/rerank/ ./lora/ && \
	$(GO) vet -tags cuda,mpi ./dist/ ./cmd/rerank/ && \
	$(GO) test -tags cuda -count=1 -run NCCL ./dist/ && echo "cuda-tagged Go code: vetted"

# gpu-bundle writes bin/gpu/: what a GPU machine without Go needs for
# scripts/gpu-check.sh (see scripts/gpu-bundle.sh; README, "GPU").
GPU_BUNDLE ?= bin/gpu
gpu-bundle:
	GO=$(GO) VERSION=$(VERSION) bash scripts/gpu-bundle.sh $(GPU_BUNDLE)

# gpu-bundle-check builds the bundle, asserts it (TestGPUBundle: MANIFEST,
# sizes, no CUDA library or OpenBLAS in ldd), then runs gpu-check.sh
# --dry-run, which must exit 3 saying the GPU steps did not run.
gpu-bundle-check: gpu-bundle
	RERANK_GPU_BUNDLE=$(abspath $(GPU_BUNDLE)) $(GO) test -count=1 -run 'TestGPUBundle|TestLddViolations' ./cuda/
	@mkdir -p build; BUNDLE=$(GPU_BUNDLE) OUT=build/gpu-dry-run bash scripts/gpu-check.sh --dry-run >build/gpu-dry-run.txt 2>&1; \
	rc=$$?; cat build/gpu-dry-run.txt; \
	if [ $$rc -ne 3 ] || ! tail -1 build/gpu-dry-run.txt | grep -q 'dry run passed; the GPU steps did not run'; then \
		echo "gpu-check.sh --dry-run: exit $$rc; want 3 and 'dry run passed; the GPU steps did not run'"; exit 1; fi

# kernels-emu runs every SIMT kernel on the CPU through kernels/emu (one OS
# thread per CUDA thread, real barriers and warp shuffles) against the float64
# references of kernels/check, then the cuda-tagged Go tests (every op of the
# Go backend against backend/cpu) on that emulation: the kernels' logic and
# the cgo bindings are tested without a GPU.
kernels-emu:
	@bash kernels/emu/build.sh >/dev/null && build/emu/rerank_kernels_emu --no-bench
	$(GO) test -tags cuda,cudaemu -count=1 ./cuda/

# gpu-check runs everything that needs a GPU (see scripts/gpu-check.sh);
# on a machine without one it is the dry run.
gpu-check:
	bash scripts/gpu-check.sh

# demo builds rerank, creates a tiny random BERT reranker, trains it on the
# bundled SciFact excerpt and prints dev metrics before and after training.
demo: setup
	GO=$(GO) BIN=$(BIN) bash scripts/demo.sh

clean:
	rm -rf $(BIN) build

setup:
	bash scripts/setup-debian.sh
