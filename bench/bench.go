// Package bench measures the CPU speed of cross-encoder inference and
// training steps at given shapes, and prints them in the layout of the
// PyTorch reference (../shared/bench/torch_cpu_ref.py) so that the two
// can be compared line by line: pairs/s, tokens/s, step time, GFLOP/s of
// the matrix products, the share of the measured FMA peak, and peak RSS.
package bench

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/loss"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
	"github.com/rerank-go/rerank/optim"
)

// Preset is a model shape of the reference script.
type Preset struct {
	Hidden, Layers, Heads, Inter, Vocab int
	// Arch is BERT for the reference script's shapes (it builds every one
	// as a BERT); the full-size XLM-R presets are XLM-R.
	Arch nn.Arch
	// Tokens is the longest sequence (0: 512).
	Tokens int
}

// Presets are the shapes torch_cpu_ref.py knows, by the same names, and
// the full-size XLM-R rerankers: xlmr-large = bge-reranker-large,
// xlmr-m3 = bge-reranker-v2-m3 (8192 tokens).
var Presets = map[string]Preset{
	"minilm-l6":  {Hidden: 384, Layers: 6, Heads: 12, Inter: 1536, Vocab: 30522},
	"minilm-l12": {Hidden: 384, Layers: 12, Heads: 12, Inter: 1536, Vocab: 30522},
	"bert-base":  {Hidden: 768, Layers: 12, Heads: 12, Inter: 3072, Vocab: 30522},
	"xlmr-base":  {Hidden: 768, Layers: 12, Heads: 12, Inter: 3072, Vocab: 250002},
	"bert-large": {Hidden: 1024, Layers: 24, Heads: 16, Inter: 4096, Vocab: 30522},
	"xlmr-large": {Hidden: 1024, Layers: 24, Heads: 16, Inter: 4096, Vocab: 250002, Arch: nn.XLMRoberta},
	"xlmr-m3":    {Hidden: 1024, Layers: 24, Heads: 16, Inter: 4096, Vocab: 250002, Arch: nn.XLMRoberta, Tokens: 8192},
}

// PresetNames lists the presets, sorted.
func PresetNames() []string { return slices.Sorted(maps.Keys(Presets)) }

// Options select one benchmark run.
type Options struct {
	Shape string
	Seq   int // padded sequence length
	// Batch sequences per step, in groups of Group (1 positive + Group-1
	// negatives) for the training loss.
	Batch, Group  int
	Warmup, Steps int
	Dropout       float32
	LR            float32
	Seed          uint64
	// Lengths, when set, are the real lengths of the rows (cycled); the
	// rest of each row is padding. Nil means every row is Seq real tokens,
	// as in the reference script.
	Lengths []int
	// Backend computes the steps.
	Backend backend.Backend
	// PackBudget says whether inference packs the weights once, before
	// its steps: 0 means no. Otherwise every weight is packed in the
	// float32 weights' place (infer.Runner.PackWeightsDropping), as
	// crossencoder scores a loaded model; with KeepFloat32, PackBudget is
	// the most bytes packed beside the float32 weights
	// (infer.Runner.PackWeights; a negative value: all).
	PackBudget int64
	// Int8 quantizes the encoder layers' weights to int8 for inference
	// instead of packing them, as scoring with crossencoder.Options.Int8
	// does: each weight as the model is made, its float32 copy dropped
	// (infer.Int8Weights), or with KeepFloat32 all at once beside the
	// float32 weights (infer.Runner.QuantizeWeights).
	Int8 bool
	// KeepFloat32 keeps the float32 weights beside the packed or int8
	// copy in inference, as crossencoder.Options.KeepFloat32.
	KeepFloat32 bool
	// LoraRank > 0 trains LoRA adapters of that rank (alpha 2·rank, on
	// lora.DefaultTargets) and the head instead of every weight.
	LoraRank int
	// Checkpointing turns on gradient checkpointing in training.
	Checkpointing bool
	// Attention chooses stored or tiled attention (nn.Model.Attention).
	Attention nn.AttentionOptions
	// Dir is the model directory the save mode writes and the load mode
	// reads.
	Dir string
	// Layers, when > 0, replaces the preset's layer count: runs at a few
	// depths give the memory per layer of shapes too large to run whole.
	Layers int
}

