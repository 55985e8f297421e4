//go:build !cgo || !amd64

package bench

const fmaFLOPsPerIter = 1

func fmaAvailable() bool { return false }

func fmaLoop(int) float32 { return 0 }
