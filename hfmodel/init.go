package hfmodel

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/hub"
	"github.com/rerank-go/rerank/input"
	"github.com/rerank-go/rerank/internal/atomicfile"
	"github.com/rerank-go/rerank/nn"
)

// Shape is the size of an encoder preset.
type Shape struct {
	Layers, Hidden, Heads, Intermediate int
	// Tokens is the longest input (0: 512), which sets
	// max_position_embeddings: Tokens for BERT, Tokens + pad + 1 for XLM-R.
	Tokens int
	// Arch is the architecture of the checkpoints of this shape, the
	// default when InitOptions.DefaultArch is set.
	Arch nn.Arch
}

// Presets are the shapes `rerank init` creates: tiny for demos and tests,
// mini = ms-marco-MiniLM-L-6, base = bge-base-en-v1.5 / bge-reranker-base,
// large = bge-reranker-large (XLM-R, 514 positions) and m3 =
// bge-reranker-v2-m3 (the same encoder with 8194 positions: 8192 tokens).
var Presets = map[string]Shape{
	"tiny":  {Layers: 2, Hidden: 128, Heads: 2, Intermediate: 512},
	"mini":  {Layers: 6, Hidden: 384, Heads: 12, Intermediate: 1536},
	"base":  {Layers: 12, Hidden: 768, Heads: 12, Intermediate: 3072},
	"large": {Layers: 24, Hidden: 1024, Heads: 16, Intermediate: 4096, Arch: nn.XLMRoberta},
	"m3":    {Layers: 24, Hidden: 1024, Heads: 16, Intermediate: 4096, Tokens: 8192, Arch: nn.XLMRoberta},
}

// PresetNames lists the presets, sorted.
func PresetNames() []string { return slices.Sorted(maps.Keys(Presets)) }

// ParseArch reads bert or xlm-roberta (also xlmr, xlm_roberta).
func ParseArch(s string) (nn.Arch, error) {
	switch strings.ToLower(strings.ReplaceAll(s, "_", "-")) {
	case "bert":
		return nn.BERT, nil
	case "xlm-roberta", "xlmr", "xlm-r", "roberta":
		return nn.XLMRoberta, nil
	}
	return 0, fmt.Errorf("architecture %q: want bert or xlm-roberta", s)
}

// InitOptions describe a fresh model.
type InitOptions struct {
	Preset string
	Arch   nn.Arch
	// DefaultArch takes the preset's own architecture (Shape.Arch)
	// instead of Arch.
	DefaultArch bool
	Tokenizer   string // tokenizer.json, a directory holding it, or a Hugging Face Hub id
	Output      string
	Seed        uint64
	Hub         *hub.Client // resolves a Hub id given as Tokenizer; nil: hub.FromEnv()
}

// PresetConfig returns the model config of a preset for a tokenizer with
// vocab ids and padding id pad: BERT has 512 positions and 2 token types,
// XLM-R 512 + pad + 1 positions and 1 token type, as the real checkpoints
// (m3: 8192 tokens instead of 512).
func PresetConfig(preset string, arch nn.Arch, vocab, pad int) (nn.Config, error) {
	sh, ok := Presets[preset]
	if !ok {
		return nn.Config{}, fmt.Errorf("preset %q: want one of %s", preset, strings.Join(PresetNames(), ", "))
	}
	tokens := sh.Tokens
	if tokens == 0 {
		tokens = 512
	}
	c := nn.Config{
		Arch: arch, VocabSize: vocab, Hidden: sh.Hidden, Layers: sh.Layers, Heads: sh.Heads,
		Intermediate: sh.Intermediate, MaxPositions: tokens, TypeVocab: 2, PadID: pad,
		LayerNormEps: 1e-12, HiddenDropout: 0.1, AttentionDropout: 0.1, ClassifierDropout: 0.1, NumLabels: 1,
	}
	if arch == nn.XLMRoberta {
		c.MaxPositions, c.TypeVocab, c.LayerNormEps = tokens+pad+1, 1, 1e-5
	}
	return c, c.Validate()
}

// Init writes a randomly initialised cross-encoder directory (config.json,
// model.safetensors and the tokenizer files) and returns its config.
func Init(be backend.Backend, o InitOptions) (nn.Config, error) {
	if _, err := os.Stat(o.Tokenizer); err != nil && hub.IsRef(o.Tokenizer) {
		dir, err := o.Hub.Dir(context.Background(), o.Tokenizer, hub.Tokenizer)
		if err != nil {
			return nn.Config{}, fmt.Errorf("init: --tokenizer: %w", err)
		}
		o.Tokenizer = dir
	}
	tok, err := input.LoadTokenizer(o.Tokenizer)
	if err != nil {
		return nn.Config{}, err
	}
	pad := int(tok.PadID())
	if pad < 0 {
		return nn.Config{}, fmt.Errorf("tokenizer %s has no padding token ([PAD] or <pad>)", tok.Name())
	}
	arch := o.Arch
	if sh, ok := Presets[o.Preset]; ok && o.DefaultArch {
		arch = sh.Arch
	}
	cfg, err := PresetConfig(o.Preset, arch, tok.VocabSize(), pad)
	if err != nil {
		return cfg, err
	}
	if err := input.CheckTokenizer(cfg, tok); err != nil {
		// e.g. --arch xlm-roberta (one token type) with a BERT tokenizer:
		// the model could score nothing.
		return cfg, fmt.Errorf("init: --arch %s: %w", arch, err)
	}
	m, err := nn.New(be, cfg)
	if err != nil {
		return cfg, err
	}
	m.InitRandom(o.Seed, 0.02)
	if err := os.MkdirAll(o.Output, 0o755); err != nil {
		return cfg, fmt.Errorf("init: %w", err)
	}
	tokDir := o.Tokenizer
	if st, err := os.Stat(tokDir); err == nil && !st.IsDir() {
		tokDir = filepath.Dir(tokDir)
		if filepath.Base(o.Tokenizer) != "tokenizer.json" {
			// A tokenizer file under another name: copy it as tokenizer.json.
			data, err := os.ReadFile(o.Tokenizer)
			if err != nil {
				return cfg, fmt.Errorf("init: %w", err)
			}
			if err := atomicfile.WriteFile(filepath.Join(o.Output, "tokenizer.json"), data); err != nil {
				return cfg, fmt.Errorf("init: %w", err)
			}
		}
	}
	if err := Save(m, NewConfig(cfg, 0.02), o.Output, tokDir); err != nil {
		return cfg, err
	}
	return cfg, nil
}
