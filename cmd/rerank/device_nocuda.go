//go:build !cuda

package main

import (
	"fmt"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/train"
)

func openCUDA(int, bool) (backend.Backend, func(), error) {
	return nil, nil, fmt.Errorf("this rerank was built without CUDA: build it with `make kernels && go build -tags cuda -o bin/rerank ./cmd/rerank` on a machine with the CUDA toolkit")
}

// openMonitor has nothing to watch in a build without CUDA.
func openMonitor(string, func(string, ...any)) (train.Monitor, func() string) { return nil, nil }
