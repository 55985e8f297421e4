package nn

import (
	"fmt"
	"math/rand/v2"

	"github.com/rerank-go/rerank/backend"
)

// Param is one named parameter tensor, a view into the model's single
// weight allocation. Its gradient G is a view into the gradient allocation,
// or nil while the parameter is frozen.
type Param struct {
	// Name is the Hugging Face tensor name, e.g.
	// "bert.encoder.layer.0.attention.self.query.weight".
	Name  string
	Shape []int
	W     backend.Buf
	G     backend.Buf
	// Decay tells whether AdamW applies weight decay, by Hugging Face
	// Trainer's rule: not for biases nor LayerNorm parameters.
	Decay bool
	// PaddingIdx is the embedding row that never receives gradient and
	// starts at zero (torch's nn.Embedding padding_idx), or -1.
	PaddingIdx int32

	off  int // offset in the weight allocation
	goff int // offset in the gradient allocation, when G is set
	kind paramKind
}

type paramKind int

const (
	kindLinearW paramKind = iota
	kindBias
	kindEmbedding
	kindLNWeight
	kindLNBias
)

// Size is the number of values.
func (p *Param) Size() int {
	n := 1
	for _, d := range p.Shape {
		n *= d
	}
	return n
}

// Linear is a fully connected layer y = x·Wᵀ + b, with W of shape
// [Out, In], optionally extended by an Adapter (LoRA).
type Linear struct {
	// Name is the Hugging Face module name, e.g.
	// "bert.encoder.layer.0.attention.self.query".
	Name    string
	In, Out int
	W, B    *Param
	Adapter Adapter

	site uint64 // dropout stream of the adapter
}

// Adapter adds a trainable correction to a Linear's output. Package lora
// implements it. The adapter adds to the output, never overwrites it.
type Adapter interface {
	// Forward adds the adapter's output for a.X to a.Y.
	Forward(be backend.Backend, a AdapterForward) error
	// Backward accumulates the adapter's parameter gradients from a.DY
	// and adds its contribution to the input gradient a.DX. It is called
	// after the Forward of the same rows.
	Backward(be backend.Backend, a AdapterBackward) error
}

// AdapterForward holds the operands of Adapter.Forward: X is Rows×In with
// leading dimension LDX, Y is Rows×Out with leading dimension LDY. Train
// and Seed select the adapter's own dropout.
type AdapterForward struct {
	X    backend.Buf
	LDX  int
	Y    backend.Buf
	LDY  int
	Rows int

	Train bool
	Seed  uint64
}

// AdapterBackward holds the operands of Adapter.Backward: X as in the
// forward pass, the output gradient DY (Rows×Out, leading dimension
// LDDY) and the input gradient DX (Rows×In, leading dimension LDDX; nil
// when not needed). Train and Seed are the forward pass's.
type AdapterBackward struct {
	X    backend.Buf
	LDX  int
	DY   backend.Buf
	LDDY int
	DX   backend.Buf
	LDDX int
	Rows int

	Train bool
	Seed  uint64
}

