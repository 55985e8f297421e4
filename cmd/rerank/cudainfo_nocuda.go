//go:build !cuda

package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func init() {
	register(&cli.Command{
		Name:  "cuda-info",
		Usage: "say which CUDA runtime, driver, GPUs, cuBLAS and NVML this build finds (needs a CUDA build)",
		Action: func(*cli.Context) error {
			return errors.New("cuda-info: this rerank was built without CUDA; build it with `make kernels && go build -tags cuda -o bin/rerank ./cmd/rerank`, or use bin/gpu/rerank from `make gpu-bundle`")
		},
	})
}
