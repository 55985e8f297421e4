//go:build !unix

package tokenize

func cpuSeconds() float64 { return 0 }
