package nn_test

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/loss"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

// Shapes of the real checkpoints (../shared/models/README.md).
var benchShapes = []struct {
	name string
	cfg  nn.Config
}{
	{"MiniLM-L6", nn.Config{Arch: nn.BERT, VocabSize: 30522, Hidden: 384, Layers: 6, Heads: 12, Intermediate: 1536,
		MaxPositions: 512, TypeVocab: 2, LayerNormEps: 1e-12, HiddenDropout: 0.1, AttentionDropout: 0.1, ClassifierDropout: 0.1, NumLabels: 1}},
}

// trainFLOPs counts the multiply-adds of one forward+backward step (×2 for
// FLOPs, ×3 for forward plus backward), matrix products only.
func trainFLOPs(c nn.Config, n, s int) float64 {
	T, H, I := float64(n*s), float64(c.Hidden), float64(c.Intermediate)
	perLayer := T*H*3*H + T*H*H + 2*T*H*I + 2*T*float64(s)*H
	return 3 * 2 * (float64(c.Layers)*perLayer + float64(n)*H*H)
}

// BenchmarkTrainStep measures one training forward+backward (dropout on) of
// 16 sequences × 128 tokens.
func BenchmarkTrainStep(b *testing.B) {
	for _, sh := range benchShapes {
		b.Run(sh.name+"/16x128", func(b *testing.B) {
			m, err := nn.New(cpu.New(), sh.cfg)
			require.NoError(b, err)
			m.InitRandom(1, 0.02)
			require.NoError(b, m.EnableGrads(nil))
			r := rand.New(rand.NewPCG(1, 2))
			batch := &nn.Batch{N: 16, S: 128}
			for i := 0; i < 16*128; i++ {
				batch.InputIDs = append(batch.InputIDs, int32(1+r.IntN(30000)))
				batch.TypeIDs = append(batch.TypeIDs, int32(i%128/64))
				batch.Mask = append(batch.Mask, 1)
			}
			var dl []float32
			step := func(seed uint64) {
				logits, err := m.Forward(batch, nn.RunOptions{Train: true, Seed: seed})
				require.NoError(b, err)
				_, dl, err = loss.AppendGroupSoftmaxCE(dl[:0], logits, 16)
				require.NoError(b, err)
				m.ZeroGrads()
				require.NoError(b, m.Backward(dl))
			}
			step(0) // allocate the activation arena
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				step(uint64(i + 1))
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(16/sec, "pairs/s")
			b.ReportMetric(trainFLOPs(sh.cfg, 16, 128)/sec/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkInferStep measures one inference pass (package nn/infer) of 16
// sequences × 128 tokens, fully real and with the real lengths of npl
// pairs packed.
func BenchmarkInferStep(b *testing.B) {
	// Token counts of 16 npl training pairs at max length 128.
	npl := []int{74, 75, 90, 98, 89, 46, 128, 128, 87, 54, 93, 34, 20, 72, 65, 110}
	for _, sh := range benchShapes {
		for _, tc := range []struct {
			name string
			lens []int
		}{{"full", nil}, {"npl-lengths", npl}} {
			b.Run(sh.name+"/16x128/"+tc.name, func(b *testing.B) {
				c := sh.cfg
				m, err := nn.New(cpu.New(), c)
				require.NoError(b, err)
				m.InitRandom(1, 0.02)
				r := rand.New(rand.NewPCG(1, 2))
				batch := &nn.Batch{N: 16, S: 128}
				for i := 0; i < 16*128; i++ {
					real := tc.lens == nil || i%128 < tc.lens[i/128]
					id, mask := int32(0), int32(0)
					if real {
						id, mask = int32(1+r.IntN(30000)), 1
					}
					batch.InputIDs = append(batch.InputIDs, id)
					batch.TypeIDs = append(batch.TypeIDs, 0)
					batch.Mask = append(batch.Mask, mask)
				}
				run, err := infer.New(m)
				require.NoError(b, err)
				_, err = run.Forward(batch)
				require.NoError(b, err)
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					_, err := run.Forward(batch)
					require.NoError(b, err)
				}
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(16/sec, "pairs/s")
				b.ReportMetric(trainFLOPs(c, 16, 128)/3/sec/1e9, "GFLOP/s")
			})
		}
	}
}
