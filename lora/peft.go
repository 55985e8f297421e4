package lora

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rerank-go/rerank/hub"
	"github.com/rerank-go/rerank/internal/atomicfile"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/safetensors"
	"github.com/rerank-go/rerank/torchbin"
)

// File names of a PEFT adapter directory.
const (
	ConfigFile  = "adapter_config.json"
	WeightsFile = "adapter_model.safetensors"
	// BinWeightsFile is the torch pickle PEFT < 0.7 saved instead; Load
	// reads it (Save writes safetensors).
	BinWeightsFile = "adapter_model.bin"
	// KeyPrefix starts every tensor name in a PEFT adapter file.
	KeyPrefix = "base_model.model."
)

// Key returns the adapter-file name of a trainable parameter:
// KeyPrefix + the parameter's name.
func Key(p *nn.Param) string { return KeyPrefix + p.Name }

// ConfigJSON returns adapter_config.json as PEFT v0.6.2 writes it
// (json.dumps(indent=2, sort_keys=True), no trailing newline), with
// target_modules sorted, task_type SEQ_CLS, modules_to_save null (PEFT
// adds the classifier from the task type) and inference_mode true.
// use_rslora is written only when set (PEFT ≥ 0.7 knows it). baseModel
// becomes base_model_name_or_path (null when empty); a Hub id pinned to a
// revision ("org/name@rev") is written as PEFT writes it, the id there
// and the revision in "revision".
func (c Config) ConfigJSON(baseModel string) ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	raw := func(v any) json.RawMessage {
		b, _ := json.Marshal(v)
		return b
	}
	var targets json.RawMessage
	if c.TargetRegex != "" {
		targets = raw(c.TargetRegex)
	} else {
		targets = raw(sortedTargets(c.TargetModules))
	}
	var base json.RawMessage = json.RawMessage("null")
	var revision json.RawMessage = json.RawMessage("null")
	if r, err := hub.ParseRef(baseModel); err == nil && r.Revision != "" {
		baseModel = r.Repo
		revision = raw(r.Revision)
	}
	if baseModel != "" {
		base = raw(baseModel)
	}
	var init json.RawMessage
	switch c.Init {
	case InitGaussian:
		init = raw("gaussian")
	case InitRandom:
		init = raw(false)
	default:
		init = raw(true)
	}
	fields := map[string]json.RawMessage{
		"alpha_pattern":           json.RawMessage("{}"),
		"auto_mapping":            json.RawMessage("null"),
		"base_model_name_or_path": base,
		"bias":                    raw("none"),
		"fan_in_fan_out":          raw(false),
		"inference_mode":          raw(true),
		"init_lora_weights":       init,
		"layers_pattern":          json.RawMessage("null"),
		"layers_to_transform":     json.RawMessage("null"),
		"lora_alpha":              json.RawMessage(pyNumber(c.Alpha, true)),
		"lora_dropout":            json.RawMessage(pyNumber(c.Dropout, false)),
		"modules_to_save":         json.RawMessage("null"),
		"peft_type":               raw("LORA"),
		"r":                       raw(c.R),
		"rank_pattern":            json.RawMessage("{}"),
		"revision":                revision,
		"target_modules":          targets,
		"task_type":               raw("SEQ_CLS"),
	}
	if c.UseRSLoRA {
		fields["use_rslora"] = raw(true)
	}
	return json.MarshalIndent(fields, "", "  ")
}

// pyNumber formats v as Python's json module does: an int when intOK and
// v is integral (lora_alpha is an int in PEFT), else a float repr, which
// always has a '.' or an exponent ("0.0", "0.1", "1e-05").
func pyNumber(v float64, intOK bool) string {
	if intOK && v == math.Trunc(v) && math.Abs(v) < 1<<53 {
		return strconv.FormatInt(int64(v), 10)
	}
	s := strconv.FormatFloat(v, 'g', -1, 64)
	if e := strings.IndexByte(s, 'e'); e >= 0 {
		// Python writes at least two exponent digits, as Go does.
		return s
	}
	if !strings.ContainsAny(s, ".e") {
		s += ".0"
	}
	return s
}

