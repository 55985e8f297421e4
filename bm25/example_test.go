package bm25_test

import (
	"context"
	"fmt"
	"log"

	"github.com/rerank-go/rerank/bm25"
)

// Index a corpus and retrieve the first-stage candidates a reranker then
// rescores.
func Example() {
	docs := []bm25.Doc{
		{ID: "d1", Text: "Aspirin lowers the risk of myocardial infarction."},
		{ID: "d2", Text: "A wing generates lift as air flows over it."},
		{ID: "d3", Text: "The river flows calmly past the old mill."},
	}
	ix, err := bm25.Build(context.Background(), docs, bm25.BuildOptions{Workers: 1})
	if err != nil {
		log.Fatal(err)
	}
	for _, h := range ix.Search("how do wings generate lift", 2) {
		fmt.Println(h.ID, h.Score > 0)
	}
	// Output:
	// d2 true
}