// Result is one mode's measurement.
type Result struct {
	Mode, Shape                     string
	Preset                          Preset
	Seq, N, Threads                 int
	RealTokens                      int
	StepMedian, StepMin, StepMax    float64
	FwdMedian, BwdMedian, OptMedian float64
	PairsPerS, TokensPerS           float64
	GFLOPPerStep, GFLOPs            float64
	// Lanes is the number of lanes inference split each batch across (see
	// infer.Runner); training runs every op across the cores instead.
	Lanes int
	// PackedMiB is the size of the weights inference packed once
	// (Options.PackBudget).
	PackedMiB float64
	// Int8 says inference ran with int8 weights (Options.Int8); PackedMiB
	// is then their size.
	Int8 bool
	// DroppedMiB is the size of the float32 weights that inference
	// dropped for their packed or int8 copy (Options.KeepFloat32 unset).
	DroppedMiB float64
	// ExecGFLOPs counts the products the step executes (ExecutedFLOPs)
	// instead of the reference's count; the FMA-peak share uses it.
	ExecGFLOPs                   float64
	FMAPeakGFLOPs                float64
	PeakRSSMiB                   float64
	ParamsTotal, ParamsTrainable int
	OwnCores, OtherLoad, Load1   float64
	AllocsPerStep                float64
	// LoraRank, Checkpointing and Tiled describe the training setup and
	// the attention the steps took.
	LoraRank      int
	Checkpointing bool
	Tiled         bool
	// FileMiB is the size of model.safetensors (save and load modes).
	FileMiB float64
}

// FLOPs counts the matrix-product FLOPs of one forward pass exactly as the
// reference script's count_flops does (all positions, padding included).
// GFLOP/s from this count compare directly with the reference's, though
// our pass executes less (see ExecutedFLOPs).
func FLOPs(p Preset, nSeq, seq int) float64 {
	h, L, I, l := float64(p.Hidden), float64(p.Layers), float64(p.Inter), float64(seq)
	tok := float64(nSeq) * l
	perLayer := 2*tok*(4*h*h+2*h*I) + 2*2*float64(nSeq)*l*l*h
	head := 2 * float64(nSeq) * (h*h + h)
	return L*perLayer + head
}

// ExecutedFLOPs counts the matrix-product FLOPs one forward pass of nn
// executes on b with padding skipped (nn.RunOptions.SkipPadding): the
// dense layers run each row up to its last real token, attention runs
// every query of the padded row over the keys up to it, and the last layer
// runs its query, key and value projections and attention at every such
// position but the rest at position 0 only (nn.RunOptions.AllPositions
// off; in inference its attention runs for position 0 alone, which this
// count ignores).
func ExecutedFLOPs(p Preset, b *nn.Batch) float64 {
	h, L, I, S := float64(p.Hidden), float64(p.Layers), float64(p.Inter), float64(b.S)
	n := float64(b.N)
	var rows, attn float64
	for i := 0; i < b.N; i++ {
		l := float64(b.RowLen(i))
		rows += l
		attn += 2 * 2 * S * l * h
	}
	full := 2*rows*(4*h*h+2*h*I) + attn
	last := 2*rows*3*h*h + attn + 2*n*(h*h+2*h*I)
	return (L-1)*full + last + 2*n*(h*h+h)
}

// Config returns the config of a preset with the given dropout: BERT with
// 514 positions (the reference script's), or XLM-R as the real
// checkpoints (padding id 1, one token type, Tokens + 2 positions).
func Config(p Preset, dropout float32) nn.Config {
	c := nn.Config{Arch: nn.BERT, VocabSize: p.Vocab, Hidden: p.Hidden, Layers: p.Layers, Heads: p.Heads,
		Intermediate: p.Inter, MaxPositions: max(514, p.Tokens), TypeVocab: 2, LayerNormEps: 1e-12,
		HiddenDropout: dropout, AttentionDropout: dropout, ClassifierDropout: dropout, NumLabels: 1}
	if p.Arch == nn.XLMRoberta {
		c.Arch, c.PadID, c.TypeVocab, c.LayerNormEps = nn.XLMRoberta, 1, 1, 1e-5
		c.MaxPositions = max(512, p.Tokens) + c.PadID + 1
	}
	return c
}

