package bm25

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rerank-go/rerank/internal/sharedtest"
)

// cpuTime is the process's user+system CPU time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// report adds items per wall-clock second and per CPU-second; the latter
// changes little when other processes share the machine.
func report(b *testing.B, items int, unit string, cpu0 time.Duration) {
	b.ReportMetric(float64(items*b.N)/b.Elapsed().Seconds(), unit+"/s")
	if cpu := (cpuTime() - cpu0).Seconds(); cpu > 0 {
		b.ReportMetric(float64(items*b.N)/cpu, unit+"/cpu-s")
	}
}

// Indexing (documents/s) and search (queries/s, top-100) throughput on
// the shared scifact and npl collections, per wall-clock second and per
// CPU-second:
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
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := Build(context.Background(), docs, BuildOptions{}); err != nil {
					b.Fatal(err)
				}
			}
			report(b, len(docs), "docs", cpu0)
		})
		ix, err := Build(context.Background(), docs, BuildOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name+"/search1", func(b *testing.B) {
			s := ix.NewSearcher()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				for _, q := range texts {
					s.Search(q, 100)
				}
			}
			report(b, len(texts), "queries", cpu0)
		})
		b.Run(name+"/searchAll", func(b *testing.B) {
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				if _, err := ix.SearchAll(context.Background(), texts, 100, 0, nil); err != nil {
					b.Fatal(err)
				}
			}
			report(b, len(texts), "queries", cpu0)
		})
	}
}
