package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/crossencoder"
)

// longFlags are the long-passage policy flags of score, serve and eval.
func longFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "long", Value: "truncate", Usage: "passages that do not fit beside the query: truncate (longest_first to --max-len) or chunk (windows of --max-tokens-per-doc, score = max over windows)"},
		&cli.IntFlag{Name: "max-tokens-per-doc", Usage: "chunk: passage tokens per window (0: as many as fit beside the query)"},
		&cli.IntFlag{Name: "max-chunks-per-doc", Value: crossencoder.DefaultMaxChunksPerDoc, Usage: "chunk: most windows scored per passage"},
	}
}

// modelFlags are the flags of the commands that load one model to score
// with: score and serve.
func modelFlags() []cli.Flag {
	fs := []cli.Flag{
		&cli.StringFlag{Name: "model", Required: true, Usage: "reranker model: a Hugging Face model `DIR` or Hub id (org/name[@revision])"},
		&cli.IntFlag{Name: "max-len", Value: 512, Usage: "longest query+passage input in tokens"},
		&cli.IntFlag{Name: "query-max-len", Usage: "longest query in tokens: FlagEmbedding's truncation with passage max length max-len − query-max-len (0: longest_first)"},
		&cli.IntFlag{Name: "max-batch-tokens", Value: crossencoder.DefaultMaxBatchTokens, Usage: "most tokens of a forward pass, padding included: bounds activation memory"},
		&cli.IntFlag{Name: "batch-size", Usage: "most pairs of a forward pass (0: as many as --max-batch-tokens allows)"},
		&cli.BoolFlag{Name: "int8", Usage: "score with the encoder's linear layers quantized to int8 (CPU; ONNX Runtime's dynamic quantization; see bench/RESULTS.md for the quality)"},
		&cli.IntFlag{Name: "workers", Value: 1, Usage: "forward passes at once over the one copy of the weights (on the CPU one already uses every core)"},
	}
	fs = append(fs, longFlags()...)
	return append(fs, deviceFlags()...)
}

// longPolicy reads the long-passage flags.
func longPolicy(c *cli.Context) (crossencoder.LongPolicy, error) {
	mode, err := crossencoder.ParseLongMode(c.String("long"))
	if err != nil || mode == crossencoder.Reject {
		return crossencoder.LongPolicy{}, fmt.Errorf("--long %q: want truncate or chunk", c.String("long"))
	}
	p := crossencoder.LongPolicy{Mode: mode, MaxTokensPerDoc: c.Int("max-tokens-per-doc"), MaxChunksPerDoc: c.Int("max-chunks-per-doc")}
	if p.MaxTokensPerDoc < 0 || p.MaxChunksPerDoc < 0 {
		return p, fmt.Errorf("--max-tokens-per-doc %d and --max-chunks-per-doc %d must not be negative", p.MaxTokensPerDoc, p.MaxChunksPerDoc)
	}
	if mode == crossencoder.Truncate && c.IsSet("max-tokens-per-doc") {
		return p, fmt.Errorf("--max-tokens-per-doc applies to --long chunk")
	}
	return p, nil
}

// truncationOptions sets the truncation of o from --max-len and
// --query-max-len, as `rerank eval` always has.
func truncationOptions(o *crossencoder.Options, maxLen, queryMaxLen int) error {
	o.MaxLen = maxLen
	if queryMaxLen > 0 {
		if maxLen <= queryMaxLen {
			return fmt.Errorf("--query-max-len %d must be below --max-len %d", queryMaxLen, maxLen)
		}
		o.QueryMaxLen, o.PassageMaxLen, o.MaxLen = queryMaxLen, maxLen-queryMaxLen, 0
	}
	return nil
}

// modelOptions reads the model flags into crossencoder options (the one
// place that maps flags to options: a new model option gets its flag in
// modelFlags and is read here).
func modelOptions(c *cli.Context) (crossencoder.Options, error) {
	o := crossencoder.Options{
		MaxBatchTokens: c.Int("max-batch-tokens"), BatchSize: c.Int("batch-size"), Workers: c.Int("workers"),
		Hub:  hubClient(c),
		Int8: c.Bool("int8"),
	}
	if err := truncationOptions(&o, c.Int("max-len"), c.Int("query-max-len")); err != nil {
		return o, err
	}
	var err error
	if o.Long, err = longPolicy(c); err != nil {
		return o, err
	}
	if o.MaxBatchTokens <= 0 || o.BatchSize < 0 || o.Workers <= 0 {
		return o, fmt.Errorf("--max-batch-tokens %d and --workers %d must be positive, --batch-size %d not negative", o.MaxBatchTokens, o.Workers, o.BatchSize)
	}
	return o, nil
}

// openModel loads --model with o on --device; release frees the device
// after the model is closed.
func openModel(c *cli.Context, o crossencoder.Options) (*crossencoder.Model, func(), error) {
	be, release, err := openDevice(c.String("device"), c.Bool("bf16"))
	if err != nil {
		return nil, nil, err
	}
	m, err := crossencoder.Load(be, c.String("model"), o)
	if err != nil {
		release()
		return nil, nil, err
	}
	if o.MaxLen > m.MaxLen() {
		// As rerank eval says it: the cap is no error (sentence-transformers
		// lowers it too), but the user asked for more.
		fmt.Fprintf(c.App.ErrWriter, "rerank %s: %s takes at most %d tokens (its position table): --max-len %d is capped to %d\n",
			c.Command.Name, c.String("model"), m.MaxLen(), o.MaxLen, m.MaxLen())
	}
	return m, func() { m.Close(); release() }, nil
}
