package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/hub"
	"github.com/rerank-go/rerank/internal/atomicfile"
	"github.com/rerank-go/rerank/internal/jsonl"
	"github.com/rerank-go/rerank/tokenize"
)

func init() {
	register(&cli.Command{
		Name:      "tokenize",
		Usage:     "encode (query, passage) pairs as Hugging Face tokenizers does, for debugging data and checking against other tools",
		UsageText: "rerank tokenize --tokenizer PATH --input PAIRS.jsonl [--output IDS.jsonl] [--truncation flag --query-max-len 32 --passage-max-len 128]",
		Description: "Each input line is a JSON object with \"query\" and \"passage\". Each output line, in the same order,\n" +
			"holds \"input_ids\", \"token_type_ids\" and \"attention_mask\" (unpadded), or \"error\" for a pair\n" +
			"that cannot be cut to the limit under the chosen truncation (Hugging Face raises there).\n" +
			"--truncation flag is FlagEmbedding's rule: the query is cut to query-max-len + passage-max-len/4\n" +
			"tokens, the passage to passage-max-len + query-max-len/2, then the pair only_second to\n" +
			"query-max-len + passage-max-len. The other strategies cut the pair to --max-len.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "tokenizer", Usage: "tokenizer.json, or a model directory that holds one", Required: true},
			&cli.StringFlag{Name: "input", Usage: "JSONL of {\"query\", \"passage\"} (- for stdin)", Required: true},
			&cli.StringFlag{Name: "output", Usage: "JSONL to write (- for stdout)", Value: "-"},
			&cli.StringFlag{Name: "truncation", Usage: "none, longest_first, only_first, only_second or flag", Value: "none"},
			&cli.IntFlag{Name: "max-len", Usage: "most tokens of a pair, special tokens included (longest_first, only_first, only_second)", Value: 512},
			&cli.IntFlag{Name: "query-max-len", Usage: "FlagEmbedding's query_max_len (flag)", Value: 32},
			&cli.IntFlag{Name: "passage-max-len", Usage: "FlagEmbedding's passage_max_len (flag)", Value: 128},
			&cli.BoolFlag{Name: "full-lengths", Usage: "longest_first as Hugging Face tokenizers before 0.23 (full lengths compared, no early stop)"},
			&cli.IntFlag{Name: "workers", Usage: "encoding goroutines (0: all cores)"},
		},
		Action: runTokenize,
	})
}

func runTokenize(c *cli.Context) error {
	strategy, err := tokenize.ParseStrategy(c.String("truncation"))
	if err != nil {
		return fmt.Errorf("tokenize: --truncation: %w", err)
	}
	tr := tokenize.Truncation{Strategy: strategy, MaxLen: c.Int("max-len"),
		QueryMaxLen: c.Int("query-max-len"), PassageMaxLen: c.Int("passage-max-len"), FullLengths: c.Bool("full-lengths")}
	tp := c.String("tokenizer")
	if _, err := os.Stat(tp); err != nil && hub.IsRef(tp) {
		if tp, err = localDir(c, tp, hub.Tokenizer); err != nil {
			return fmt.Errorf("tokenize: %w", err)
		}
	}
	tok, err := tokenize.Load(tp)
	if err != nil {
		return err
	}
	// Check the options once, before reading any input.
	if _, err := tok.EncodePair("", "", tr); err != nil {
		return err
	}

	inName := c.String("input")
	var in io.Reader = os.Stdin
	if inName != "-" {
		f, err := os.Open(inName)
		if err != nil {
			return fmt.Errorf("tokenize: --input: %w", err)
		}
		defer f.Close()
		in = f
	}
	outName := c.String("output")
	if outName == "-" {
		return tokenizeJSONL(tok, tr, c.Int("workers"), in, inName, c.App.Writer)
	}
	return tokenizeWriteAtomic(outName, func(w io.Writer) error {
		return tokenizeJSONL(tok, tr, c.Int("workers"), in, inName, w)
	})
}

type tokenizePairLine struct {
	Query   *string `json:"query"`
	Passage *string `json:"passage"`
}

type tokenizeIDsLine struct {
	InputIDs      []int32 `json:"input_ids"`
	TokenTypeIDs  []int32 `json:"token_type_ids"`
	AttentionMask []int32 `json:"attention_mask"`
}

type tokenizeErrorLine struct {
	Error string `json:"error"`
}

// tokenizeJSONL reads pairs from r (named name in errors) and writes one
// output line per input line, encoding a chunk of lines at a time on
// workers goroutines.
func tokenizeJSONL(tok *tokenize.Tokenizer, tr tokenize.Truncation, workers int, r io.Reader, name string, w io.Writer) error {
	if name == "-" {
		name = "stdin"
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false)
	const chunk = 4096
	pairs := make([]tokenize.Pair, 0, chunk)
	flush := func() error {
		encs, errs := tok.EncodePairs(pairs, tr, workers)
		for i, e := range encs {
			var line any = tokenizeIDsLine{InputIDs: tokenizeNonNil(e.IDs), TokenTypeIDs: tokenizeNonNil(e.TypeIDs), AttentionMask: tokenizeNonNil(e.Mask)}
			if errs != nil && errs[i] != nil {
				line = tokenizeErrorLine{Error: errs[i].Error()}
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
		}
		pairs = pairs[:0]
		return nil
	}
	n := 0
	for sc.Scan() {
		n++
		var p tokenizePairLine
		b := sc.Bytes()
		if n == 1 {
			b = jsonl.TrimBOM(b)
		}
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			return fmt.Errorf("tokenize: %s:%d: empty line (each line must be a JSON object with query and passage)", name, n)
		}
		if err := jsonl.CheckLine(name, n, b); err != nil {
			return fmt.Errorf("tokenize: %w", err)
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return fmt.Errorf("tokenize: %s:%d: %v", name, n, err)
		}
		if p.Query == nil || p.Passage == nil {
			return fmt.Errorf("tokenize: %s:%d: needs string fields \"query\" and \"passage\"", name, n)
		}
		pairs = append(pairs, tokenize.Pair{Query: *p.Query, Passage: *p.Passage})
		if len(pairs) == chunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("tokenize: %s:%d: %w", name, n+1, err)
	}
	if len(pairs) > 0 {
		if err := flush(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// tokenizeWriteAtomic writes path through a temporary file in the same directory,
// renamed into place only when write succeeds.
func tokenizeWriteAtomic(path string, write func(io.Writer) error) error {
	if err := atomicfile.Write(path, write); err != nil {
		return fmt.Errorf("tokenize: --output: %w", err)
	}
	return nil
}

func tokenizeNonNil(x []int32) []int32 {
	if x == nil {
		return []int32{}
	}
	return x
}
