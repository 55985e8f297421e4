#!/usr/bin/env bash
# Installs everything rerank needs on a Debian 12 machine (run as root):
# OpenBLAS for the CPU backend, Open MPI for data-parallel training, CMake and Debian's non-free CUDA toolkit
# (nvcc 11.8) to compile the kernels, the Go modules, and the real HTTP clients serve's tests run (npm, requests).
set -euo pipefail
need=()
dpkg -s libopenblas-dev >/dev/null 2>&1 || need+=(libopenblas-dev)
dpkg -s pkg-config >/dev/null 2>&1 || need+=(pkg-config)
dpkg -s cmake >/dev/null 2>&1 || need+=(cmake)
# Open MPI: data-parallel training on CPUs (go build -tags mpi) and its tests.
dpkg -s openmpi-bin >/dev/null 2>&1 || need+=(openmpi-bin)
dpkg -s libopenmpi-dev >/dev/null 2>&1 || need+=(libopenmpi-dev)
command -v nvcc >/dev/null 2>&1 || need+=(nvidia-cuda-toolkit)
# Real HTTP clients that serve's tests run against rerank serve (serve/clients_test.go):
# Node.js and npm for the npm clients, Debian's Python with requests for TEI's and Jina's calls.
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
/usr/bin/python3 -c 'import requests' >/dev/null 2>&1 || need+=(python3-requests)
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
# The npm clients, pinned by their package-lock.json, into the git-ignored
# serve/testdata/clients/node_modules; again only when the lockfile changes.
clients="$(cd "$(dirname "$0")/.." && pwd)/serve/testdata/clients"
if ! cmp -s "$clients/package-lock.json" "$clients/node_modules/.rerank-lock"; then
	(cd "$clients" && npm ci --no-audit --no-fund --loglevel=error)
	cp "$clients/package-lock.json" "$clients/node_modules/.rerank-lock"
fi
