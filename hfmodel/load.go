package hfmodel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/hub"
	"github.com/rerank-go/rerank/internal/atomicfile"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/safetensors"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// Seed draws the fresh head of a headless checkpoint (and BERT's
	// pooler when missing): weights from N(0, initializer_range²), zero
	// biases.
	Seed uint64
	// Hub resolves a Hugging Face Hub id given instead of a directory;
	// nil means hub.FromEnv().
	Hub *hub.Client
	// OnParam, when set, is called once each parameter of m holds its
	// final values (read from the checkpoint, or drawn for a fresh head),
	// in m.Params() order, before the next is read: the weights stream
	// in layer by layer, so that a caller can use each as it arrives and
	// let it go (crossencoder quantizes each encoder weight to int8 and
	// drops its float32 copy: nn/infer Int8Weights.Loaded). An error
	// stops Load and is returned.
	OnParam func(m *nn.Model, p *nn.Param) error
}

// Loaded describes what Load found besides the weights.
type Loaded struct {
	Config *Config
	// Dir is the directory the model was read from (for a Hub id, its
	// snapshot in the cache); Save copies its tokenizer files.
	Dir string
	// Source is where the model came from, as config.json's
	// "_name_or_path" records it: the Hub id ("org/name"), or the
	// absolute path of a local directory.
	Source string
	// Initialized lists the parameters that the checkpoint lacked and
	// Load initialised (the head of a plain encoder checkpoint).
	Initialized []string
	// Unused lists checkpoint tensors the model does not use (for
	// example position_ids buffers or a masked-LM head).
	Unused []string
}

// Load reads a Hugging Face model onto be: config.json plus
// model.safetensors or a sharded model.safetensors.index.json, else
// pytorch_model.bin or its shard index (read by package torchbin, which
// never executes the pickle). ref is a
// model directory or a Hub id ("org/name", "org/name@revision"), which
// opts.Hub resolves through the Hugging Face cache, downloading what is
// missing (see package hub). The config's "_name_or_path" is set to
// where the model came from (Loaded.Source), so that Save records it.
//
// BertForSequenceClassification and XLMRobertaForSequenceClassification
// load as they are. A plain encoder (BertModel, XLMRobertaModel, such as
// bge-base-en-v1.5) gets a fresh classification head drawn with opts.Seed.
// Tensor names may carry or lack the "bert."/"roberta." prefix, and old
// LayerNorm gamma/beta names are accepted. F16 and BF16 weights are
// converted to float32.
func Load(be backend.Backend, ref string, opts LoadOptions) (*nn.Model, *Loaded, error) {
	res, err := opts.Hub.Resolve(context.Background(), ref, hub.Model)
	if err != nil {
		return nil, nil, err
	}
	dir := res.Dir
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, nil, err
	}
	source := res.Repo
	if source == "" {
		source = hub.Provenance(dir)
	}
	cfg.Raw["_name_or_path"], _ = json.Marshal(source)
	set, err := openWeights(dir)
	if err != nil {
		return nil, nil, err
	}
	defer set.Close()
	if err := checkWeights(dir, cfg, set); err != nil {
		return nil, nil, err
	}
	m, err := nn.New(be, cfg.Config)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, err)
	}
	info := &Loaded{Config: cfg, Dir: dir, Source: source}
	used := map[string]bool{}
	rng := rand.New(rand.NewPCG(opts.Seed, 0x4ead))
	pre := cfg.Arch.Prefix() + "."
	var missing []string
	chunk := make([]float32, loadChunk) // every tensor's reads reuse it
	loaded := func(p *nn.Param) error {
		if opts.OnParam == nil {
			return nil
		}
		if err := be.Sync(); err != nil {
			return fmt.Errorf("%s: upload %s: %w", dir, p.Name, err)
		}
		if err := opts.OnParam(m, p); err != nil {
			return fmt.Errorf("%s: %s: %w", dir, p.Name, err)
		}
		return nil
	}
	for _, p := range m.Params() {
		name, ok := findTensor(set, p.Name, pre)
		if !ok {
			if isHead(p.Name, pre) {
				nn.InitParam(be, p, rng, cfg.InitializerRange)
				info.Initialized = append(info.Initialized, p.Name)
				if err := loaded(p); err != nil {
					return nil, nil, err
				}
				continue
			}
			missing = append(missing, p.Name)
			continue
		}
		used[name] = true
		shape, err := set.Shape(name)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", dir, err)
		}
		if !slices.Equal(shape, p.Shape) {
			return nil, nil, fmt.Errorf("%s: tensor %q has shape %v, but config.json implies %v for %s: the config and the weights do not belong together",
				dir, name, shape, p.Shape, p.Name)
		}
		// A chunk at a time: no second copy of a large tensor in memory
		// (loading peaks at the weights plus a few MiB).
		err = set.Float32Chunks(name, chunk, func(off int, v []float32) error {
			be.Upload(p.W.Slice(off, len(v)), v)
			return be.Sync() // the chunk's buffer is reused
		})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", dir, err)
		}
		if err := loaded(p); err != nil {
			return nil, nil, err
		}
	}
	if len(missing) > 0 {
		return nil, nil, fmt.Errorf("%s: the checkpoint lacks %d tensors the model needs, first %q: is this a %s checkpoint?",
			dir, len(missing), missing[0], cfg.Arch)
	}
	for _, n := range set.Names() {
		if !used[n] {
			info.Unused = append(info.Unused, n)
		}
	}
	if err := be.Sync(); err != nil {
		return nil, nil, fmt.Errorf("%s: upload weights: %w", dir, err)
	}
	return m, info, nil
}

