//go:build !linux

package nntest

import (
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
)

// ResidentSupported reports whether ResidentBytes can tell (Linux).
const ResidentSupported = false

// ResidentBytes returns -1: only Linux tells which pages are resident.
func ResidentBytes([]*nn.Param) int64 { return -1 }

// DiscardAll does nothing off Linux.
func DiscardAll(*cpu.Backend, []*nn.Param) {}
