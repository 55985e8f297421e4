package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
)

// deviceFlags are the flags of every command that runs a model.
func deviceFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: "cpu", Usage: "where the model runs: cpu, cuda or cuda:N (cuda needs a build with -tags cuda)"},
		&cli.BoolFlag{Name: "bf16", Usage: "on cuda, run matrix products and attention on tensor cores in bf16 (float32 accumulation and master weights)"},
	}
}

// parseDevice splits "cuda:1" into its kind and ordinal.
func parseDevice(s string) (kind string, ordinal int, err error) {
	kind, num, hasNum := strings.Cut(strings.ToLower(strings.TrimSpace(s)), ":")
	if kind == "" {
		kind = "cpu"
	}
	if hasNum {
		ordinal, err = strconv.Atoi(num)
		if err != nil || ordinal < 0 {
			return "", 0, fmt.Errorf("--device %q: the device number must be a non-negative integer", s)
		}
	}
	switch kind {
	case "cpu":
		if hasNum {
			return "", 0, fmt.Errorf("--device %q: the cpu takes no number", s)
		}
	case "cuda", "gpu":
		kind = "cuda"
	default:
		return "", 0, fmt.Errorf("--device %q: want cpu, cuda or cuda:N", s)
	}
	return kind, ordinal, nil
}

// openDevice returns the backend for a --device value, and a function
// that releases it.
func openDevice(s string, bf16 bool) (backend.Backend, func(), error) {
	kind, ordinal, err := parseDevice(s)
	if err != nil {
		return nil, nil, err
	}
	if kind == "cpu" {
		if bf16 {
			return nil, nil, fmt.Errorf("--bf16 needs --device cuda: the cpu backend computes in float32")
		}
		bk, err := cpu.NewWithOptions(cpu.Options{Gemm: os.Getenv(cpu.GemmEnv)})
		if err != nil {
			return nil, nil, fmt.Errorf("%s=%s: %w", cpu.GemmEnv, os.Getenv(cpu.GemmEnv), err)
		}
		return bk, func() {}, nil
	}
	return openCUDA(ordinal, bf16)
}