// loadChunk is the number of values Load reads and uploads at a time.
const loadChunk = 1 << 20

// isHead reports whether a parameter belongs to the reranker head that a
// plain encoder checkpoint lacks (BERT's pooler included: some encoders
// are saved without it).
func isHead(name, pre string) bool {
	return strings.HasPrefix(name, "classifier.") || strings.HasPrefix(name, pre+"pooler.")
}

// findTensor looks a parameter up under its own name, without the encoder
// prefix, and with old gamma/beta LayerNorm names.
func findTensor(set weights, name, pre string) (string, bool) {
	cands := []string{name}
	if bare, ok := strings.CutPrefix(name, pre); ok {
		cands = append(cands, bare)
	}
	for _, c := range cands[:len(cands):len(cands)] {
		if strings.Contains(c, "LayerNorm.weight") {
			cands = append(cands, strings.Replace(c, "LayerNorm.weight", "LayerNorm.gamma", 1))
		}
		if strings.Contains(c, "LayerNorm.bias") {
			cands = append(cands, strings.Replace(c, "LayerNorm.bias", "LayerNorm.beta", 1))
		}
	}
	for _, c := range cands {
		if set.Has(c) {
			return c, true
		}
	}
	return "", false
}

// TokenizerFiles are the files Save copies from the source directory, as
// AutoTokenizer.save_pretrained writes them.
var TokenizerFiles = hub.TokenizerFiles

// Save writes m as a Hugging Face model directory: config.json (the
// sequence-classification architecture, id2label/label2id), model.safetensors
// with Hugging Face's tensor names, and the tokenizer files found in
// tokenizerDir (skipped when empty). Every file is written to a temporary
// name and renamed, so a crash never leaves a half-written file.
func Save(m *nn.Model, cfg *Config, dir, tokenizerDir string) error {
	if err := m.CheckLinearWeights(); err != nil {
		return fmt.Errorf("save %s: %w", dir, err)
	}
	if cfg == nil {
		cfg = NewConfig(m.Cfg, 0.02)
	}
	cfg.Config = m.Cfg
	cfg.Headless = false
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	be := m.Backend()
	tensors := make([]safetensors.Tensor, 0, len(m.Params()))
	for _, p := range m.Params() {
		v := make([]float32, p.Size())
		be.Download(v, p.W)
		tensors = append(tensors, safetensors.F32View(p.Name, p.Shape, v)) // v is ours: no second copy
	}
	if err := be.Sync(); err != nil {
		return fmt.Errorf("save model: download weights: %w", err)
	}
	sort.Slice(tensors, func(i, j int) bool { return tensors[i].Name < tensors[j].Name })
	if err := safetensors.Write(filepath.Join(dir, "model.safetensors"), tensors, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	js, err := cfg.Marshal()
	if err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "config.json"), js); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	if tokenizerDir != "" && tokenizerDir != dir {
		if err := CopyTokenizer(tokenizerDir, dir); err != nil {
			return fmt.Errorf("save model: %w", err)
		}
	}
	if err := WriteTokenizerConfig(dir, m.Cfg.MaxSequence()); err != nil {
		return fmt.Errorf("save model: %w", err)
	}
	return nil
}

// WriteTokenizerConfig makes the tokenizer_config.json of a directory
// holding a tokenizer.json carry model_max_length, as Hugging Face's
// save_pretrained writes it: without it, transformers' AutoTokenizer loads
// with no length limit and never truncates. maxLen is the model's longest
// input (nn.Config.MaxSequence: 512 for BERT, max_position_embeddings − 2
// for XLM-R). Every other field of an existing file is kept, and so is its
// model_max_length when it is a positive integer no larger than maxLen (a
// limit the user chose); anything else (missing, transformers' "no limit"
// 1e30, larger than the position table) becomes maxLen. A directory
// without tokenizer.json is left alone.
func WriteTokenizerConfig(dir string, maxLen int) error {
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); err != nil || maxLen <= 0 {
		return nil
	}
	path := filepath.Join(dir, "tokenizer_config.json")
	fields := map[string]json.RawMessage{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("tokenizer config: %w", err)
	default:
		if err := json.Unmarshal(data, &fields); err != nil {
			return fmt.Errorf("tokenizer config %s: %w", path, err)
		}
		if fields == nil { // the file held null
			fields = map[string]json.RawMessage{}
		}
	}
	if raw, ok := fields["model_max_length"]; ok {
		var n int64
		if json.Unmarshal(raw, &n) == nil && n > 0 && n <= int64(maxLen) {
			return nil
		}
	}
	fields["model_max_length"] = json.RawMessage(fmt.Sprint(maxLen))
	var buf strings.Builder
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // "<s>" stays "<s>", as Python's json writes it
	enc.SetIndent("", "  ")
	if err := enc.Encode(fields); err != nil { // keys sorted, as save_pretrained's sort_keys=True
		return fmt.Errorf("tokenizer config %s: %w", path, err)
	}
	if err := atomicfile.WriteFile(path, []byte(buf.String())); err != nil {
		return fmt.Errorf("tokenizer config: %w", err)
	}
	return nil
}

// CopyTokenizer copies the tokenizer files present in src to dst.
func CopyTokenizer(src, dst string) error {
	for _, name := range TokenizerFiles {
		data, err := os.ReadFile(filepath.Join(src, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("copy tokenizer: %w", err)
		}
		if err := atomicfile.WriteFile(filepath.Join(dst, name), data); err != nil {
			return fmt.Errorf("copy tokenizer: %w", err)
		}
	}
	return nil
}
