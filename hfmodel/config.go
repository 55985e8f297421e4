// Package hfmodel reads and writes Hugging Face model directories
// (config.json, model.safetensors or sharded safetensors, tokenizer files)
// for the cross-encoders of package nn, so that a model saved here loads
// unchanged in transformers, FlagEmbedding, sentence-transformers and
// text-embeddings-inference. Init writes a fresh one from a preset shape
// (Presets: the sizes `rerank init` creates).
package hfmodel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"

	"github.com/rerank-go/rerank/nn"
)

// Config is a parsed config.json: the nn.Config it describes plus every
// original key, kept so that saving writes back what it read.
type Config struct {
	nn.Config
	// Architectures is config.json's "architectures", e.g.
	// ["BertForSequenceClassification"].
	Architectures []string
	// ModelType is "bert", "xlm-roberta" or "roberta".
	ModelType string
	// Headless is true for a plain encoder checkpoint (BertModel,
	// XLMRobertaModel, or no architectures at all): it has no
	// classification head, which loading initialises.
	Headless bool
	// InitializerRange is the standard deviation of fresh weights.
	InitializerRange float32
	// Raw holds every key of the file as read.
	Raw map[string]json.RawMessage
}

var seqClsArch = map[nn.Arch]string{
	nn.BERT:       "BertForSequenceClassification",
	nn.XLMRoberta: "XLMRobertaForSequenceClassification",
}

