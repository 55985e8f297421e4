package tokenize_test

import (
	"fmt"
	"log"
	"path/filepath"

	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/tokenize"
)

// Encode (query, passage) pairs exactly as Hugging Face tokenizers do, then
// pad them into the batch the model reads.
func Example() {
	tok, err := tokenize.Load(filepath.Join("..", "examples", "bert-uncased-tokenizer"))
	if err != nil {
		log.Fatal(err)
	}
	tr := tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: 16}
	enc, err := tok.EncodePair("What is a wing?", "A wing generates lift.", tr)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(enc.IDs)
	fmt.Println(enc.TypeIDs)

	short, err := tok.EncodePair("wing", "lift", tr)
	if err != nil {
		log.Fatal(err)
	}
	b, err := tok.Pad([]tokenize.Encoding{enc, short}, 1)
	if err != nil {
		log.Fatal(err)
	}
	batch := nn.Batch{N: b.N, S: b.S, InputIDs: b.IDs, TypeIDs: b.TypeIDs, Mask: b.Mask}
	fmt.Println(batch.N, batch.S, batch.RowLen(1)) // rows, padded length, real tokens of row 1
	// Output:
	// [101 2054 2003 1037 3358 1029 102 1037 3358 19421 6336 1012 102]
	// [0 0 0 0 0 0 0 1 1 1 1 1 1]
	// 2 13 5
}
