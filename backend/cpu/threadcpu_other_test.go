//go:build !linux

package cpu

import "testing"

// reportCPUGFLOPs runs body b.N times and reports GFLOP/s (no thread CPU
// time off Linux).
func reportCPUGFLOPs(b *testing.B, flops float64, body func()) {
	for range b.N {
		body()
	}
	b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
}
