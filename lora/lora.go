// Package lora fine-tunes a cross-encoder with LoRA (low-rank adapters),
// compatible with Hugging Face PEFT v0.6.2 in both directions: adapters
// trained here load in PEFT (PeftModel.from_pretrained) and adapters
// trained with PEFT load here, classification head included.
//
// A wrapped Linear computes
//
//	y = x·Wᵀ + b + scaling·(dropout(x)·Aᵀ)·Bᵀ
//
// with A = lora_A [r, in], B = lora_B [out, r] and scaling = alpha/r
// (alpha/√r with UseRSLoRA). A module is wrapped when its Hugging Face
// module name equals a target or ends with "." + target, PEFT's rule: the
// default targets "query" and "value" wrap every self-attention query and
// value projection, and a bare "dense" also wraps BERT's pooler and XLM-R's
// classifier.dense, as it does in PEFT.
//
// The trainable set is every lora_A/lora_B plus the classification head
// (PEFT's SEQ_CLS task keeps "classifier" in modules_to_save); the base
// model is frozen and gets no gradient buffers and no optimizer state.
//
// Training:
//
//	m, _, _ := hfmodel.Load(be, baseDir, hfmodel.LoadOptions{})
//	cfg := lora.DefaultConfig()
//	cfg.R, cfg.Alpha, cfg.TargetModules = 16, 32, []string{"query", "key", "value"}
//	ad, err := lora.Attach(m, cfg, seed)      // wraps, freezes the base
//	opt, err := optim.NewAdamW(be, ad.Trainable(), 0.01)
//	for each step {
//		m.ZeroGrads(); ad.ZeroGrads()
//		logits, _ := m.Forward(batch, nn.RunOptions{Train: true, Seed: step})
//		... m.Backward(dlogits); opt.Step(lr)
//	}
//	err = ad.Save(outDir, baseDir)            // adapter_config.json + adapter_model.safetensors
//
// Inference and merging:
//
//	ad, err := lora.Load(m, adapterDir)       // LoRA weights and the adapter's head
//	err = ad.Merge()                           // W += scaling·B·A; adapters off
//	err = hfmodel.Save(m, info.Config, outDir, baseDir)
//	err = ad.Unmerge()                         // W −= scaling·B·A; adapters on again
//	err = ad.Detach()                          // back to the base model and its head
//
// Several adapters can be served over one base in turn: Load, Merge, serve,
// Detach (which unmerges), Load the next one.
package lora

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/nn"
)

// Init selects how Attach initialises lora_A and lora_B (PEFT's
// init_lora_weights).
type Init string

const (
	// InitDefault is PEFT's default (init_lora_weights=True): A from
	// kaiming_uniform(a=√5), i.e. U(−1/√in, 1/√in), and B zero, so that a
	// fresh adapter leaves the model's output unchanged.
	InitDefault Init = ""
	// InitGaussian is init_lora_weights="gaussian": A from N(0, 1/r²), B
	// zero.
	InitGaussian Init = "gaussian"
	// InitRandom is init_lora_weights=False: both A and B keep
	// nn.Linear's default kaiming_uniform(a=√5) init, so the adapter
	// changes the output from the start (for tests).
	InitRandom Init = "random"
)

// Config describes the adapters, as PEFT's LoraConfig does.
type Config struct {
	// R is the rank r.
	R int
	// Alpha is lora_alpha; the update is scaled by Alpha/R (Alpha/√R with
	// UseRSLoRA).
	Alpha float64
	// Dropout is lora_dropout, applied to the adapter's input in training.
	Dropout float64
	// TargetModules are module-name suffixes (PEFT's list form of
	// target_modules). TargetRegex, when set instead, is a regular
	// expression that must match the whole module name (PEFT's string
	// form).
	TargetModules []string
	TargetRegex   string
	// UseRSLoRA selects rank-stabilised scaling alpha/√r.
	UseRSLoRA bool
	// Init selects the initialisation of a fresh adapter.
	Init Init
}

// DefaultTargets are PEFT's default target modules for BERT and XLM-R.
var DefaultTargets = []string{"query", "value"}

// DefaultConfig returns PEFT's LoraConfig defaults: r 8, alpha 8, no
// dropout, targets query and value.
func DefaultConfig() Config {
	return Config{R: 8, Alpha: 8, TargetModules: append([]string(nil), DefaultTargets...)}
}

// Scaling is the factor of the low-rank update.
func (c Config) Scaling() float64 {
	if c.UseRSLoRA {
		return c.Alpha / math.Sqrt(float64(c.R))
	}
	return c.Alpha / float64(c.R)
}

