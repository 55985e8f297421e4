//go:build !linux

package cpu

import "github.com/rerank-go/rerank/backend"

// Discard implements backend.Discarder; off Linux it returns nothing to
// the system (the values stay).
func (*Backend) Discard(backend.Buf) int64 { return 0 }