// MakeBatch builds the reference script's batch: random ids above 1000,
// id 1 first, token type 1 from seq/4 on. With lengths, row i keeps
// lengths[i%len] real tokens and the rest is padding (id 0, type 0,
// mask 0). XLM-R presets start with <s> (id 0), pad with id 1 and have a
// single token type.
func MakeBatch(p Preset, n, seq int, lengths []int, seed uint64) *nn.Batch {
	r := rand.New(rand.NewPCG(seed, 7))
	b := &nn.Batch{N: n, S: seq, InputIDs: make([]int32, n*seq), TypeIDs: make([]int32, n*seq), Mask: make([]int32, n*seq)}
	lo := min(1000, p.Vocab/2)
	first, pad := int32(1), int32(0)
	if p.Arch == nn.XLMRoberta {
		first, pad = 0, 1
	}
	for i := 0; i < n; i++ {
		real := seq
		if len(lengths) > 0 {
			real = min(seq, max(1, lengths[i%len(lengths)]))
		}
		for s := 0; s < seq; s++ {
			k := i*seq + s
			if s >= real {
				b.InputIDs[k] = pad
				continue
			}
			b.InputIDs[k] = int32(lo + r.IntN(p.Vocab-lo))
			if s == 0 {
				b.InputIDs[k] = first
			}
			if s >= seq/4 && p.Arch != nn.XLMRoberta {
				b.TypeIDs[k] = 1
			}
			b.Mask[k] = 1
		}
	}
	return b
}