// Save writes the adapter directory: adapter_config.json and
// adapter_model.safetensors with PEFT's key names (KeyPrefix + module +
// ".lora_A.weight"/".lora_B.weight", and the head, e.g.
// base_model.model.classifier.weight), each file atomically. baseModel is
// recorded as base_model_name_or_path ("" writes null).
func (a *Adapters) Save(dir, baseModel string) error {
	if a.detached {
		return errors.New("lora: save after Detach")
	}
	js, err := a.Config.ConfigJSON(baseModel)
	if err != nil {
		return fmt.Errorf("lora: save %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("lora: save adapter: %w", err)
	}
	var tensors []safetensors.Tensor
	for _, p := range a.Trainable() {
		v := make([]float32, p.Size())
		a.be.Download(v, p.W)
		tensors = append(tensors, safetensors.F32Tensor(Key(p), p.Shape, v))
	}
	if err := a.be.Sync(); err != nil {
		return fmt.Errorf("lora: save adapter: download weights: %w", err)
	}
	sort.Slice(tensors, func(i, j int) bool { return tensors[i].Name < tensors[j].Name })
	if err := safetensors.Write(filepath.Join(dir, WeightsFile), tensors, map[string]string{"format": "pt"}); err != nil {
		return fmt.Errorf("lora: save adapter: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, ConfigFile), js); err != nil {
		return fmt.Errorf("lora: save adapter: %w", err)
	}
	return nil
}

// peftConfig is the part of adapter_config.json that Load reads.
type peftConfig struct {
	PeftType          *string         `json:"peft_type"`
	TaskType          *string         `json:"task_type"`
	R                 *int            `json:"r"`
	LoraAlpha         *float64        `json:"lora_alpha"`
	LoraDropout       *float64        `json:"lora_dropout"`
	TargetModules     json.RawMessage `json:"target_modules"`
	Bias              *string         `json:"bias"`
	FanInFanOut       *bool           `json:"fan_in_fan_out"`
	UseRSLoRA         *bool           `json:"use_rslora"`
	InitLoraWeights   json.RawMessage `json:"init_lora_weights"`
	LayersToTransform json.RawMessage `json:"layers_to_transform"`
	RankPattern       json.RawMessage `json:"rank_pattern"`
	AlphaPattern      json.RawMessage `json:"alpha_pattern"`
	BaseModel         *string         `json:"base_model_name_or_path"`
	Revision          *string         `json:"revision"`
	UseDora           *bool           `json:"use_dora"`
}

// ReadConfig reads a PEFT adapter_config.json. It returns the Config and
// base_model_name_or_path (with "@revision" appended when the config pins
// a Hub id to a revision). Settings rerank cannot honour (another PEFT
// type, fan_in_fan_out, rank/alpha patterns, layers_to_transform, DoRA)
// are errors naming the field.
func ReadConfig(dir string) (Config, string, error) {
	path := filepath.Join(dir, ConfigFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, "", fmt.Errorf("lora: %w (an adapter directory holds %s and %s)", err, ConfigFile, WeightsFile)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses the bytes of an adapter_config.json; path is used in
// errors.
func ParseConfig(path string, data []byte) (Config, string, error) {
	var pc peftConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&pc); err != nil {
		return Config{}, "", fmt.Errorf("%s: not a PEFT adapter config: %w", path, err)
	}
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: field %q: %s", path, field, fmt.Sprintf(format, args...)))
	}
	c := Config{}
	if pc.PeftType == nil || *pc.PeftType != "LORA" {
		got := "missing"
		if pc.PeftType != nil {
			got = strconv.Quote(*pc.PeftType)
		}
		bad("peft_type", "is %s, want \"LORA\"", got)
	}
	if pc.TaskType != nil && *pc.TaskType != "SEQ_CLS" {
		bad("task_type", "is %q: rerank loads sequence-classification adapters (SEQ_CLS)", *pc.TaskType)
	}
	if pc.R == nil {
		bad("r", "missing")
	} else {
		c.R = *pc.R
	}
	c.Alpha = 8 // PEFT's default
	if pc.LoraAlpha != nil {
		c.Alpha = *pc.LoraAlpha
	}
	if pc.LoraDropout != nil {
		c.Dropout = *pc.LoraDropout
	}
	if pc.UseRSLoRA != nil {
		c.UseRSLoRA = *pc.UseRSLoRA
	}
	switch t := bytes.TrimSpace(pc.TargetModules); {
	case len(t) == 0 || string(t) == "null":
		c.TargetModules = append([]string(nil), DefaultTargets...)
	case t[0] == '"':
		if err := json.Unmarshal(t, &c.TargetRegex); err != nil {
			bad("target_modules", "%v", err)
		}
	default:
		if err := json.Unmarshal(t, &c.TargetModules); err != nil {
			bad("target_modules", "want a list of module names or a regex string: %v", err)
		}
	}
	switch t := string(bytes.TrimSpace(pc.InitLoraWeights)); t {
	case "", "null", "true":
	case "false":
		c.Init = InitRandom
	case `"gaussian"`:
		c.Init = InitGaussian
	default:
		// Other schemes (loftq, pissa, ...) only matter for fresh
		// adapters; the stored weights are what counts here.
	}
	if pc.Bias != nil && *pc.Bias != "none" && *pc.Bias != "all" && *pc.Bias != "lora_only" {
		bad("bias", "is %q, want none, all or lora_only", *pc.Bias)
	}
	if pc.FanInFanOut != nil && *pc.FanInFanOut {
		bad("fan_in_fan_out", "is true: only nn.Linear ([out, in]) weights are supported")
	}
	if pc.UseDora != nil && *pc.UseDora {
		bad("use_dora", "is true: DoRA adapters are not supported")
	}
	for _, f := range []struct {
		name string
		v    json.RawMessage
	}{{"layers_to_transform", pc.LayersToTransform}, {"rank_pattern", pc.RankPattern}, {"alpha_pattern", pc.AlphaPattern}} {
		if s := string(bytes.TrimSpace(f.v)); s != "" && s != "null" && s != "{}" && s != "[]" {
			bad(f.name, "is %s: per-layer settings are not supported", s)
		}
	}
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
		}
	}
	base := ""
	if pc.BaseModel != nil {
		base = *pc.BaseModel
		if pc.Revision != nil && *pc.Revision != "" && hub.IsRef(base) {
			base += "@" + *pc.Revision
		}
	}
	return c, base, errors.Join(errs...)
}

