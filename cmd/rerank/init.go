package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/crossencoder"
)

func init() {
	register(&cli.Command{
		Name:      "init",
		Usage:     "create a randomly initialised cross-encoder model directory from a preset",
		UsageText: "rerank init --preset tiny|mini|base --arch bert|xlm-roberta --tokenizer PATH --output DIR [--seed N]",
		Description: "Presets: tiny (2 layers x 128, 2 heads, 512; for demos and tests), mini (ms-marco-MiniLM-L-6: 6 x 384, 12 heads, 1536)\n" +
			"and base (bge-base / bge-reranker-base: 12 x 768, 12 heads, 3072). The vocabulary size and padding id come from the tokenizer.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "preset", Value: "tiny", Usage: "model size: " + strings.Join(crossencoder.PresetNames(), ", ")},
			&cli.StringFlag{Name: "arch", Value: "bert", Usage: "bert or xlm-roberta"},
			&cli.StringFlag{Name: "tokenizer", Required: true, Usage: "tokenizer.json, or a directory holding it (its tokenizer files are copied)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "model directory to write"},
			&cli.Uint64Flag{Name: "seed", Value: 42, Usage: "random seed of the weights"},
		},
		Action: func(c *cli.Context) error {
			arch, err := crossencoder.ParseArch(c.String("arch"))
			if err != nil {
				return fmt.Errorf("--arch: %w", err)
			}
			cfg, err := crossencoder.Init(cpu.New(), crossencoder.InitOptions{
				Preset: c.String("preset"), Arch: arch, Tokenizer: c.String("tokenizer"), Output: c.String("output"), Seed: c.Uint64("seed"),
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "wrote %s: %s preset, %s, %d layers x %d, %d heads, intermediate %d, vocab %d\n",
				c.String("output"), c.String("preset"), cfg.Arch, cfg.Layers, cfg.Hidden, cfg.Heads, cfg.Intermediate, cfg.VocabSize)
			return nil
		},
	})
}