// Run measures one mode: "infer" (forward only, dropout off) or "train"
// (forward, group softmax cross-entropy, backward, AdamW step, dropout
// on).
func Run(mode string, o Options) (Result, error) {
	p, ok := Presets[o.Shape]
	if !ok {
		return Result{}, fmt.Errorf("unknown shape %q: use one of %s", o.Shape, strings.Join(PresetNames(), ", "))
	}
	if o.Layers > 0 {
		p.Layers = o.Layers
	}
	if o.Batch <= 0 || o.Group <= 0 || o.Batch%o.Group != 0 {
		return Result{}, fmt.Errorf("batch %d is not a positive multiple of the group size %d", o.Batch, o.Group)
	}
	switch mode {
	case "infer", "train":
	case "save", "load":
		return saveLoad(mode, p, o)
	default:
		return Result{}, fmt.Errorf("unknown mode %q: use infer, train, save or load", mode)
	}
	if o.Steps <= 0 {
		return Result{}, fmt.Errorf("steps must be positive, got %d", o.Steps)
	}
	be := o.Backend
	var m *nn.Model
	var err error
	// int8 inference quantizes each weight as it is read or drawn and
	// drops its float32 copy, as a loaded model scores (crossencoder):
	// the float32 encoder is never whole in memory.
	var q8 *infer.Int8Weights
	loaded := func(net *nn.Model, prm *nn.Param) error {
		if q8 == nil {
			var err error
			if q8, err = infer.NewInt8Weights(net, infer.Int8Options{Drop: true}); err != nil {
				return err
			}
		}
		return q8.Loaded(prm)
	}
	quantize := o.Int8 && mode == "infer" && !o.KeepFloat32
	if o.Dir != "" {
		// The weights of a saved model (the save mode's), as a user's run
		// would read them, instead of a fresh draw.
		lo := hfmodel.LoadOptions{}
		if quantize {
			lo.OnParam = loaded
		}
		m, _, err = hfmodel.Load(be, o.Dir, lo)
		if q8 != nil {
			err = errors.Join(err, q8.Wait())
		}
		if err != nil {
			return Result{}, err
		}
		if mode == "train" {
			m.Cfg.HiddenDropout, m.Cfg.AttentionDropout, m.Cfg.ClassifierDropout = o.Dropout, o.Dropout, o.Dropout
		}
	} else {
		if m, err = nn.New(be, Config(p, o.Dropout)); err != nil {
			return Result{}, err
		}
		if quantize {
			err = m.InitRandomEach(o.Seed+1, 0.02, func(prm *nn.Param) error { return loaded(m, prm) })
			if q8 != nil {
				err = errors.Join(err, q8.Wait())
			}
			if err != nil {
				return Result{}, err
			}
		} else {
			m.InitRandom(o.Seed+1, 0.02)
		}
	}
	ckpt := o.Checkpointing && mode == "train"
	m.Attention = o.Attention
	var res0 Result
	var opt *optim.AdamW
	var adapters *lora.Adapters
	if mode == "train" {
		trainable := m.Params()
		if o.LoraRank > 0 {
			cfg := lora.DefaultConfig()
			cfg.R, cfg.Alpha = o.LoraRank, float64(2*o.LoraRank)
			if adapters, err = lora.Attach(m, cfg, o.Seed+2); err != nil {
				return Result{}, err
			}
			trainable = adapters.Trainable()
		} else if err := m.EnableGrads(nil); err != nil {
			return Result{}, err
		}
		if opt, err = optim.NewAdamW(be, trainable, 0.01); err != nil {
			return Result{}, err
		}
		for _, prm := range trainable {
			res0.ParamsTrainable += prm.Size()
		}
	}
	batch := MakeBatch(p, o.Batch, o.Seq, o.Lengths, o.Seed)
	res := Result{Mode: mode, Shape: o.Shape, Preset: p, Seq: o.Seq, N: o.Batch, Threads: runtime.GOMAXPROCS(0),
		LoraRank: o.LoraRank, Checkpointing: ckpt, Tiled: m.Attention.Tiled(o.Seq),
		ParamsTrainable: res0.ParamsTrainable}
	if mode == "infer" {
		res.LoraRank = 0
	}
	for _, v := range batch.Mask {
		res.RealTokens += int(v)
	}
	for _, prm := range m.Params() {
		res.ParamsTotal += prm.Size()
	}
	// Inference runs the way crossencoder scores: the batch's sequences
	// split across the backend's lanes (one per core on the CPU).
	lanes, err := infer.New(m)
	if err != nil {
		return Result{}, err
	}
	o0 := nn.RunOptions{Train: mode == "train", SkipPadding: true, GradientCheckpointing: ckpt}
	forward := func(b *nn.Batch, seed uint64) ([]float32, error) {
		o := o0
		o.Seed = seed
		return m.Forward(b, o)
	}
	if mode == "infer" {
		forward = func(b *nn.Batch, _ uint64) ([]float32, error) { return lanes.Forward(b) }
		res.Lanes = lanes.Count()
		// As a loaded model scores (crossencoder): one copy of each
		// weight, the packed or the int8 one, unless KeepFloat32.
		pack := func() (func(), error) { return lanes.PackWeights(o.PackBudget) }
		switch {
		case o.Int8 && o.KeepFloat32:
			pack = lanes.QuantizeWeights
		case o.Int8:
			// Quantized as the model was made.
			pack = func() (func(), error) { return lanes.UseInt8Weights(q8) }
		case o.PackBudget != 0 && !o.KeepFloat32:
			pack = lanes.PackWeightsDropping
		}
		release, err := pack()
		if err != nil {
			return Result{}, err
		}
		defer release()
		res.PackedMiB = float64(lanes.PackedBytes()) / (1 << 20)
		res.DroppedMiB = float64(lanes.DroppedBytes()) / (1 << 20)
		res.Int8 = o.Int8
	}
	// Every buffer of the loop is allocated up front, so that AllocsPerStep
	// counts the steps' allocations only.
	n := o.Warmup + o.Steps
	fwd, bwd, upd := make([]float64, 0, n), make([]float64, 0, n), make([]float64, 0, n)
	var dl []float32 // the loss gradient, reused
	step := func(i int) error {
		seed := o.Seed + uint64(i) + 1
		t0 := time.Now()
		logits, err := forward(batch, seed)
		if err != nil {
			return err
		}
		if mode == "infer" {
			return nil
		}
		_, dl, err = loss.AppendGroupSoftmaxCE(dl[:0], logits, o.Group)
		if err != nil {
			return err
		}
		t1 := time.Now()
		m.ZeroGrads()
		if adapters != nil {
			adapters.ZeroGrads()
		}
		if err := m.Backward(dl); err != nil {
			return err
		}
		t2 := time.Now()
		if err := opt.Step(o.LR); err != nil {
			return err
		}
		t3 := time.Now()
		fwd = append(fwd, t1.Sub(t0).Seconds())
		bwd = append(bwd, t2.Sub(t1).Seconds())
		upd = append(upd, t3.Sub(t2).Seconds())
		return nil
	}
	times := make([]float64, 0, o.Steps)
	var busy0, own0 uint64
	var wall0 time.Time
	var ms0 runtime.MemStats
	for i := 0; i < o.Warmup+o.Steps; i++ {
		if i == o.Warmup {
			busy0, own0 = jiffies()
			wall0 = time.Now()
			fwd, bwd, upd = fwd[:0], bwd[:0], upd[:0]
			res.Load1 = loadavg()
			runtime.ReadMemStats(&ms0)
		}
		t0 := time.Now()
		if err := step(i); err != nil {
			return Result{}, err
		}
		if i >= o.Warmup {
			times = append(times, time.Since(t0).Seconds())
		}
	}
	var ms1 runtime.MemStats
	runtime.ReadMemStats(&ms1)
	busy1, own1 := jiffies()
	wall := time.Since(wall0).Seconds()
	const hz = 100 // USER_HZ on Linux
	ncpu := float64(runtime.NumCPU())
	res.OwnCores = float64(own1-own0) / hz / wall
	res.OtherLoad = max(0, (float64(busy1-busy0)-float64(own1-own0))/hz/(wall*ncpu))
	res.AllocsPerStep = float64(ms1.Mallocs-ms0.Mallocs) / float64(o.Steps)
	res.StepMedian, res.StepMin, res.StepMax = Median(times), slices.Min(times), slices.Max(times)
	if len(fwd) > 0 {
		res.FwdMedian, res.BwdMedian, res.OptMedian = Median(fwd), Median(bwd), Median(upd)
	}
	res.PairsPerS = float64(o.Batch) / res.StepMedian
	res.TokensPerS = float64(o.Batch*o.Seq) / res.StepMedian
	f, fx := FLOPs(p, o.Batch, o.Seq), ExecutedFLOPs(p, batch)
	if mode == "train" {
		f, fx = 3*f, 3*fx
	}
	res.GFLOPPerStep = f / 1e9
	res.GFLOPs = f / res.StepMedian / 1e9
	res.ExecGFLOPs = fx / res.StepMedian / 1e9
	res.PeakRSSMiB = PeakRSSMiB()
	return res, nil
}