// Load reads a PEFT adapter (a directory written by PEFT's save_pretrained
// or by Save, or a Hugging Face Hub id resolved by hub.FromEnv) and
// attaches it to m: the lora_A/lora_B weights, and the
// adapter's classification head, which replaces the base model's (Detach
// restores it). Tensor names may carry PEFT's in-memory forms
// (".lora_A.default.weight", "modules_to_save.default."), and may lack
// the "base_model.model." prefix. Bias tensors of an adapter trained with
// bias "all" or "lora_only" are loaded into the model's biases (rerank
// itself trains and saves bias "none"). Trainable state is as after
// Attach.
func Load(m *nn.Model, dir string) (*Adapters, error) {
	if err := m.CheckLinearWeights(); err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	if _, err := os.Stat(dir); err != nil && hub.IsRef(dir) {
		if dir, err = (*hub.Client)(nil).Dir(context.Background(), dir, hub.Adapter); err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
	}
	cfg, base, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, WeightsFile)
	var f adapterTensors
	if _, err := os.Stat(path); err == nil {
		sf, err := safetensors.Open(path)
		if err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		f = sf
	} else {
		// PEFT < 0.7 saved torch pickles; read without running them.
		bin := filepath.Join(dir, BinWeightsFile)
		if _, berr := os.Stat(bin); berr != nil {
			return nil, fmt.Errorf("lora: %w (nor %s)", err, BinWeightsFile)
		}
		tf, err := torchbin.Open(bin)
		if err != nil {
			return nil, fmt.Errorf("lora: %w", err)
		}
		f, path = tf, bin
	}
	defer f.Close()
	a, err := attach(m, cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, ConfigFile), err)
	}
	a.BaseModel = base
	if err := a.loadTensors(f, path); err != nil {
		a.undo()
		return nil, err
	}
	return a, nil
}

