//go:build cgo

// Package nvmon watches an NVIDIA GPU through NVML (github.com/NVIDIA/go-nvml)
// while a job runs: device memory used and total, GPU and memory
// utilisation, this process's device memory, and the peaks of both.
//
// NVML is loaded at run time (libnvidia-ml.so.1 ships with the driver), so
// the package builds without CUDA and needs no build tag, and no binary
// links it. It is looked for as cuda/libpath says: $RERANK_NVML, the
// loader's path, the CUDA and system library folders, then python3's
// nvidia/*/lib folders. Without a driver
// the monitor says so once, through the log function given to Open, and
// every method keeps working and reports nothing; it never returns an
// error and never stops the job.
package nvmon

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/rerank-go/rerank/cuda/libpath"
)

// Sample is one reading of the device.
type Sample struct {
	Time     time.Time
	Device   string
	MemUsed  uint64 // bytes in use on the device, all processes
	MemTotal uint64
	GPUUtil  uint32 // percent of time a kernel ran over the last sample period
	MemUtil  uint32 // percent of time device memory was read or written
	ProcMem  uint64 // bytes this process holds on the device (0 if unknown)
}

// String formats a sample for a progress line.
func (s Sample) String() string {
	str := fmt.Sprintf("gpu %s/%s %d%%", FormatBytes(s.MemUsed), FormatBytes(s.MemTotal), s.GPUUtil)
	if s.ProcMem > 0 {
		str += " proc " + FormatBytes(s.ProcMem)
	}
	return str
}

// FormatBytes prints a byte count in GiB, MiB or KiB.
func FormatBytes(b uint64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.0fMiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%.0fKiB", float64(b)/(1<<10))
	}
}

// Monitor samples one device. The zero value is not usable; call Open.
type Monitor struct {
	mu       sync.Mutex
	dev      nvml.Device
	name     string
	ok       bool
	reason   string
	pid      uint32
	last     Sample
	peakUsed uint64
	peakProc uint64
	stop     chan struct{}
	done     chan struct{}
	logf     func(format string, args ...any)
}

// lib is the NVML in use; Open sets it to the first library that loads.
var lib nvml.Interface = nvml.New()

// LibraryPath is the NVML file the last Open loaded ("" when none).
var LibraryPath string

// load tries every candidate library until NVML initialises. A library
// that loads but fails to initialise (no driver loaded, no permission)
// ends the search: its error is the one to report.
func load() nvml.Return {
	const soname = "libnvidia-ml.so.1"
	ret := nvml.ERROR_LIBRARY_NOT_FOUND
	for _, p := range libpath.Candidates("RERANK_NVML", soname) {
		lib = nvml.New(nvml.WithLibraryPath(p))
		if ret = safeInit(); ret != nvml.ERROR_LIBRARY_NOT_FOUND {
			if ret == nvml.SUCCESS {
				LibraryPath = p
			}
			return ret
		}
	}
	return ret
}

// Open starts NVML and picks device index. When NVML or the device is
// unavailable, logf (nil: standard error) is told once why, and the
// monitor reports nothing from then on.
func Open(index int, logf func(format string, args ...any)) *Monitor {
	if logf == nil {
		logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }
	}
	m := &Monitor{pid: uint32(os.Getpid()), logf: logf}
	if ret := load(); ret != nvml.SUCCESS {
		why := errString(ret)
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND {
			why = "not found: looked for " + libpath.Searched("RERANK_NVML", "libnvidia-ml.so.1")
		}
		m.disable(fmt.Sprintf("NVML unavailable (%s): no GPU memory figures; the run goes on", why))
		return m
	}
	dev, ret := lib.DeviceGetHandleByIndex(index)
	if ret != nvml.SUCCESS {
		lib.Shutdown()
		m.disable(fmt.Sprintf("NVML: no device %d (%s): no GPU memory figures; the run goes on", index, errString(ret)))
		return m
	}
	m.dev, m.ok = dev, true
	if name, ret := dev.GetName(); ret == nvml.SUCCESS {
		m.name = name
	}
	return m
}

// safeInit calls nvml.Init, turning a panic of the binding (seen with
// broken driver installs) into an error code.
func safeInit() (ret nvml.Return) {
	defer func() {
		if recover() != nil {
			ret = nvml.ERROR_LIBRARY_NOT_FOUND
		}
	}()
	return lib.Init()
}

func errString(ret nvml.Return) string {
	defer func() { _ = recover() }()
	return lib.ErrorString(ret)
}

func (m *Monitor) disable(reason string) {
	m.ok, m.reason = false, reason
	m.logf("%s", reason)
}

// Available reports whether readings come from a device.
func (m *Monitor) Available() bool { return m != nil && m.ok }

// Reason says why the monitor is unavailable ("" when it is available).
func (m *Monitor) Reason() string { return m.reason }

// Sample reads the device now and updates the peaks. ok is false when the
// monitor is unavailable or the read failed.
func (m *Monitor) Sample() (s Sample, ok bool) {
	if !m.Available() {
		return Sample{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	mem, ret := m.dev.GetMemoryInfo()
	if ret != nvml.SUCCESS {
		return Sample{}, false
	}
	s = Sample{Time: time.Now(), Device: m.name, MemUsed: mem.Used, MemTotal: mem.Total}
	if u, ret := m.dev.GetUtilizationRates(); ret == nvml.SUCCESS {
		s.GPUUtil, s.MemUtil = u.Gpu, u.Memory
	}
	if procs, ret := m.dev.GetComputeRunningProcesses(); ret == nvml.SUCCESS {
		for _, p := range procs {
			if p.Pid == m.pid {
				s.ProcMem = p.UsedGpuMemory
			}
		}
	}
	m.last = s
	m.peakUsed = max(m.peakUsed, s.MemUsed)
	m.peakProc = max(m.peakProc, s.ProcMem)
	return s, true
}

// Last returns the most recent sample (taken by Sample or the sampler).
func (m *Monitor) Last() (Sample, bool) {
	if !m.Available() {
		return Sample{}, false
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.last, !m.last.Time.IsZero()
}

// Peak returns the highest device memory in use and the highest this
// process held, over every sample so far.
func (m *Monitor) Peak() (deviceBytes, processBytes uint64) {
	if !m.Available() {
		return 0, 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peakUsed, m.peakProc
}

// PeakString formats the peaks for the end-of-run report.
func (m *Monitor) PeakString() string {
	if !m.Available() {
		return "GPU memory peak: unknown (" + m.reason + ")"
	}
	d, p := m.Peak()
	return fmt.Sprintf("GPU memory peak: device %s, this process %s", FormatBytes(d), FormatBytes(p))
}

// Start samples every interval in the background until Stop or Close.
func (m *Monitor) Start(interval time.Duration) {
	if !m.Available() || m.stop != nil {
		return
	}
	m.stop, m.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(m.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		m.Sample()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				m.Sample()
			}
		}
	}()
}

// Stop ends background sampling.
func (m *Monitor) Stop() {
	if m.stop == nil {
		return
	}
	close(m.stop)
	<-m.done
	m.stop, m.done = nil, nil
}

// Close stops sampling and shuts NVML down.
func (m *Monitor) Close() {
	m.Stop()
	if m.ok {
		m.ok = false
		lib.Shutdown()
	}
}
