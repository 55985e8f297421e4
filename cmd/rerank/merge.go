package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/hub"
	"github.com/rerank-go/rerank/lora"
)

func init() {
	register(&cli.Command{
		Name:      "merge",
		Usage:     "merge a LoRA adapter into its base model and write a plain Hugging Face model directory",
		UsageText: "rerank merge [--model BASE] --adapter DIR --output OUT",
		Description: "Every wrapped weight becomes W + scaling·B·A and the head is the adapter's, so the output loads\n" +
			"in transformers, FlagEmbedding and rerank without PEFT. --model defaults to the adapter's\n" +
			"base_model_name_or_path: a local directory (absolute, or relative to the adapter) or a Hugging Face Hub id.\n" +
			"--model and --adapter take Hub ids (org/name[@revision]) too.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model", Usage: "base model directory (config.json + model.safetensors) or Hugging Face Hub id"},
			&cli.StringFlag{Name: "adapter", Usage: "PEFT adapter directory (adapter_config.json + adapter_model.safetensors) or Hub id", Required: true},
			&cli.StringFlag{Name: "output", Usage: "directory to write the merged model to", Required: true},
		},
		Action: runMerge,
	})
}

func runMerge(c *cli.Context) error {
	hc := hubClient(c)
	adapterRef, out := c.String("adapter"), c.String("output")
	adapterDir, err := hc.Dir(context.Background(), adapterRef, hub.Adapter)
	if err != nil {
		return fmt.Errorf("merge: --adapter: %w", err)
	}
	base := c.String("model")
	if base == "" {
		_, recorded, err := lora.ReadConfig(adapterDir)
		if err != nil {
			return err
		}
		base, err = resolveBase(adapterDir, recorded)
		if err != nil {
			return err
		}
	}
	for _, in := range []string{base, adapterDir} {
		if same, _ := samePath(in, out); same {
			return fmt.Errorf("merge: --output %s is an input directory; choose a new one", out)
		}
	}
	be := cpu.New()
	m, info, err := hfmodel.Load(be, base, hfmodel.LoadOptions{Hub: hc})
	if err != nil {
		return fmt.Errorf("merge: base model: %w", err)
	}
	if len(info.Initialized) > 0 {
		fmt.Fprintf(c.App.ErrWriter, "merge: %s has no trained head (%s): the adapter's head is used\n", base, info.Initialized[0])
	}
	ad, err := lora.Load(m, adapterDir)
	if err != nil {
		if given := c.String("model"); given != "" {
			// The usual cause: --model is not the model the adapter
			// was trained on (another architecture or size).
			if _, recorded, rerr := lora.ReadConfig(adapterDir); rerr == nil && recorded != "" && recorded != given {
				if same, _ := samePath(recorded, given); !same {
					return fmt.Errorf("merge: %w\n(the adapter was trained on %s, and --model is %s: leave --model out to merge onto the recorded base, or give the model it was trained on)", err, recorded, given)
				}
			}
		}
		return fmt.Errorf("merge: %w", err)
	}
	if err := ad.Merge(); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if err := hfmodel.Save(m, info.Config, out, info.Dir); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	// Tokenizer files saved next to the adapter take precedence.
	if err := hfmodel.CopyTokenizer(adapterDir, out); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	if err := hfmodel.WriteTokenizerConfig(out, m.Cfg.MaxSequence()); err != nil {
		return fmt.Errorf("merge: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "merged %d LoRA modules (r=%d, scaling %g) of %s into %s\n",
		len(ad.List()), ad.Config.R, ad.Config.Scaling(), adapterRef, out)
	return nil
}

// resolveBase turns an adapter's base_model_name_or_path into a model
// reference: a local directory as given or relative to the adapter
// directory, else a Hugging Face Hub id (which loading resolves).
func resolveBase(adapterDir, recorded string) (string, error) {
	if recorded == "" {
		return "", fmt.Errorf("merge: %s records no base model (base_model_name_or_path is null): pass --model",
			filepath.Join(adapterDir, lora.ConfigFile))
	}
	for _, cand := range []string{recorded, filepath.Join(adapterDir, recorded)} {
		if st, err := os.Stat(filepath.Join(cand, "config.json")); err == nil && !st.IsDir() {
			return cand, nil
		}
	}
	if hub.IsRef(recorded) {
		return recorded, nil
	}
	return "", fmt.Errorf("merge: the adapter's base model %q is neither a local model directory nor a Hugging Face Hub id: pass --model", recorded)
}

// samePath reports whether a and b name the same existing directory.
func samePath(a, b string) (bool, error) {
	sa, err := os.Stat(a)
	if err != nil {
		return false, err
	}
	sb, err := os.Stat(b)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return os.SameFile(sa, sb), nil
}