// undo reverts a failed Load: adapters off, base head back, buffers freed.
func (a *Adapters) undo() {
	for _, ad := range a.list {
		ad.lin.Adapter = nil
	}
	for _, p := range a.m.HeadParams() {
		if v, ok := a.baseHead[p.Name]; ok {
			a.be.Upload(p.W, v)
		}
	}
	_ = a.m.EnableGrads(func(*nn.Param) bool { return false })
	a.release()
	a.detached = true
}

// NormalizeKey maps a PEFT tensor name to rerank's parameter name: it
// strips "base_model.model.", the adapter name of in-memory names
// (".lora_A.default.weight") and the "modules_to_save.default." wrapper.
func NormalizeKey(key string) string {
	k := strings.TrimPrefix(key, KeyPrefix)
	k = strings.ReplaceAll(k, ".modules_to_save.default.", ".")
	k = strings.ReplaceAll(k, ".modules_to_save.", ".")
	for _, ab := range []string{".lora_A.", ".lora_B."} {
		if i := strings.Index(k, ab); i >= 0 {
			rest := k[i+len(ab):]
			if j := strings.LastIndexByte(rest, '.'); j >= 0 && rest[j+1:] == "weight" && j > 0 {
				k = k[:i+len(ab)] + "weight"
			}
		}
	}
	return k
}

// adapterTensors is an adapter weights file: safetensors or torch's zip.
type adapterTensors interface {
	Names() []string
	Float32(name string) ([]float32, []int, error)
	Close() error
}

func (a *Adapters) loadTensors(f adapterTensors, path string) error {
	byName := map[string]*nn.Param{}
	for _, p := range a.Params() {
		byName[p.Name] = p
	}
	found := map[string]string{}
	for _, key := range f.Names() {
		if strings.Contains(key, ".original_module.") {
			// PEFT keeps the untouched head next to its trainable copy;
			// when a target lies inside the head (a bare "dense" on
			// XLM-R), the copy's LoRA tensors are saved under this name
			// too. The modules_to_save copy is the one that counts.
			continue
		}
		name := NormalizeKey(key)
		p, ok := byName[name]
		if !ok {
			if strings.Contains(name, "lora_") {
				return fmt.Errorf("%s: tensor %q: no module %q of this model is a target of %s (targets %v)",
					path, key, moduleOf(name), ConfigFile, a.Config.TargetModules)
			}
			// A head (modules_to_save) or bias tensor of the base model.
			p = a.m.Param(name)
			if p == nil {
				return fmt.Errorf("%s: tensor %q matches no parameter of the model (%s): is the adapter for another base model?", path, key, name)
			}
		}
		if prev, dup := found[p.Name]; dup {
			return fmt.Errorf("%s: tensors %q and %q both give %s", path, prev, key, p.Name)
		}
		found[p.Name] = key
		v, shape, err := f.Float32(key)
		if err != nil {
			return fmt.Errorf("%s: tensor %q: %w", path, key, err)
		}
		if !slices.Equal(shape, p.Shape) {
			return fmt.Errorf("%s: tensor %q has shape %v, want %v for %s (r=%d and the base model's config): is the adapter for another base model?",
				path, key, shape, p.Shape, p.Name, a.Config.R)
		}
		a.be.Upload(p.W, v)
	}
	for _, p := range a.Params() {
		if _, ok := found[p.Name]; !ok {
			return fmt.Errorf("%s: no tensor %q for the wrapped module %s", path, Key(p), moduleOf(p.Name))
		}
	}
	if err := a.be.Sync(); err != nil {
		return fmt.Errorf("%s: upload: %w", path, err)
	}
	return nil
}

func moduleOf(name string) string {
	for _, s := range []string{".lora_A.", ".lora_B."} {
		if i := strings.Index(name, s); i >= 0 {
			return name[:i]
		}
	}
	return name
}
