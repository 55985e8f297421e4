package tokenize

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/internal/sharedtest"
)

// BenchmarkEncodePairs encodes the fixture's real (query, passage) pairs,
// the same ones testdata/hf/bench.js gives Hugging Face tokenizers, and
// reports pairs/s (wall clock) and pairs per CPU-second, on one worker and
// on GOMAXPROCS workers.
func BenchmarkEncodePairs(b *testing.B) {
	models := sharedtest.Models(b)
	var pairs []Pair
	for _, p := range loadFixturePairs(b) {
		if strings.HasPrefix(p.Cat, "data/") {
			pairs = append(pairs, Pair{p.Query, p.Passage})
		}
	}
	for _, tc := range []struct{ name, dir string }{
		{"bert", "bert-uncased-wordpiece-tokenizer"},
		{"xlmr", "xlmr-layout-unigram-tokenizer"},
	} {
		tok, err := Load(filepath.Join(models, tc.dir))
		require.NoError(b, err)
		for _, cfg := range []struct {
			name string
			tr   Truncation
		}{
			{"none", Truncation{}},
			{"longest_first_512", Truncation{Strategy: LongestFirst, MaxLen: 512}},
			{"longest_first_128", Truncation{Strategy: LongestFirst, MaxLen: 128}},
			{"flag_32_128", Truncation{Strategy: FlagEmbedding, QueryMaxLen: 32, PassageMaxLen: 128}},
		} {
			for _, workers := range []int{1, 0} {
				name := fmt.Sprintf("%s/%s/workers=%d", tc.name, cfg.name, workers)
				b.Run(name, func(b *testing.B) {
					cpu0 := cpuSeconds()
					for i := 0; i < b.N; i++ {
						tok.dropScratch() // every pass starts with cold word caches
						_, errs := tok.EncodePairs(pairs, cfg.tr, workers)
						require.Nil(b, errs)
					}
					n := float64(b.N * len(pairs))
					b.ReportMetric(n/b.Elapsed().Seconds(), "pairs/s")
					if cpu := cpuSeconds() - cpu0; cpu > 0 {
						// Throughput per CPU-second does not depend on
						// what else the machine is running.
						b.ReportMetric(n/cpu, "pairs/cpu-s")
					}
				})
			}
		}
	}
}
