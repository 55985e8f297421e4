//go:build cuda

package main

import (
	"fmt"
	"time"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/cuda"
	"github.com/rerank-go/rerank/cuda/nvmon"
	"github.com/rerank-go/rerank/train"
)

func openCUDA(ordinal int, bf16 bool) (backend.Backend, func(), error) {
	be, err := cuda.New(cuda.Options{Device: ordinal, BF16: bf16})
	if err != nil {
		return nil, nil, err
	}
	return be, func() { be.Close() }, nil
}

// gpuMonitor adapts nvmon to train.Monitor.
type gpuMonitor struct{ m *nvmon.Monitor }

func (g gpuMonitor) Status() string {
	if s, ok := g.m.Last(); ok {
		return s.String()
	}
	return ""
}

func (g gpuMonitor) Metrics() map[string]float64 {
	s, ok := g.m.Last()
	if !ok {
		return nil
	}
	dev, proc := g.m.Peak()
	return map[string]float64{
		"gpu_memory_used": float64(s.MemUsed), "gpu_memory_total": float64(s.MemTotal),
		"gpu_utilization": float64(s.GPUUtil), "gpu_process_memory": float64(s.ProcMem),
		"gpu_peak_memory": float64(dev), "gpu_peak_process_memory": float64(proc),
	}
}

// openMonitor starts NVML sampling of the device when it is a GPU; it
// returns the monitor and a function that stops it and describes the peak.
func openMonitor(device string, logf func(string, ...any)) (train.Monitor, func() string) {
	kind, ordinal, err := parseDevice(device)
	if err != nil || kind != "cuda" {
		return nil, nil
	}
	m := nvmon.Open(ordinal, logf)
	if !m.Available() {
		return nil, func() string { m.Close(); return "" }
	}
	m.Start(time.Second)
	return gpuMonitor{m}, func() string {
		m.Stop()
		s := fmt.Sprintf("peak GPU memory: %s", m.PeakString())
		m.Close()
		return s
	}
}
