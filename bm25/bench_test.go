package bm25

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/rerank-go/rerank/internal/sharedtest"
)

// Indexing (documents/s) and search (queries/s, top-100) throughput on
// the shared scifact and npl collections:
//
//	go test -run '^$' -bench . -benchtime 5x ./bm25/
func BenchmarkBM25(b *testing.B) {
	for _, name := range []string{"scifact", "npl"} {
		dir := filepath.Join(sharedtest.Data(b), name)
		data, err := OpenBEIR(dir)
		if err != nil {
			b.Fatal(err)
		}
		docs := data.Corpus.Docs()
		texts := make([]string, len(data.Queries))
		for i, q := range data.Queries {
			texts[i] = q.Text
		}
		b.Run(name+"/index", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := Build(context.Background(), docs, BuildOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(docs)*b.N)/b.Elapsed().Seconds(), "docs/s")
		})
		ix, err := Build(context.Background(), docs, BuildOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/search1", func(b *testing.B) {
			s := ix.NewSearcher()
			for i := 0; i < b.N; i++ {
				for _, q := range texts {
					s.Search(q, 100)
				}
			}
			b.ReportMetric(float64(len(texts)*b.N)/b.Elapsed().Seconds(), "queries/s")
		})
		b.Run(name+"/searchAll", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, err := ix.SearchAll(context.Background(), texts, 100, 0, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(texts)*b.N)/b.Elapsed().Seconds(), "queries/s")
		})
	}
}
