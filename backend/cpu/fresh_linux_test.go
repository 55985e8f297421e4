package cpu

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var freshSink [][]byte

// residentShare returns the share of v's whole pages resident in memory.
func residentShare(t *testing.T, v []float32) float64 {
	page := uintptr(os.Getpagesize())
	lo := (uintptr(unsafe.Pointer(&v[0])) + page - 1) &^ (page - 1)
	hi := (uintptr(unsafe.Pointer(&v[0])) + uintptr(len(v))*4) &^ (page - 1)
	vec := make([]byte, (hi-lo)/page)
	_, _, e := syscall.Syscall(syscall.SYS_MINCORE, lo, hi-lo, uintptr(unsafe.Pointer(&vec[0])))
	require.Zero(t, e)
	n := 0
	for _, r := range vec {
		n += int(r & 1)
	}
	return float64(n) / float64(len(vec))
}

// TestAllocFresh: a weights-sized Alloc is not resident until written,
// even right after a collection freed memory at the top of the heap
// (which the Go runtime would zero, page by page, for a plain make), and
// reads as zeros. Each case runs in a process of its own, whose heap
// holds nothing but what the case frees.
func TestAllocFresh(t *testing.T) {
	if g := os.Getenv("RERANK_FRESH_GARBAGE"); g != "" {
		garbage, err := strconv.Atoi(g)
		require.NoError(t, err)
		for range garbage / (4 << 20) {
			g := make([]byte, 4<<20)
			for i := 0; i < len(g); i += 4096 {
				g[i] = 1
			}
			freshSink = append(freshSink, g)
		}
		freshSink = nil
		runtime.GC()
		b, err := New().Alloc(freshValues)
		require.NoError(t, err)
		v := f(b)
		require.Len(t, v, freshValues)
		assert.Less(t, residentShare(t, v), 0.05, "the buffer is resident before anything is written to it")
		for _, i := range []int{0, len(v) / 2, len(v) - 1} {
			assert.Zero(t, v[i])
		}
		runtime.KeepAlive(v)
		return
	}
	for _, garbage := range []int{0, 8 << 20, 40 << 20} {
		t.Run(fmt.Sprint(garbage>>20, " MiB freed"), func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestAllocFresh$", "-test.count=1")
			cmd.Env = append(os.Environ(), fmt.Sprint("RERANK_FRESH_GARBAGE=", garbage))
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "%s", out)
		})
	}
}
