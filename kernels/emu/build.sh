#!/usr/bin/env bash
# Builds build/emu/rerank_kernels_emu: the SIMT kernels and the standalone
# check program compiled for the CPU through kernels/emu/cuda_emu.h (see
# there), so CI without a GPU runs every kernel's logic against the float64
# references of kernels/check/check.cu; and build/emu/librerank_kernels_emu.a,
# the same kernels behind the C ABI, which the cuda-tagged Go code links
# under the extra tag cudaemu (go test -tags cuda,cudaemu ./cuda/). The
# tensor-core GEMM path and the benchmark are left out.
#
#   bash kernels/emu/build.sh && build/emu/rerank_kernels_emu
set -euo pipefail
cd "$(dirname "$0")/../.."
out=build/emu
rm -rf "$out"
mkdir -p "$out/emu" "$out/check"
cp kernels/common.cuh kernels/mma.cuh kernels/rerank_kernels.h "$out/"
cp kernels/emu/cuda_emu.h "$out/emu/"
# k<<<cfg>>>(args) -> rk_emu::make_launch(k, cfg)(args); dynamic shared
# arrays -> the running block's buffer.
rewrite() {
	sed -E \
		-e 's/([A-Za-z_][A-Za-z0-9_]*(<[^<>;]*>)?)<<<([^;]*)>>>\(/rk_emu::make_launch(\1, \3)(/' \
		-e 's/extern __shared__ __align__\(16\) ([a-z0-9_]+) ([a-z]+)\[\];/\1 *\2 = (\1 *)rk_emu::dyn_smem();/' \
		"$1" >"$2"
	if grep -n '<<<\|extern __shared__' "$2"; then
		echo "emu/build.sh: $1 has a launch or shared array the rewrite missed" >&2
		exit 1
	fi
}
srcs=()
for f in attention attention_bf16 device elementwise embed gemm_bf16 gemm_f32 layernorm lora optim; do
	rewrite "kernels/$f.cu" "$out/$f.cc"
	srcs+=("$out/$f.cc")
done
rewrite kernels/check/check.cu "$out/check/check.cc"
cp kernels/emu/bench_stub.cc "$out/bench_stub.cc"
# The run-time loader (kernels/dynload.cc) is plain C++: the emulated
# library carries it so the cuda-tagged Go code links the same symbols.
cp kernels/dynload.cc kernels/dynload.h kernels/cublas_dl.h "$out/"
srcs+=("$out/bench_stub.cc" "$out/dynload.cc")
CXX=${CXX:-g++}
objs=()
for s in "${srcs[@]}" "$out/check/check.cc"; do
	o="${s%.cc}.o"
	"$CXX" -std=c++20 -O2 -pthread -DRK_EMU -I"$out" -c "$s" -o "$o" &
	objs+=("$o")
done
wait
# The library the cuda-tagged Go code links under the extra tag cudaemu.
ar rcs "$out/librerank_kernels_emu.a" "${objs[@]:0:${#objs[@]}-1}"
"$CXX" -pthread -o "$out/rerank_kernels_emu" "$out/check/check.o" "$out/librerank_kernels_emu.a" -ldl
echo "built $out/rerank_kernels_emu and $out/librerank_kernels_emu.a"
