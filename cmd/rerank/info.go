package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
)

func init() {
	register(&cli.Command{
		Name:      "info",
		Usage:     "describe a Hugging Face model directory: architecture, shapes, parameters, tokenizer",
		ArgsUsage: "MODEL_DIR|HUB_ID",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("usage: rerank info MODEL_DIR|HUB_ID")
			}
			dir := c.Args().First()
			m, info, err := hfmodel.Load(cpu.New(), dir, hfmodel.LoadOptions{Hub: hubClient(c)})
			if err != nil {
				return err
			}
			cfg := m.Cfg
			total := 0
			for _, p := range m.Params() {
				total += p.Size()
			}
			w := c.App.Writer
			fmt.Fprintf(w, "model:          %s\n", dir)
			fmt.Fprintf(w, "architecture:   %s (model_type %s)\n", strings.Join(info.Config.Architectures, ", "), info.Config.ModelType)
			fmt.Fprintf(w, "layers:         %d × hidden %d, %d heads of %d, intermediate %d\n", cfg.Layers, cfg.Hidden, cfg.Heads, cfg.HeadDim(), cfg.Intermediate)
			fmt.Fprintf(w, "vocabulary:     %d tokens, pad id %d, %d token types\n", cfg.VocabSize, cfg.PadID, cfg.TypeVocab)
			fmt.Fprintf(w, "positions:      %d (longest input %d tokens)\n", cfg.MaxPositions, cfg.MaxSequence())
			fmt.Fprintf(w, "labels:         %d\n", cfg.NumLabels)
			fmt.Fprintf(w, "parameters:     %d (%.1f MiB as float32)\n", total, float64(total)*4/(1<<20))
			if len(info.Initialized) > 0 {
				fmt.Fprintf(w, "fresh head:     %s (not in the checkpoint; initialised at load)\n", strings.Join(info.Initialized, ", "))
			}
			if len(info.Unused) > 0 {
				fmt.Fprintf(w, "unused tensors: %d (e.g. %s)\n", len(info.Unused), info.Unused[0])
			}
			var tok []string
			for _, f := range hfmodel.TokenizerFiles {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
					tok = append(tok, f)
				}
			}
			if len(tok) == 0 {
				tok = []string{"none (copy tokenizer.json into the directory)"}
			}
			fmt.Fprintf(w, "tokenizer:      %s\n", strings.Join(tok, ", "))
			return nil
		},
	})
}