// ParseConfig parses the bytes of a config.json. path is used in errors.
func ParseConfig(path string, data []byte) (*Config, error) {
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%s: not a JSON object: %w", path, err)
	}
	if raw == nil {
		return nil, fmt.Errorf("%s: not a JSON object", path)
	}
	c := &Config{Raw: raw}
	var errs []error
	bad := func(key string, err error) { errs = append(errs, fmt.Errorf("%s: field %q: %w", path, key, err)) }

	getString := func(key string) (string, bool) {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return "", false
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			bad(key, fmt.Errorf("want a string, got %s", short(v)))
			return "", false
		}
		return s, true
	}
	getFloat := func(key string, def float64) float64 {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			return def
		}
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			bad(key, fmt.Errorf("want a number, got %s", short(v)))
			return def
		}
		return f
	}
	getInt := func(key string, def int, required bool) int {
		v, ok := raw[key]
		if !ok || string(v) == "null" {
			if required {
				bad(key, errors.New("missing"))
			}
			return def
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil || n > 1<<31 || n < -1<<31 {
			bad(key, fmt.Errorf("want an integer, got %s", short(v)))
			return def
		}
		return int(n)
	}

	c.ModelType, _ = getString("model_type")
	if v, ok := raw["architectures"]; ok && string(v) != "null" {
		if err := json.Unmarshal(v, &c.Architectures); err != nil {
			bad("architectures", fmt.Errorf("want a list of strings, got %s", short(v)))
		}
	}
	arch, headless, err := resolveArch(c.ModelType, c.Architectures)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", path, err))
	}
	c.Arch, c.Headless = arch, headless

	defPad := 0
	if arch == nn.XLMRoberta {
		defPad = 1
	}
	c.VocabSize = getInt("vocab_size", 0, true)
	c.Hidden = getInt("hidden_size", 0, true)
	c.Layers = getInt("num_hidden_layers", 0, true)
	c.Heads = getInt("num_attention_heads", 0, true)
	c.Intermediate = getInt("intermediate_size", 0, true)
	c.MaxPositions = getInt("max_position_embeddings", 0, true)
	c.TypeVocab = getInt("type_vocab_size", 2, false)
	c.PadID = getInt("pad_token_id", defPad, false)
	c.LayerNormEps = float32(getFloat("layer_norm_eps", 1e-12))
	c.HiddenDropout = float32(getFloat("hidden_dropout_prob", 0.1))
	c.AttentionDropout = float32(getFloat("attention_probs_dropout_prob", 0.1))
	c.ClassifierDropout = float32(getFloat("classifier_dropout", float64(c.HiddenDropout)))
	c.InitializerRange = float32(getFloat("initializer_range", 0.02))
	if act, ok := getString("hidden_act"); ok && act != "gelu" {
		bad("hidden_act", fmt.Errorf("%q is not supported: rerank implements the exact (erf) \"gelu\" of BERT and XLM-R", act))
	}
	if pe, ok := getString("position_embedding_type"); ok && pe != "absolute" {
		bad("position_embedding_type", fmt.Errorf("%q is not supported: only \"absolute\" positions are", pe))
	}
	// num_labels: len(id2label), as transformers derives it.
	c.NumLabels = 1
	if v, ok := raw["id2label"]; ok && string(v) != "null" {
		var m map[string]string
		if err := json.Unmarshal(v, &m); err != nil {
			bad("id2label", fmt.Errorf("want an object of strings, got %s", short(v)))
		} else if len(m) > 0 {
			c.NumLabels = len(m)
		}
	} else if _, ok := raw["num_labels"]; ok {
		c.NumLabels = getInt("num_labels", 1, false)
	}
	if c.Headless {
		c.NumLabels = 1
	}
	if len(errs) == 0 {
		if err := c.Config.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

func short(v json.RawMessage) string {
	if len(v) > 40 {
		return string(v[:40]) + "…"
	}
	return string(v)
}

// resolveArch maps config.json's model_type and architectures to an
// encoder family and whether the checkpoint lacks the reranker head.
func resolveArch(modelType string, archs []string) (nn.Arch, bool, error) {
	for _, a := range archs {
		switch a {
		case "BertForSequenceClassification":
			return nn.BERT, false, nil
		case "XLMRobertaForSequenceClassification", "RobertaForSequenceClassification":
			return nn.XLMRoberta, false, nil
		case "BertModel", "BertForMaskedLM", "BertForPreTraining":
			return nn.BERT, true, nil
		case "XLMRobertaModel", "XLMRobertaForMaskedLM", "RobertaModel", "RobertaForMaskedLM":
			return nn.XLMRoberta, true, nil
		}
	}
	switch modelType {
	case "bert":
		if len(archs) == 0 {
			return nn.BERT, true, nil
		}
	case "xlm-roberta", "roberta":
		if len(archs) == 0 {
			return nn.XLMRoberta, true, nil
		}
	}
	return 0, false, fmt.Errorf("unsupported model (model_type %q, architectures %q): rerank supports BERT and XLM-RoBERTa encoders and their ForSequenceClassification cross-encoders", modelType, archs)
}

// ReadConfig reads dir/config.json.
func ReadConfig(dir string) (*Config, error) {
	path := filepath.Join(dir, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read model config: %w", err)
	}
	return ParseConfig(path, data)
}

// NewConfig returns the config.json of a fresh cross-encoder for cfg, with
// the keys transformers writes.
func NewConfig(cfg nn.Config, initRange float32) *Config {
	c := &Config{Config: cfg, InitializerRange: initRange, Raw: map[string]json.RawMessage{}}
	set := func(k string, v any) { c.Raw[k], _ = json.Marshal(v) }
	if cfg.Arch == nn.XLMRoberta {
		c.ModelType = "xlm-roberta"
		set("bos_token_id", 0)
		set("eos_token_id", 2)
	} else {
		c.ModelType = "bert"
	}
	set("model_type", c.ModelType)
	set("hidden_act", "gelu")
	set("position_embedding_type", "absolute")
	set("use_cache", true)
	set("torch_dtype", "float32")
	set("transformers_version", "4.31.0")
	c.syncRaw()
	return c
}

// syncRaw writes the typed fields back into Raw in transformers' form: the
// sequence-classification architecture, num_labels as id2label/label2id.
func (c *Config) syncRaw() {
	set := func(k string, v any) { c.Raw[k], _ = json.Marshal(v) }
	set("architectures", []string{seqClsArch[c.Arch]})
	set("vocab_size", c.VocabSize)
	set("hidden_size", c.Hidden)
	set("num_hidden_layers", c.Layers)
	set("num_attention_heads", c.Heads)
	set("intermediate_size", c.Intermediate)
	set("max_position_embeddings", c.MaxPositions)
	set("type_vocab_size", c.TypeVocab)
	set("pad_token_id", c.PadID)
	setF := func(k string, v float32) {
		// Keep the file's own spelling when the value is unchanged.
		if old, ok := c.Raw[k]; ok {
			if f, err := strconv.ParseFloat(string(old), 64); err == nil && float32(f) == v {
				return
			}
		}
		c.Raw[k] = json.RawMessage(strconv.FormatFloat(float64(v), 'g', -1, 32))
	}
	setF("layer_norm_eps", c.LayerNormEps)
	setF("hidden_dropout_prob", c.HiddenDropout)
	setF("attention_probs_dropout_prob", c.AttentionDropout)
	setF("initializer_range", c.InitializerRange)
	// classifier_dropout null means "use hidden_dropout_prob"; keep null
	// when that still holds.
	if old, ok := c.Raw["classifier_dropout"]; (!ok || string(old) == "null") && c.ClassifierDropout == c.HiddenDropout {
		c.Raw["classifier_dropout"] = json.RawMessage("null")
	} else {
		setF("classifier_dropout", c.ClassifierDropout)
	}
	id2label := map[string]string{}
	label2id := map[string]int{}
	for i := 0; i < c.NumLabels; i++ {
		l := "LABEL_" + strconv.Itoa(i)
		id2label[strconv.Itoa(i)] = l
		label2id[l] = i
	}
	// Keep custom label names when the count still matches.
	if old, ok := c.Raw["id2label"]; ok {
		var m map[string]string
		if json.Unmarshal(old, &m) == nil && len(m) == c.NumLabels {
			id2label = m
			label2id = map[string]int{}
			for k, v := range m {
				i, _ := strconv.Atoi(k)
				label2id[v] = i
			}
		}
	}
	set("id2label", id2label)
	set("label2id", label2id)
	delete(c.Raw, "num_labels")
}

// Marshal returns config.json's bytes: sorted keys, two-space indent and a
// final newline, as transformers writes them.
func (c *Config) Marshal() ([]byte, error) {
	c.syncRaw()
	keys := make([]string, 0, len(c.Raw))
	for k := range c.Raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var buf bytes.Buffer
	buf.WriteString("{\n")
	for i, k := range keys {
		var v bytes.Buffer
		if err := json.Indent(&v, c.Raw[k], "  ", "  "); err != nil {
			return nil, fmt.Errorf("config key %q: %w", k, err)
		}
		kb, _ := json.Marshal(k)
		fmt.Fprintf(&buf, "  %s: %s", kb, v.Bytes())
		if i < len(keys)-1 {
			buf.WriteString(",")
		}
		buf.WriteString("\n")
	}
	buf.WriteString("}\n")
	return buf.Bytes(), nil
}
