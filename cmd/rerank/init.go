package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/nn"
)

func init() {
	register(&cli.Command{
		Name:      "init",
		Usage:     "create a randomly initialised cross-encoder model directory from a preset",
		UsageText: "rerank init --preset tiny|mini|base|large|m3 --arch bert|xlm-roberta --tokenizer PATH --output DIR [--seed N]",
		Description: "Presets: tiny (2 layers x 128, 2 heads, 512; for demos and tests), mini (ms-marco-MiniLM-L-6: 6 x 384, 12 heads, 1536),\n" +
			"base (bge-base / bge-reranker-base: 12 x 768, 12 heads, 3072), large (bge-reranker-large: XLM-R, 24 x 1024, 16 heads,\n" +
			"4096, 514 positions) and m3 (bge-reranker-v2-m3: the same with 8194 positions, 8192 tokens). The vocabulary size and\n" +
			"padding id come from the tokenizer. --arch defaults to bert, and to xlm-roberta for large and m3.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "preset", Value: "tiny", Usage: "model size: " + strings.Join(hfmodel.PresetNames(), ", ")},
			&cli.StringFlag{Name: "arch", Usage: "bert or xlm-roberta (default: the preset's, bert for tiny, mini and base)"},
			&cli.StringFlag{Name: "tokenizer", Required: true, Usage: "tokenizer.json, or a directory holding it (its tokenizer files are copied)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "model directory to write"},
			&cli.Uint64Flag{Name: "seed", Value: 42, Usage: "random seed of the weights"},
			&cli.BoolFlag{Name: "overwrite-output-dir", Usage: "write into a non-empty --output (replacing a model there)"},
		},
		Action: func(c *cli.Context) error {
			var arch nn.Arch
			if c.IsSet("arch") {
				a, err := hfmodel.ParseArch(c.String("arch"))
				if err != nil {
					return fmt.Errorf("--arch: %w", err)
				}
				arch = a
			}
			if !c.Bool("overwrite-output-dir") {
				if ents, err := os.ReadDir(c.String("output")); err == nil && len(ents) > 0 {
					return fmt.Errorf("--output %s is not empty (it holds %s): choose another directory, or pass --overwrite-output-dir to replace what is there",
						c.String("output"), ents[0].Name())
				}
			}
			cfg, err := hfmodel.Init(cpu.New(), hfmodel.InitOptions{
				Preset: c.String("preset"), Arch: arch, DefaultArch: !c.IsSet("arch"), Tokenizer: c.String("tokenizer"),
				Output: c.String("output"), Seed: c.Uint64("seed"), Hub: hubClient(c),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "wrote %s: %s preset, %s, %d layers x %d, %d heads, intermediate %d, vocab %d, %d tokens\n",
				c.String("output"), c.String("preset"), cfg.Arch, cfg.Layers, cfg.Hidden, cfg.Heads, cfg.Intermediate, cfg.VocabSize, cfg.MaxSequence())
			return nil
		},
	})
}
