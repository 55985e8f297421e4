# shellcheck shell=bash
# bench/lib.sh: what the side-by-side scripts (cpu_vs_torch.sh,
# cpu_vs_ort.sh) share. Source it after parsing the flags:
#
#   . "$(dirname "$0")/lib.sh"
#
# It sets root (the checkout), shared (../shared, or $RERANK_SHARED), py
# (Debian's python3), ob (OpenBLAS's OpenMP library for PyTorch, "" when
# not installed), out (bin/bench-out) and stamp (UTC, for file names), and
# defines:
#   need_torch        exit with the apt-get line when PyTorch is missing
#   bench_build       build bin/rerank and create $out
#   bench_header      print the date, cores, CPU, commit, GEMM route and load
#   bench_rounds R A B ...
#                     R rounds; each calls `run ROUND NAME` for every name,
#                     the order rotating by one between rounds (A B, B A, ...
#                     for two), then prints the load at the end.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
shared=${RERANK_SHARED:-$root/../shared}
py=/usr/bin/python3
ob=$(dpkg -L libopenblas0-openmp 2>/dev/null | grep -m1 '/openblas-openmp$' || true)
out=$root/bin/bench-out
stamp=$(date -u +%Y%m%dT%H%M%SZ)

need_torch() {
	$py -c 'import torch' 2>/dev/null || {
		echo "PyTorch missing: apt-get install -y python3-torch python3-numpy libopenblas0-openmp" >&2
		exit 1
	}
}

bench_build() {
	mkdir -p "$out"
	(cd "$root" && go build -o bin/rerank ./cmd/rerank)
}

bench_header() {
	echo "# $(date -u '+%F %T') UTC, $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), commit $(git -C "$root" describe --always --dirty), RERANK_CPU_GEMM=${RERANK_CPU_GEMM:-auto}"
	echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

bench_rounds() {
	local rounds=$1
	shift
	local names=("$@") n=$# r i
	for r in $(seq 1 "$rounds"); do
		for ((i = 0; i < n; i++)); do
			run "$r" "${names[$(((i + r - 1) % n))]}"
		done
	done
	echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
}