// Validate checks the hyper-parameters.
func (c Config) Validate() error {
	var errs []error
	if c.R <= 0 {
		errs = append(errs, fmt.Errorf("lora rank r must be positive, got %d", c.R))
	}
	if !(c.Alpha > 0) || math.IsInf(c.Alpha, 0) {
		errs = append(errs, fmt.Errorf("lora_alpha must be a positive number, got %g", c.Alpha))
	}
	if !(c.Dropout >= 0 && c.Dropout < 1) {
		errs = append(errs, fmt.Errorf("lora_dropout must be in [0, 1), got %g", c.Dropout))
	}
	if len(c.TargetModules) == 0 && c.TargetRegex == "" {
		errs = append(errs, errors.New("no target modules: give module-name suffixes such as query,value"))
	}
	for _, t := range c.TargetModules {
		if strings.TrimSpace(t) == "" || strings.HasPrefix(t, ".") || strings.HasSuffix(t, ".") {
			errs = append(errs, fmt.Errorf("target module %q: want a module name or dotted suffix such as attention.output.dense", t))
		}
	}
	if c.TargetRegex != "" {
		if _, err := regexp.Compile(c.TargetRegex); err != nil {
			errs = append(errs, fmt.Errorf("target_modules regex %q: %w", c.TargetRegex, err))
		}
	}
	switch c.Init {
	case InitDefault, InitGaussian, InitRandom:
	default:
		errs = append(errs, fmt.Errorf("init %q: want %q (PEFT default), %q or %q", c.Init, InitDefault, InitGaussian, InitRandom))
	}
	return errors.Join(errs...)
}

// Matches reports whether the module name is a target: PEFT's rule, the
// name equals a target or ends with "." + target (or, with TargetRegex,
// the expression matches the whole name).
func (c Config) Matches(module string) bool {
	if c.TargetRegex != "" {
		re, err := regexp.Compile(`^(?:` + c.TargetRegex + `)$`)
		return err == nil && re.MatchString(module)
	}
	for _, t := range c.TargetModules {
		if module == t || strings.HasSuffix(module, "."+t) {
			return true
		}
	}
	return false
}

// Adapter is the LoRA pair of one wrapped Linear. It implements nn.Adapter.
type Adapter struct {
	// Module is the Hugging Face module name of the wrapped Linear.
	Module     string
	In, Out, R int
	// Scaling multiplies the low-rank update; Dropout is the probability
	// of lora_dropout.
	Scaling float32
	Dropout float32
	// A is lora_A [R, In], B is lora_B [Out, R].
	A, B *nn.Param

	lin   *nn.Linear
	set   *Adapters
	u     backend.Buf // dropout(x)·Aᵀ of the last Forward, rows×R
	uRows int         // rows of u, or 0 before the first Forward
}

// Adapters is the set of adapters attached to one model.
type Adapters struct {
	// Config is the configuration the adapters were built from.
	Config Config
	// BaseModel is base_model_name_or_path of a loaded adapter ("" when
	// unset).
	BaseModel string

	m        *nn.Model
	be       backend.Backend
	list     []*Adapter
	weights  backend.Buf
	grads    backend.Buf
	merged   bool
	detached bool
	baseHead map[string][]float32 // the base model's head, for Detach

	// Shared scratch: dropout(x) (or the masked input gradient), rows×In,
	// and dy·B, rows×R.
	scratchX, scratchG backend.Buf
}

// Attach wraps every target Linear of m with a fresh adapter initialised
// as PEFT does (see Config.Init), drawn deterministically from seed, and
// freezes the base model: only the head (m.HeadParams) keeps gradient
// buffers, and the adapters get their own. It fails when m already has
// adapters or when no module matches a target.
func Attach(m *nn.Model, cfg Config, seed uint64) (*Adapters, error) {
	if err := m.CheckLinearWeights(); err != nil {
		return nil, fmt.Errorf("lora: %w", err)
	}
	a, err := attach(m, cfg)
	if err != nil {
		return nil, err
	}
	a.initWeights(seed)
	if err := a.be.Sync(); err != nil {
		a.release()
		return nil, fmt.Errorf("lora: initialise adapters: %w", err)
	}
	return a, nil
}

