#!/usr/bin/env bash
# Installs everything rerank needs on a Debian 12 machine (run as root):
# OpenBLAS for the CPU backend, Open MPI for data-parallel training, CMake and Debian's non-free CUDA toolkit
# (nvcc 11.8) to compile the kernels, and the Go modules.
set -euo pipefail
need=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || need+=(libopenblas-dev)
dpkg -s pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s cmake >/dev/null 2>&1 || need+=(cmake)
# Open MPI: data-parallel training on CPUs (go build -tags mpi) and its tests.
dpkg -s openmpi-bin >/dev/null 2>&1 || need+=(openmpi-bin)
dpkg -s libopenmpi-dev >/dev/null 2>&1 || need+=(libopenmpi-dev)
command -v nvcc >/dev/null 2>&1 || need+=(nvidia-cuda-toolkit)
if [ ${#need[@]} -gt 0 ]; then
	# The CUDA toolkit is in Debian's contrib/non-free components.
	for f in /etc/apt/sources.list.d/debian.sources; do
		[ -f "$f" ] && sed -i -E 's/^Components: main$/Components: main contrib non-free non-free-firmware/' "$f"
	done
	if [ -f /etc/apt/sources.list ]; then
		sed -i -E '/^deb .*debian/ { / contrib/! s/ main$/ main contrib non-free non-free-firmware/ }' /etc/apt/sources.list
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${need[@]}"
fi
export PATH=/usr/local/go/bin:$PATH
go mod download
