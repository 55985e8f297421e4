//go:build !cuda

package main

import (
	"errors"

	"github.com/urfave/cli/v2"
)

func init() {
	register(&cli.Command{
		Name:  "bench-kernels",
		Usage: "time the CUDA kernels at real model shapes against cuBLAS and PyTorch SDPA (needs a CUDA build)",
		Action: func(*cli.Context) error {
			return errors.New("bench-kernels needs the CUDA kernels: this rerank was built without them; " +
				"build with `make kernels && go build -tags cuda -o bin/rerank ./cmd/rerank` on a machine with nvcc, then run it where a GPU is visible")
		},
	})
}
