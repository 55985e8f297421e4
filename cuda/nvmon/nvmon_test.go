//go:build cgo

package nvmon

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestFormatBytes(t *testing.T) {
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0KiB"},
		{1536, "2KiB"},
		{5 << 20, "5MiB"},
		{80 << 30, "80.0GiB"},
		{3 << 29, "1.5GiB"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) { assert.Equal(t, tc.want, FormatBytes(tc.in)) })
	}
}

func TestSampleString(t *testing.T) {
	tests := []struct {
		name string
		s    Sample
		want string
	}{
		{"with-process", Sample{MemUsed: 10 << 30, MemTotal: 80 << 30, GPUUtil: 97, ProcMem: 9 << 30}, "gpu 10.0GiB/80.0GiB 97% proc 9.0GiB"},
		{"no-process", Sample{MemUsed: 512 << 20, MemTotal: 80 << 30}, "gpu 512MiB/80.0GiB 0%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, tc.s.String()) })
	}
}

// TestOpenDegrades runs on any machine: with a driver it reads the device;
// without one it must say so exactly once and keep answering.
func TestOpenDegrades(t *testing.T) {
	var logged []string
	m := Open(0, func(format string, args ...any) { logged = append(logged, fmt.Sprintf(format, args...)) })
	defer m.Close()
	m.Start(10 * time.Millisecond)
	time.Sleep(30 * time.Millisecond)
	m.Stop()
	s, ok := m.Sample()
	if !m.Available() {
		assert.Len(t, logged, 1, "unavailability is reported once")
		assert.Contains(t, logged[0], "the run goes on")
		assert.False(t, ok)
		assert.Equal(t, Sample{}, s)
		d, p := m.Peak()
		assert.Zero(t, d)
		assert.Zero(t, p)
		assert.Contains(t, m.PeakString(), "unknown")
		return
	}
	assert.Empty(t, logged)
	assert.True(t, ok)
	assert.Positive(t, s.MemTotal)
	d, _ := m.Peak()
	assert.GreaterOrEqual(t, d, s.MemUsed)
}
