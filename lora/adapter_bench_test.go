package lora

import (
	"testing"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/nn"
)

// BenchmarkAdapter times one adapter's forward and backward on a MiniLM-L6
// query projection (2048 tokens, 384→384, r=16), writing into a strided
// Q/K/V buffer as the model does, with and without LoRA dropout.
func BenchmarkAdapter(b *testing.B) {
	const rows, h, r = 2048, 384, 16
	for _, tc := range []struct {
		name    string
		dropout float32
	}{{"no_dropout", 0}, {"dropout", 0.1}} {
		b.Run(tc.name, func(b *testing.B) {
			be := cpu.New()
			ad, err := newStandalone(be, "q", h, h, r, 2, tc.dropout)
			if err != nil {
				b.Fatal(err)
			}
			x, y, dy, dx := make(cpu.F32, rows*h), make(cpu.F32, rows*3*h), make(cpu.F32, rows*3*h), make(cpu.F32, rows*h)
			for i := range x {
				x[i] = float32(i%7) * 0.1
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if err := ad.Forward(be, nn.AdapterForward{X: x, LDX: h, Y: y, LDY: 3 * h, Rows: rows, Train: true, Seed: uint64(i)}); err != nil {
					b.Fatal(err)
				}
				if err := ad.Backward(be, nn.AdapterBackward{X: x, LDX: h, DY: dy, LDDY: 3 * h, DX: dx, LDDX: h, Rows: rows, Train: true, Seed: uint64(i)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
