//go:build !linux

package cpu

// allocFresh is make off Linux, where allocFresh cannot read which pages
// are resident (see fresh_linux.go).
func allocFresh(n int) []float32 { return make([]float32, n) }
