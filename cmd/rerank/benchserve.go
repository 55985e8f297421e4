package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/eval"
	"github.com/rerank-go/rerank/serve"
)

func init() { register(newBenchServeCommand()) }

func newBenchServeCommand() *cli.Command {
	flags := append(modelFlags(),
		&cli.StringFlag{Name: "beir", Value: filepath.Join("examples", "scifact-sample"), Usage: "BEIR `DIR` whose queries and passages make the requests"},
		&cli.StringFlag{Name: "candidates", Usage: "candidates `FILE` (default DIR/bm25/dev.top20.jsonl)"},
		&cli.IntFlag{Name: "docs", Value: 20, Usage: "documents per request (the top candidates of one query)"},
		&cli.IntFlag{Name: "pairs", Value: 1000, Usage: "pairs each measurement scores"},
		&cli.IntSliceFlag{Name: "clients", Value: cli.NewIntSlice(1, 8, 64), Usage: "concurrent clients of each serve measurement"},
		&cli.IntFlag{Name: "rounds", Value: 2, Usage: "rounds of (offline, then each client count), alternated"},
		&cli.IntFlag{Name: "concurrency", Value: 8, Usage: "offline: queries in flight at once, as rerank score"},
	)
	return &cli.Command{
		Name:  "bench-serve",
		Usage: "load-test rerank serve over loopback HTTP against offline rerank score on the same pairs",
		Description: `Starts the server in this process on 127.0.0.1, then for each round scores the
pairs offline (the library path of rerank score) and through POST /rerank with 1, 8
and 64 concurrent clients (each request: one query and its top --docs candidates).
Prints pairs/s, p50 and p99 request latency, and each serve figure as a share of the
offline one of its round.`,
		Flags:  flags,
		Action: runBenchServe,
	}
}

// benchRequest is one request's query and documents.
type benchRequest struct {
	query string
	docs  []string
	body  []byte
}

func runBenchServe(c *cli.Context) error {
	o, err := modelOptions(c)
	if err != nil {
		return err
	}
	// Requests: the top --docs candidates of each query, over and over.
	dir := c.String("beir")
	col := &eval.Collection{Dir: dir}
	if col.Corpus, err = eval.ReadCorpus(filepath.Join(dir, "corpus.jsonl")); err != nil {
		return err
	}
	if col.Queries, err = eval.ReadQueries(filepath.Join(dir, "queries.jsonl")); err != nil {
		return err
	}
	cpath := c.String("candidates")
	if cpath == "" {
		cpath = filepath.Join(dir, "bm25", "dev.top20.jsonl")
	}
	cands, _, err := eval.ReadCandidateFile(cpath, eval.FormatAuto, nil)
	if err != nil {
		return err
	}
	var pool []benchRequest
	for _, cd := range cands {
		q := cd.Query
		if q == "" {
			q = col.Queries[cd.QID]
		}
		r := benchRequest{query: q}
		for _, id := range cd.DocIDs[:min(len(cd.DocIDs), c.Int("docs"))] {
			r.docs = append(r.docs, col.Corpus[id].Passage())
		}
		r.body, _ = json.Marshal(map[string]any{"query": q, "texts": r.docs, "truncate": true, "raw_scores": true})
		pool = append(pool, r)
	}
	if len(pool) == 0 {
		return fmt.Errorf("%s: no candidates", cpath)
	}
	docs := len(pool[0].docs)
	clients := c.IntSlice("clients")
	// Each client sends at least one request; the offline measurement
	// scores the pairs of the largest one.
	nreqFor := func(nc int) int { return max(1, c.Int("pairs")/docs, nc) }
	nreq := nreqFor(slices.Max(clients))

	var srv *serve.Server
	observePasses(&o, &srv)
	m, release, err := openModel(c, o)
	if err != nil {
		return err
	}
	defer release()
	maxClients := slices.Max(clients)
	if srv, err = serve.New(serve.Options{Model: m, MaxConcurrentRequests: maxClients * docs, MaxClientBatchSize: docs,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(c.Context)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, time.Minute) }()
	defer func() { cancel(); <-done }()
	url := "http://" + ln.Addr().String() + "/rerank"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: maxClients + 1}}

	w := c.App.Writer
	fmt.Fprintf(w, "model %s, requests of %d documents, offline %d pairs, max-len %d, max-batch-tokens %d\n\n",
		c.String("model"), docs, nreq*docs, m.MaxLen(), o.MaxBatchTokens)
	fmt.Fprintln(w, "| round | mode | clients | pairs/s | p50 ms | p99 ms | vs offline |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|")
	// Warm up: the weights get packed, the lanes started.
	if _, err := m.Rerank(c.Context, pool[0].query, pool[0].docs); err != nil {
		return err
	}
	for round := 1; round <= c.Int("rounds"); round++ {
		units := make([]scoreUnit, nreq)
		for i := range units {
			r := pool[i%len(pool)]
			units[i] = scoreUnit{query: r.query, passages: r.docs}
		}
		t0 := time.Now()
		if _, err := scoreAll(c.Context, m, units, c.Int("concurrency"), nil); err != nil {
			return err
		}
		offline := float64(nreq*docs) / time.Since(t0).Seconds()
		fmt.Fprintf(w, "| %d | offline score | - | %.1f | - | - | 100%% |\n", round, offline)
		for _, nc := range clients {
			rate, p50, p99, err := loadServe(c.Context, client, url, pool, nreqFor(nc), nc, docs)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "| %d | serve | %d | %.1f | %.0f | %.0f | %.0f%% |\n", round, nc, rate, ms(p50), ms(p99), 100*rate/offline)
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadServe sends nreq requests from nc clients and returns pairs/s and
// the median and 99th-percentile request latency.
func loadServe(ctx context.Context, client *http.Client, url string, pool []benchRequest, nreq, nc, docs int) (float64, time.Duration, time.Duration, error) {
	var next atomic.Int64
	lat := make([]time.Duration, nreq)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	t0 := time.Now()
	for range nc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= nreq || ctx.Err() != nil {
					return
				}
				r := pool[i%len(pool)]
				s := time.Now()
				resp, err := client.Post(url, "application/json", strings.NewReader(string(r.body)))
				if err == nil {
					var ranks []json.RawMessage
					err = json.NewDecoder(resp.Body).Decode(&ranks)
					resp.Body.Close()
					if err == nil && (resp.StatusCode != 200 || len(ranks) != len(r.docs)) {
						err = fmt.Errorf("status %d, %d ranks", resp.StatusCode, len(ranks))
					}
				}
				lat[i] = time.Since(s)
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	if first != nil {
		return 0, 0, 0, first
	}
	slices.Sort(lat)
	return float64(nreq*docs) / el.Seconds(), lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], nil
}
