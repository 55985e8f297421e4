package bench

import (
	"fmt"
	"math/rand/v2"

	"github.com/rerank-go/rerank/flagdata"
	"github.com/rerank-go/rerank/tokenize"
)

// RealLengths tokenizes groups drawn from a FlagEmbedding training file
// (query, its first positive, group-1 negatives) with the tokenizer at
// tokenizerPath, truncated longest-first to seq tokens, and returns the
// token count of each of the batch rows, group by group.
func RealLengths(dataFile, tokenizerPath string, seq, batch, group int, seed uint64) ([]int, error) {
	ex, err := flagdata.Load(dataFile, flagdata.Options{})
	if err != nil {
		return nil, err
	}
	tok, err := tokenize.Load(tokenizerPath)
	if err != nil {
		return nil, err
	}
	r := rand.New(rand.NewPCG(seed, 11))
	var pairs []tokenize.Pair
	for len(pairs) < batch {
		e := ex[r.IntN(len(ex))]
		if len(e.Pos) == 0 || len(e.Neg) < group-1 {
			continue
		}
		pairs = append(pairs, tokenize.Pair{Query: e.Query, Passage: e.Pos[0]})
		for _, j := range r.Perm(len(e.Neg))[:group-1] {
			pairs = append(pairs, tokenize.Pair{Query: e.Query, Passage: e.Neg[j]})
		}
	}
	encs, errs := tok.EncodePairs(pairs[:batch], tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: seq}, 0)
	lens := make([]int, batch)
	for i, e := range encs {
		if errs != nil && errs[i] != nil {
			return nil, fmt.Errorf("%s: tokenize pair %d: %w", dataFile, i, errs[i])
		}
		lens[i] = len(e.IDs)
	}
	return lens, nil
}
