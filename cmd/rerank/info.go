package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/hub"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/safetensors"
)

func init() {
	register(&cli.Command{
		Name:      "info",
		Usage:     "describe a Hugging Face model directory (architecture, shapes, parameters, tokenizer) or a PEFT LoRA adapter directory (base, rank, alpha, targets, trainable parameters)",
		ArgsUsage: "MODEL_DIR|ADAPTER_DIR|HUB_ID",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return fmt.Errorf("usage: rerank info MODEL_DIR|ADAPTER_DIR|HUB_ID")
			}
			ref := c.Args().First()
			dir := ref
			h := hubClient(c)
			if _, err := os.Stat(ref); err != nil && hub.IsRef(ref) {
				// A Hub id: a model repository, else an adapter's. The
				// files are read from the cached snapshot (tokenizer
				// files included), and shown under the id.
				d, merr := h.Dir(c.Context, ref, hub.Model)
				if merr != nil {
					ad, aerr := h.Dir(c.Context, ref, hub.Adapter)
					if aerr != nil {
						return merr
					}
					return adapterInfo(c.App.Writer, ad, ref)
				}
				dir = d
			}
			if _, err := os.Stat(filepath.Join(dir, lora.ConfigFile)); err == nil {
				return adapterInfo(c.App.Writer, dir, ref)
			}
			m, info, err := hfmodel.Load(cpu.New(), dir, hfmodel.LoadOptions{Hub: h})
			if err != nil {
				return err
			}
			cfg := m.Cfg
			total := 0
			for _, p := range m.Params() {
				total += p.Size()
			}
			w := c.App.Writer
			fmt.Fprintf(w, "model:          %s\n", ref)
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
				tok = []string{"none (copy tokenizer.json into the directory: scoring and training need it)"}
			}
			fmt.Fprintf(w, "tokenizer:      %s\n", strings.Join(tok, ", "))
			return nil
		},
	})
}

// adapterInfo describes a PEFT LoRA adapter directory without loading its
// base: the trainable parameters are the tensors of adapter_model.safetensors
// (the LoRA matrices and the head PEFT saves beside them).
func adapterInfo(w io.Writer, dir, name string) error {
	cfg, base, err := lora.ReadConfig(dir)
	if err != nil {
		return err
	}
	if base == "" {
		base = "not recorded (base_model_name_or_path is null: pass --model when using it)"
	}
	targets := strings.Join(cfg.TargetModules, ", ")
	if cfg.TargetRegex != "" {
		targets = "modules matching " + cfg.TargetRegex
	}
	scaling := "alpha/r"
	if cfg.UseRSLoRA {
		scaling = "alpha/sqrt(r), rsLoRA"
	}
	fmt.Fprintf(w, "adapter:        %s (PEFT LoRA)\n", name)
	fmt.Fprintf(w, "base model:     %s\n", base)
	fmt.Fprintf(w, "rank:           %d\n", cfg.R)
	fmt.Fprintf(w, "alpha:          %g (scaling %g = %s)\n", cfg.Alpha, cfg.Scaling(), scaling)
	fmt.Fprintf(w, "dropout:        %g\n", cfg.Dropout)
	fmt.Fprintf(w, "targets:        %s\n", targets)
	path := filepath.Join(dir, lora.WeightsFile)
	f, err := safetensors.Open(path)
	if err != nil {
		if _, berr := os.Stat(filepath.Join(dir, lora.BinWeightsFile)); berr == nil {
			fmt.Fprintf(w, "trainable:      not counted (weights in %s, a torch pickle)\n", lora.BinWeightsFile)
			return nil
		}
		return fmt.Errorf("info: %w", err)
	}
	defer f.Close()
	var total, loraN, modules int
	for _, name := range f.Names() {
		ti, err := f.Info(name)
		if err != nil {
			return fmt.Errorf("info: %s: %w", path, err)
		}
		n := 1
		for _, d := range ti.Shape {
			n *= d
		}
		total += n
		if strings.Contains(name, ".lora_") {
			loraN += n
			if strings.Contains(name, ".lora_A.") {
				modules++
			}
		}
	}
	fmt.Fprintf(w, "trainable:      %d parameters (%d in %d LoRA modules, %d in the head and other saved modules)\n",
		total, loraN, modules, total-loraN)
	return nil
}