func attach(m *nn.Model, cfg Config) (*Adapters, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("lora config: %w", err)
	}
	var targets []*nn.Linear
	var names []string
	for _, lin := range m.Linears() {
		names = append(names, lin.Name)
		if lin.Adapter != nil {
			return nil, fmt.Errorf("lora: module %s already has an adapter: Detach the current adapters first", lin.Name)
		}
		if cfg.Matches(lin.Name) {
			targets = append(targets, lin)
		}
	}
	if len(targets) == 0 {
		want := strings.Join(cfg.TargetModules, ",")
		if cfg.TargetRegex != "" {
			want = cfg.TargetRegex
		}
		return nil, fmt.Errorf("lora: target modules %q match no Linear of the model; module names look like %s",
			want, strings.Join(exampleNames(names), ", "))
	}
	// A rank above the smaller side of a layer adds no capacity (B·A has
	// rank at most min(In, Out)) and only costs memory.
	for _, lin := range targets {
		if cfg.R > min(lin.In, lin.Out) {
			return nil, fmt.Errorf("lora: rank %d exceeds the dimensions of %s (%d×%d): use a rank of at most %d",
				cfg.R, lin.Name, lin.Out, lin.In, min(lin.In, lin.Out))
		}
	}
	a := &Adapters{Config: cfg, m: m, be: m.Backend()}
	total := 0
	for _, lin := range targets {
		total += cfg.R * (lin.In + lin.Out)
	}
	w, err := a.be.Alloc(total)
	if err != nil {
		return nil, fmt.Errorf("lora: allocate %d adapter weights: %w", total, err)
	}
	g, err := a.be.Alloc(total)
	if err != nil {
		a.be.Free(w)
		return nil, fmt.Errorf("lora: allocate %d adapter gradients: %w", total, err)
	}
	a.weights, a.grads = w, g
	off := 0
	param := func(name string, rows, cols int) *nn.Param {
		n := rows * cols
		p := &nn.Param{Name: name, Shape: []int{rows, cols}, W: w.Slice(off, n), G: g.Slice(off, n), Decay: true, PaddingIdx: -1}
		off += n
		return p
	}
	scaling := float32(cfg.Scaling())
	for _, lin := range targets {
		ad := &Adapter{
			Module: lin.Name, In: lin.In, Out: lin.Out, R: cfg.R,
			Scaling: scaling, Dropout: float32(cfg.Dropout), lin: lin, set: a,
		}
		ad.A = param(lin.Name+".lora_A.weight", cfg.R, lin.In)
		ad.B = param(lin.Name+".lora_B.weight", lin.Out, cfg.R)
		a.list = append(a.list, ad)
	}
	// Keep the base head so that Detach can restore it after Load
	// replaced it with the adapter's.
	a.baseHead = map[string][]float32{}
	for _, p := range m.HeadParams() {
		v := make([]float32, p.Size())
		a.be.Download(v, p.W)
		a.baseHead[p.Name] = v
	}
	head := map[*nn.Param]bool{}
	for _, p := range m.HeadParams() {
		head[p] = true
	}
	if err := m.EnableGrads(func(p *nn.Param) bool { return head[p] }); err != nil {
		a.release()
		return nil, fmt.Errorf("lora: freeze the base model: %w", err)
	}
	for _, ad := range a.list {
		ad.lin.Adapter = ad
	}
	return a, nil
}

func exampleNames(names []string) []string {
	if len(names) > 8 {
		names = append(names[:6:6], "…", names[len(names)-1])
	}
	return names
}

// initWeights draws the adapters' initial values (PEFT's reset_lora_parameters).
func (a *Adapters) initWeights(seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0x10a4))
	uniform := func(n, fanIn int) []float32 {
		// kaiming_uniform_(a=√5): gain √(2/(1+5)), bound gain·√3/√fan_in = 1/√fan_in.
		bound := 1 / math.Sqrt(float64(fanIn))
		v := make([]float32, n)
		for i := range v {
			v[i] = float32((2*rng.Float64() - 1) * bound)
		}
		return v
	}
	for _, ad := range a.list {
		var av, bv []float32
		switch a.Config.Init {
		case InitGaussian:
			av = make([]float32, ad.A.Size())
			for i := range av {
				av[i] = float32(rng.NormFloat64() / float64(ad.R))
			}
			bv = make([]float32, ad.B.Size())
		case InitRandom:
			av = uniform(ad.A.Size(), ad.In)
			bv = uniform(ad.B.Size(), ad.R)
		default:
			av = uniform(ad.A.Size(), ad.In)
			bv = make([]float32, ad.B.Size())
		}
		a.be.Upload(ad.A.W, av)
		a.be.Upload(ad.B.W, bv)
	}
}

// List returns the adapters in model order.
func (a *Adapters) List() []*Adapter { return a.list }

// WrappedModules returns the Hugging Face names of the wrapped modules, in
// model order.
func (a *Adapters) WrappedModules() []string {
	out := make([]string, len(a.list))
	for i, ad := range a.list {
		out[i] = ad.Module
	}
	return out
}