// saveLoad times writing a fresh model of the preset to o.Dir
// (hfmodel.Save: config.json and model.safetensors) or reading it back
// (hfmodel.Load), and reports the file's size and the peak RSS.
func saveLoad(mode string, p Preset, o Options) (Result, error) {
	if o.Dir == "" {
		return Result{}, errors.New("the save and load modes need a model directory (Options.Dir, rerank bench --dir)")
	}
	res := Result{Mode: mode, Shape: o.Shape, Preset: p, Threads: runtime.GOMAXPROCS(0), Load1: loadavg()}
	var m *nn.Model
	var err error
	t0 := time.Now()
	if mode == "save" {
		if m, err = nn.New(o.Backend, Config(p, 0.1)); err != nil {
			return Result{}, err
		}
		m.InitRandom(o.Seed+1, 0.02)
		t0 = time.Now() // the writing alone
		err = hfmodel.Save(m, nil, o.Dir, "")
	} else {
		m, _, err = hfmodel.Load(o.Backend, o.Dir, hfmodel.LoadOptions{})
	}
	if err != nil {
		return Result{}, err
	}
	sec := time.Since(t0).Seconds()
	res.StepMedian, res.StepMin, res.StepMax = sec, sec, sec
	for _, prm := range m.Params() {
		res.ParamsTotal += prm.Size()
	}
	st, err := os.Stat(filepath.Join(o.Dir, "model.safetensors"))
	if err != nil {
		return Result{}, err
	}
	res.FileMiB = float64(st.Size()) / (1 << 20)
	res.PeakRSSMiB = PeakRSSMiB()
	return res, nil
}

