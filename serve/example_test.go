package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/serve"
)

// Serve a model over HTTP in text-embeddings-inference's shape from inside
// a Go program, then call POST /rerank as a RAG stack would. The same
// handler answers Cohere's and Jina's /v1/rerank and /v2/rerank.
func Example() {
	// A tiny randomly initialised model stands in for a real one such as
	// a bge-reranker-base directory (or a Hub id resolved with package hub).
	tmp, err := os.MkdirTemp("", "serve-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	dir := filepath.Join(tmp, "tiny")
	if _, err := hfmodel.Init(cpu.New(), hfmodel.InitOptions{Preset: "tiny", Arch: nn.BERT,
		Tokenizer: filepath.Join("..", "examples", "bert-uncased-tokenizer"), Output: dir, Seed: 7}); err != nil {
		log.Fatal(err)
	}

	var srv *serve.Server
	m, err := crossencoder.Load(cpu.New(), dir, crossencoder.Options{MaxLen: 128,
		OnPass: func(p crossencoder.PassInfo) { srv.ObservePass(p) }}) // forward-pass metrics on GET /metrics
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	srv, err = serve.New(serve.Options{Model: m, ModelID: "tiny",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		log.Fatal(err)
	}

	// Serve on a loopback port until ctx is cancelled. (An application
	// that has its own http.Server mounts srv.Handler() instead.)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln, 5*time.Second) }()
	defer func() { stop(); <-done }()

	// A client: TEI's request and answer.
	body := `{"query": "what lowers the risk of a heart attack",
		"texts": ["The river was calm all afternoon.", "Aspirin lowers the risk of myocardial infarction.", "a heart attack"]}`
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post("http://"+ln.Addr().String()+"/rerank", "application/json", strings.NewReader(body))
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	var ranked []struct {
		Index int     `json:"index"`
		Score float64 `json:"score"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&ranked); err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.Status)
	// Every text comes back once, best first. (Which one is best is the
	// random model's guess, so the example does not print it.)
	seen := map[int]bool{}
	sorted := true
	for i, r := range ranked {
		seen[r.Index] = true
		sorted = sorted && (i == 0 || ranked[i-1].Score >= r.Score)
	}
	fmt.Println(len(seen), "texts ranked, best first:", sorted)

	// The scores are the model's own (TEI applies the sigmoid unless the
	// request asks for raw_scores), bit for bit.
	scores, err := m.Rerank(ctx, "what lowers the risk of a heart attack", []string{
		"The river was calm all afternoon.", "Aspirin lowers the risk of myocardial infarction.", "a heart attack"})
	if err != nil {
		log.Fatal(err)
	}
	same := len(scores) == len(ranked)
	for _, r := range ranked {
		same = same && float32(r.Score) == float32(1/(1+math.Exp(-float64(scores[r.Index]))))
	}
	fmt.Println(same)
	// Output:
	// 200 OK
	// 3 texts ranked, best first: true
	// true
}