// layout builds every parameter of cfg in allocation order. The order keeps
// each layer's query, key and value weights (and biases) adjacent, so that
// one GEMM computes all three projections.
func layout(cfg Config) []*Param {
	var ps []*Param
	off := 0
	add := func(name string, kind paramKind, shape ...int) *Param {
		p := &Param{Name: name, Shape: shape, off: off, kind: kind, PaddingIdx: -1}
		p.Decay = kind == kindLinearW || kind == kindEmbedding
		off += p.Size()
		ps = append(ps, p)
		return p
	}
	pre := cfg.Arch.Prefix()
	H, I := cfg.Hidden, cfg.Intermediate
	w := add(pre+".embeddings.word_embeddings.weight", kindEmbedding, cfg.VocabSize, H)
	w.PaddingIdx = int32(cfg.PadID)
	pos := add(pre+".embeddings.position_embeddings.weight", kindEmbedding, cfg.MaxPositions, H)
	if cfg.Arch == XLMRoberta {
		pos.PaddingIdx = int32(cfg.PadID)
	}
	add(pre+".embeddings.token_type_embeddings.weight", kindEmbedding, cfg.TypeVocab, H)
	add(pre+".embeddings.LayerNorm.weight", kindLNWeight, H)
	add(pre+".embeddings.LayerNorm.bias", kindLNBias, H)
	for l := 0; l < cfg.Layers; l++ {
		p := fmt.Sprintf("%s.encoder.layer.%d.", pre, l)
		for _, m := range []string{"query", "key", "value"} {
			add(p+"attention.self."+m+".weight", kindLinearW, H, H)
		}
		for _, m := range []string{"query", "key", "value"} {
			add(p+"attention.self."+m+".bias", kindBias, H)
		}
		add(p+"attention.output.dense.weight", kindLinearW, H, H)
		add(p+"attention.output.dense.bias", kindBias, H)
		add(p+"attention.output.LayerNorm.weight", kindLNWeight, H)
		add(p+"attention.output.LayerNorm.bias", kindLNBias, H)
		add(p+"intermediate.dense.weight", kindLinearW, I, H)
		add(p+"intermediate.dense.bias", kindBias, I)
		add(p+"output.dense.weight", kindLinearW, H, I)
		add(p+"output.dense.bias", kindBias, H)
		add(p+"output.LayerNorm.weight", kindLNWeight, H)
		add(p+"output.LayerNorm.bias", kindLNBias, H)
	}
	if cfg.Arch == XLMRoberta {
		add("classifier.dense.weight", kindLinearW, H, H)
		add("classifier.dense.bias", kindBias, H)
		add("classifier.out_proj.weight", kindLinearW, cfg.NumLabels, H)
		add("classifier.out_proj.bias", kindBias, cfg.NumLabels)
	} else {
		add(pre+".pooler.dense.weight", kindLinearW, H, H)
		add(pre+".pooler.dense.bias", kindBias, H)
		add("classifier.weight", kindLinearW, cfg.NumLabels, H)
		add("classifier.bias", kindBias, cfg.NumLabels)
	}
	return ps
}

// InitRandom fills every parameter as transformers' _init_weights does for
// a fresh model: Linear and Embedding weights from N(0, std²) (std is
// initializer_range, 0.02 for the real checkpoints), the padding row of
// padding_idx embeddings zero, biases zero, LayerNorm weight 1 and bias 0.
// The draw is deterministic in seed.
func (m *Model) InitRandom(seed uint64, std float32) {
	_ = m.InitRandomEach(seed, std, nil)
}

// InitRandomEach is InitRandom (the same values), calling fn, when not
// nil, once each parameter is drawn, in Params order, so that a caller can
// use the parameters as they arrive: rerank bench --int8 quantizes each
// weight as it is drawn (nn/infer Int8Weights.Loaded) instead of holding
// the whole float32 model first. An error from fn (or from the backend's
// Sync before it) stops the draw and is returned.
func (m *Model) InitRandomEach(seed uint64, std float32, fn func(*Param) error) error {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for _, p := range m.params {
		InitParam(m.be, p, rng, std)
		if fn == nil {
			continue
		}
		if err := m.be.Sync(); err != nil {
			return err
		}
		if err := fn(p); err != nil {
			return err
		}
	}
	return nil
}

// InitParam initialises one parameter as InitRandom does, drawing from rng.
// Values are drawn and uploaded in chunks, so that initialising a large
// embedding needs no host copy of it.
func InitParam(be backend.Backend, p *Param, rng *rand.Rand, std float32) {
	const chunk = 1 << 16
	n := p.Size()
	v := make([]float32, min(n, chunk))
	skipLo, skipHi := -1, -1
	if p.kind == kindEmbedding && p.PaddingIdx >= 0 && len(p.Shape) == 2 {
		skipLo = int(p.PaddingIdx) * p.Shape[1]
		skipHi = skipLo + p.Shape[1]
	}
	for off := 0; off < n; off += chunk {
		c := v[:min(chunk, n-off)]
		switch p.kind {
		case kindLinearW, kindEmbedding:
			for i := range c {
				c[i] = float32(rng.NormFloat64()) * std
				if j := off + i; j >= skipLo && j < skipHi {
					c[i] = 0
				}
			}
		case kindLNWeight:
			for i := range c {
				c[i] = 1
			}
		default:
			clear(c)
		}
		be.Upload(p.W.Slice(off, len(c)), c)
	}
}
