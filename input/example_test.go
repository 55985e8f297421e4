package input_test

import (
	"fmt"
	"log"

	"github.com/rerank-go/rerank/input"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/tokenize"
)

// Pairs become a padded nn.Batch, after one check that the tokenizer and
// the truncation fit the model.
func Example() {
	tok, err := input.LoadTokenizer("../examples/bert-uncased-tokenizer")
	if err != nil {
		log.Fatal(err)
	}
	cfg := nn.Config{Arch: nn.BERT, VocabSize: 30522, MaxPositions: 512}
	enc, err := input.NewEncoder(cfg, tok, tokenize.Truncation{Strategy: tokenize.FlagEmbedding, QueryMaxLen: 32, PassageMaxLen: 480})
	if err != nil {
		log.Fatal(err)
	}
	var encs []tokenize.Encoding
	for _, p := range []string{"lift of a wing", "heat"} {
		e, err := enc.Encode("wing lift", p)
		if err != nil {
			log.Fatal(err)
		}
		encs = append(encs, e)
	}
	b := enc.Batch(encs)
	fmt.Println(b.N, "rows of", b.S, "tokens; mask", b.Mask[b.S:])
	_, err = input.NewEncoder(cfg, tok, tokenize.Truncation{Strategy: tokenize.FlagEmbedding, QueryMaxLen: 64, PassageMaxLen: 512})
	fmt.Println(err)
	// Output:
	// 2 rows of 9 tokens; mask [1 1 1 1 1 1 0 0 0]
	// query max length 64 + passage max length 512 = 576 exceeds the model's 512 positions: lower them
}