// Median returns the median of v (the mean of the middle two for an even
// count).
func Median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// String formats r like torch_cpu_ref.py's line for the same mode.
func (r Result) String() string {
	var b strings.Builder
	if r.Mode == "save" || r.Mode == "load" {
		fmt.Fprintf(&b, "%s h=%d L=%d vocab=%d %s: %.2fs, model.safetensors %.0f MiB, %.1fM parameters, peak RSS %.0f MiB",
			r.Shape, r.Preset.Hidden, r.Preset.Layers, r.Preset.Vocab, r.Mode, r.StepMedian, r.FileMiB, float64(r.ParamsTotal)/1e6, r.PeakRSSMiB)
		return b.String()
	}
	fmt.Fprintf(&b, "%s h=%d L=%d seq=%d n=%d thr=%d %-5s: %.2f pairs/s, %.0f tok/s, step %.3fs (min %.3f, max %.3f), %.1f GFLOP/s",
		r.Shape, r.Preset.Hidden, r.Preset.Layers, r.Seq, r.N, r.Threads, r.Mode, r.PairsPerS, r.TokensPerS,
		r.StepMedian, r.StepMin, r.StepMax, r.GFLOPs)
	fmt.Fprintf(&b, " (executed %.1f", r.ExecGFLOPs)
	if r.FMAPeakGFLOPs > 0 {
		fmt.Fprintf(&b, ", %.0f%% of FMA peak %.0f", 100*r.ExecGFLOPs/r.FMAPeakGFLOPs, r.FMAPeakGFLOPs)
	}
	b.WriteString(")")
	fmt.Fprintf(&b, ", peak RSS %.0f MiB, trainable %.2fM/%.1fM, own cores %.2f, other load %.0f%%",
		r.PeakRSSMiB, float64(r.ParamsTrainable)/1e6, float64(r.ParamsTotal)/1e6, r.OwnCores, 100*r.OtherLoad)
	if r.Lanes > 1 {
		fmt.Fprintf(&b, ", lanes %d", r.Lanes)
	}
	switch {
	case r.Int8:
		fmt.Fprintf(&b, ", int8 weights %.0f MiB", r.PackedMiB)
	case r.PackedMiB > 0:
		fmt.Fprintf(&b, ", packed weights %.0f MiB", r.PackedMiB)
	}
	if r.DroppedMiB > 0 {
		fmt.Fprintf(&b, " (float32 copy dropped)")
	}
	if r.Mode == "train" {
		fmt.Fprintf(&b, ", fwd/bwd/opt %.3f/%.3f/%.3fs", r.FwdMedian, r.BwdMedian, r.OptMedian)
		if r.LoraRank > 0 {
			fmt.Fprintf(&b, ", LoRA r=%d", r.LoraRank)
		}
		if r.Checkpointing {
			b.WriteString(", checkpointing")
		}
	}
	if r.Tiled {
		b.WriteString(", tiled attention")
	}
	if r.RealTokens < r.N*r.Seq {
		fmt.Fprintf(&b, ", real tokens %d/%d", r.RealTokens, r.N*r.Seq)
	}
	fmt.Fprintf(&b, ", allocs/step %.0f", r.AllocsPerStep)
	return b.String()
}

// FMAPeak measures the float32 FMA throughput of workers cores, in
// GFLOP/s, with an AVX2 loop of independent FMA chains on each core at
// once; 0 when the CPU (or this build) has no such loop.
func FMAPeak(workers int, d time.Duration) float64 {
	if !fmaAvailable() || workers <= 0 {
		return 0
	}
	const iters = 1 << 20
	var total float64
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			fmaLoop(iters / 16) // warm up the clocks
			best := 0.0
			for end := time.Now().Add(d); time.Now().Before(end); {
				t0 := time.Now()
				fmaLoop(iters)
				best = max(best, float64(iters)*fmaFLOPsPerIter/time.Since(t0).Seconds())
			}
			mu.Lock()
			total += best
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total / 1e9
}

// PeakRSSMiB is the process's peak resident set size.
func PeakRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// jiffies returns the machine's busy jiffies (all but idle and iowait) and
// this process's (user + system), as the reference script counts them.
func jiffies() (busy, own uint64) {
	if b, err := os.ReadFile("/proc/stat"); err == nil {
		line, _, _ := strings.Cut(string(b), "\n")
		f := strings.Fields(line)
		for i, s := range f[1:] {
			v, _ := strconv.ParseUint(s, 10, 64)
			if i != 3 && i != 4 {
				busy += v
			}
		}
	}
	if b, err := os.ReadFile("/proc/self/stat"); err == nil {
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 12 {
				u, _ := strconv.ParseUint(f[11], 10, 64)
				k, _ := strconv.ParseUint(f[12], 10, 64)
				own = u + k
			}
		}
	}
	return busy, own
}

// loadavg returns the 1-minute load average, or -1.
func loadavg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
