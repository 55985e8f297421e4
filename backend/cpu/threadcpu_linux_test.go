package cpu

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// threadCPU returns the CPU time the calling OS thread has used
// (getrusage RUSAGE_THREAD).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPUGFLOPs runs body b.N times on one locked OS thread and reports
// GFLOP per second of that thread's CPU time (GFLOP/cpu-s) beside the
// wall-clock GFLOP/s: on a loaded machine the wall clock counts the time
// other programs hold the core, the thread's CPU time does not. Only for
// products that run on the calling goroutine (one worker).
func reportCPUGFLOPs(b *testing.B, flops float64, body func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	c0 := threadCPU()
	for range b.N {
		body()
	}
	cpu := threadCPU() - c0
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	if cpu > 0 {
		b.ReportMetric(flops*float64(b.N)/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}
