//go:build cuda

package cuda

/*
#include <stdlib.h>
#include "rerank_kernels.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// BenchOptions configure BenchKernels.
type BenchOptions struct {
	Quick           bool   // fewer shapes and repeats
	Warmup, Repeats int    // 0: the harness's defaults (5, 30; 10 when quick)
	Filter          string // run only kernels whose name contains it
	Quiet           bool   // no progress lines on stdout
}

// BenchPeak holds the device's peaks that percentages refer to.
type BenchPeak struct {
	Device     string  `json:"device"`
	BF16TFLOPS float64 `json:"bf16_tflops"`
	FP32TFLOPS float64 `json:"fp32_tflops"`
	DRAMGBps   float64 `json:"dram_gbps"`
	Measured   bool    `json:"measured"`
	// FailedSections counts benchmark sections that failed (details on
	// standard error); their rows are missing.
	FailedSections int `json:"failed_sections"`
}

// BenchRow is one timed kernel (or its reference) at one shape.
type BenchRow struct {
	Name    string  `json:"name"`
	Shape   string  `json:"shape"`
	Impl    string  `json:"impl"`
	Ms      float64 `json:"ms"`
	FLOPs   float64 `json:"flops,omitempty"`
	Bytes   float64 `json:"bytes"`
	TFLOPS  float64 `json:"tflops,omitempty"`
	GBps    float64 `json:"gbps"`
	PctPeak float64 `json:"pct_peak"`
	// RelErr is ‖ours − reference‖/‖reference‖ where a reference output
	// was compared; -1 otherwise.
	RelErr float64 `json:"rel_err"`
}

// BenchKernels runs the kernel benchmark of kernels/bench.cu on the
// current device. Progress lines go to the process's stdout as it runs.
func BenchKernels(o BenchOptions) (BenchPeak, []BenchRow, error) {
	if _, err := Probe(); err != nil {
		return BenchPeak{}, nil, fmt.Errorf("bench-kernels: %w: run it on a machine with an NVIDIA GPU and driver", err)
	}
	if _, err := CUBLAS(); err != nil {
		return BenchPeak{}, nil, fmt.Errorf("bench-kernels: cuBLAS is the reference and is loaded at run time: %w", err)
	}
	var opts C.rk_bench_opts
	if o.Quick {
		opts.quick = 1
	}
	opts.warmup, opts.repeats = C.int(o.Warmup), C.int(o.Repeats)
	if o.Quiet {
		opts.quiet = 1
	}
	if o.Filter != "" {
		cs := C.CString(o.Filter)
		defer C.free(unsafe.Pointer(cs))
		opts.filter = cs
	}
	const maxRows = 512
	rows := make([]C.rk_bench_row, maxRows)
	var peak C.rk_bench_peak
	n := C.rk_bench_run(&opts, &peak, &rows[0], maxRows)
	if n < 0 {
		return BenchPeak{}, nil, fmt.Errorf("bench-kernels: %w", cudaErr("benchmark", -n))
	}
	p := BenchPeak{
		Device:     C.GoString(&peak.device[0]),
		BF16TFLOPS: float64(peak.bf16_tflops),
		FP32TFLOPS: float64(peak.fp32_tflops),
		DRAMGBps:   float64(peak.dram_gbps),
		Measured:   peak.measured != 0,

		FailedSections: int(peak.failed_sections),
	}
	out := make([]BenchRow, 0, int(n))
	for _, r := range rows[:n] {
		out = append(out, BenchRow{
			Name: C.GoString(&r.name[0]), Shape: C.GoString(&r.shape[0]), Impl: C.GoString(&r.impl[0]),
			Ms: float64(r.ms), FLOPs: float64(r.flops), Bytes: float64(r.bytes), TFLOPS: float64(r.tflops),
			GBps: float64(r.gbps), PctPeak: float64(r.pct_peak), RelErr: float64(r.max_rel_err),
		})
	}
	return p, out, nil
}
