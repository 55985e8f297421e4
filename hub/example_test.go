package hub_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/rerank-go/rerank/hub"
	"github.com/rerank-go/rerank/internal/fakehub"
)

// Resolve a Hub id to a local directory, downloading into the cache that
// Python's huggingface_hub shares, then resolve it again offline. A real
// program uses hub.FromEnv() (HF_HUB_CACHE, HF_ENDPOINT, HF_TOKEN,
// HF_HUB_OFFLINE); here a fake Hub on 127.0.0.1 and a temporary cache stand
// in for huggingface.co and ~/.cache/huggingface/hub.
func Example() {
	fake := fakehub.Start()
	defer fake.Close()
	fake.Add("BAAI/bge-reranker-base", "main", "0123456789abcdef0123456789abcdef01234567", map[string][]byte{
		"config.json":       []byte(`{"model_type": "xlm-roberta"}`),
		"model.safetensors": []byte("weights"),
		"tokenizer.json":    []byte(`{}`),
		"README.md":         []byte("not needed to load the model"),
	})
	cache, err := os.MkdirTemp("", "hub-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(cache)

	c := &hub.Client{Cache: cache, Endpoint: fake.URL}
	ctx := context.Background()
	res, err := c.Resolve(ctx, "BAAI/bge-reranker-base", hub.Model)
	if err != nil {
		log.Fatal(err)
	}
	rel, _ := filepath.Rel(cache, res.Dir)
	fmt.Println(rel)
	fmt.Println(res.Source, res.Revision, res.Commit[:7])
	names, _ := filepath.Glob(filepath.Join(res.Dir, "*"))
	for _, n := range names {
		fmt.Println(" ", filepath.Base(n))
	}

	// Offline, the same id is found in the cache without a request.
	fake.Close()
	off := *c
	off.Offline = true
	dir, err := off.Dir(ctx, "BAAI/bge-reranker-base", hub.Model)
	fmt.Println(dir == res.Dir, err)

	// A local directory is used as it is.
	dir, err = off.Dir(ctx, cache, hub.Model)
	fmt.Println(dir == cache, err)
	// Output:
	// models--BAAI--bge-reranker-base/snapshots/0123456789abcdef0123456789abcdef01234567
	// BAAI/bge-reranker-base main 0123456
	//   config.json
	//   model.safetensors
	//   tokenizer.json
	// true <nil>
	// true <nil>
}