// Params returns every lora_A and lora_B parameter, in model order (A then
// B per module).
func (a *Adapters) Params() []*nn.Param {
	var ps []*nn.Param
	for _, ad := range a.list {
		ps = append(ps, ad.A, ad.B)
	}
	return ps
}

// Trainable returns the parameters to optimise: every lora_A/lora_B, then
// the classification head. Pass it to optim.NewAdamW.
func (a *Adapters) Trainable() []*nn.Param {
	return append(a.Params(), a.m.HeadParams()...)
}

// NumTrainable is the number of trainable values (adapters plus head).
func (a *Adapters) NumTrainable() int {
	n := 0
	for _, p := range a.Trainable() {
		n += p.Size()
	}
	return n
}

// ZeroGrads sets the adapters' gradients to zero. The head's gradients
// are the model's: clear them with m.ZeroGrads.
func (a *Adapters) ZeroGrads() {
	if a.grads != nil {
		a.be.Fill(a.grads, 0)
	}
}

// Merged reports whether the adapters are merged into the base weights.
func (a *Adapters) Merged() bool { return a.merged }

// Merge adds scaling·B·A to the weight of every wrapped Linear (through
// the backend's LoraMerge) and switches the adapters off, so that the
// model computes the same function as plain Linears. The head is already
// the adapter's. Save the result with hfmodel.Save.
func (a *Adapters) Merge() error {
	if a.detached {
		return errors.New("lora: merge after Detach")
	}
	if a.merged {
		return errors.New("lora: the adapters are already merged")
	}
	for _, ad := range a.list {
		a.be.LoraMerge(ad.lin.W.W, ad.A.W, ad.B.W, ad.Out, ad.In, ad.R, ad.Scaling)
		ad.lin.Adapter = nil
	}
	if err := a.be.Sync(); err != nil {
		return fmt.Errorf("lora: merge: %w", err)
	}
	a.merged = true
	return nil
}

// Unmerge subtracts scaling·B·A again (the base weights come back up to
// float32 rounding) and switches the adapters back on.
func (a *Adapters) Unmerge() error {
	if a.detached {
		return errors.New("lora: unmerge after Detach")
	}
	if !a.merged {
		return errors.New("lora: the adapters are not merged")
	}
	for _, ad := range a.list {
		a.be.LoraMerge(ad.lin.W.W, ad.A.W, ad.B.W, ad.Out, ad.In, ad.R, -ad.Scaling)
		ad.lin.Adapter = ad
	}
	if err := a.be.Sync(); err != nil {
		return fmt.Errorf("lora: unmerge: %w", err)
	}
	a.merged = false
	return nil
}

// Detach removes the adapters from the model (unmerging them first when
// merged), restores the base model's head and frees the adapters' and the
// head's gradient buffers, leaving the plain base model. Another adapter
// can then be attached or loaded.
func (a *Adapters) Detach() error {
	if a.detached {
		return nil
	}
	if a.merged {
		if err := a.Unmerge(); err != nil {
			return err
		}
	}
	for _, ad := range a.list {
		ad.lin.Adapter = nil
	}
	for _, p := range a.m.HeadParams() {
		if v, ok := a.baseHead[p.Name]; ok {
			a.be.Upload(p.W, v)
		}
	}
	if err := a.m.EnableGrads(func(*nn.Param) bool { return false }); err != nil {
		return fmt.Errorf("lora: detach: %w", err)
	}
	a.release()
	a.detached = true
	if err := a.be.Sync(); err != nil {
		return fmt.Errorf("lora: detach: %w", err)
	}
	return nil
}

func (a *Adapters) release() {
	for _, ad := range a.list {
		if ad.lin.Adapter == ad {
			ad.lin.Adapter = nil
		}
		if ad.u != nil {
			a.be.Free(ad.u)
			ad.u = nil
		}
	}
	for _, b := range []*backend.Buf{&a.weights, &a.grads, &a.scratchX, &a.scratchG} {
		if *b != nil {
			a.be.Free(*b)
			*b = nil
		}
	}
}

// scratch returns the first n values of *buf, growing it as needed.
func (a *Adapters) scratch(buf *backend.Buf, n int) (backend.Buf, error) {
	if *buf == nil || (*buf).Len() < n {
		if *buf != nil {
			a.be.Free(*buf)
			*buf = nil
		}
		b, err := a.be.Alloc(n)
		if err != nil {
			return nil, fmt.Errorf("lora: allocate %d scratch values: %w", n, err)
		}
		*buf = b
	}
	return (*buf).Slice(0, n), nil
}

// sortedTargets returns the target list sorted, as PEFT writes it.
func sortedTargets(t []string) []string {
	s := append([]string(nil), t...)
	sort.Strings(s)
	return s
}
