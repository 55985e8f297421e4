package mine_test

import (
	"context"
	"fmt"
	"log"

	"github.com/rerank-go/rerank/bm25/mine"
)

// Mine BM25 hard negatives for a query into a FlagEmbedding training
// example: the passages BM25 ranks high that are not the positive.
func Example() {
	ctx := context.Background()
	pool, err := mine.NewPool(ctx,
		[]string{"p1", "p2", "p3", "p4"},
		[]string{
			"A wing generates lift as air flows over it.",
			"A bird's wing is covered in feathers.",
			"Wing nuts are tightened by hand.",
			"The river flows past the mill.",
		}, nil, nil)
	if err != nil {
		log.Fatal(err)
	}
	qs := []mine.Query{{Text: "how does a wing generate lift", Pos: []string{"A wing generates lift as air flows over it."}, PosIDs: []string{"p1"}}}
	exs, stats, err := mine.Mine(ctx, pool, qs, mine.Options{RangeStart: 0, RangeEnd: 10, NegativeNumber: 2, Seed: 1, Workers: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(exs[0].Query, "|", exs[0].Pos[0])
	fmt.Println(len(exs[0].Neg), "negatives for", stats.Queries, "query")
	// Output:
	// how does a wing generate lift | A wing generates lift as air flows over it.
	// 2 negatives for 1 query
}
