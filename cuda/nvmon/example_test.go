//go:build cgo

package nvmon_test

import (
	"fmt"
	"log"
	"time"

	"github.com/rerank-go/rerank/cuda/nvmon"
)

// Watch GPU 0's memory while a job runs. Without an NVIDIA driver the
// monitor says why once and reports nothing; it never stops the job.
func Example() {
	m := nvmon.Open(0, log.Printf)
	defer m.Close()
	m.Start(100 * time.Millisecond)
	// ... the job runs ...
	m.Stop()
	if m.Available() {
		log.Println("peak:", m.PeakString())
	}
	fmt.Println(nvmon.FormatBytes(1536 << 20))
	// Output:
	// 1.5GiB
}
