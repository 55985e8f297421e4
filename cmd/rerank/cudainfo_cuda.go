//go:build cuda

package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/cuda"
	"github.com/rerank-go/rerank/cuda/libpath"
	"github.com/rerank-go/rerank/cuda/nvmon"
)

func init() {
	register(&cli.Command{
		Name:  "cuda-info",
		Usage: "say which CUDA runtime, driver, GPUs, cuBLAS and NVML this build finds",
		Description: "Prints the CUDA runtime linked in (statically), the CUDA version the driver supports, " +
			"every visible GPU, and where cuBLAS (the benchmark's reference) and NVML (memory figures) were " +
			"loaded from, or everywhere they were looked for. Exits non-zero, saying \"no CUDA device\", " +
			"when no GPU is usable. scripts/gpu-check.sh runs it first.",
		Action: runCUDAInfo,
	})
}

func runCUDAInfo(c *cli.Context) error {
	w := c.App.Writer
	rt, perr := cuda.Probe()
	fmt.Fprintf(w, "rerank %s: CUDA runtime %s (static), driver supports CUDA %s\n", version, cuda.Version(rt.Runtime), cuda.Version(rt.Driver))
	for _, d := range rt.Devices {
		fmt.Fprintf(w, "device %d: %s (sm_%d%d, %d SMs)\n", d.Ordinal, d.Name, d.Major, d.Minor, d.SMs)
	}
	if p, err := cuda.CUBLAS(); err != nil {
		fmt.Fprintf(w, "cuBLAS: %v\n", err)
	} else {
		fmt.Fprintf(w, "cuBLAS: %s\n", p)
	}
	m := nvmon.Open(0, func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) })
	if m.Available() {
		fmt.Fprintf(w, "NVML: %s\n", nvmon.LibraryPath)
	}
	m.Close()
	if d := libpath.PythonDirs(); len(d) > 0 {
		fmt.Fprintf(w, "python3 CUDA wheels: %d nvidia/*/lib folders\n", len(d))
	}
	if perr != nil {
		return perr
	}
	return nil
}
