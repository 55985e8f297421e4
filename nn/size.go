package nn

import (
	"github.com/rerank-go/rerank/backend"
)

// ParamShape is one parameter's Hugging Face name and shape.
type ParamShape struct {
	Name  string
	Shape []int
}

// Layout lists the parameters New allocates for cfg, in allocation
// order, without allocating them (loading checks a weights file's header
// against it first). cfg must be valid (Config.Validate).
func Layout(cfg Config) []ParamShape {
	ps := layout(cfg)
	out := make([]ParamShape, len(ps))
	for i, p := range ps {
		out[i] = ParamShape{Name: p.Name, Shape: p.Shape}
	}
	return out
}

// NumParams is the number of values of every parameter of cfg: what New
// allocates. cfg's sizes must be within Config.Validate's bounds.
func NumParams(cfg Config) int {
	n := 0
	for _, p := range layout(cfg) {
		n += p.Size()
	}
	return n
}

// ActOptions are the run modes that change the size of the activations.
type ActOptions struct {
	// Train: a backward pass follows (gradient buffers or adapters are
	// enabled); false is the no-gradient layout of inference.
	Train bool
	// GradientCheckpointing keeps one layer's activations instead of all.
	GradientCheckpointing bool
	// Attention is the model's attention choice.
	Attention AttentionOptions
	// Packed: batches with padding run packed to their real tokens
	// (RunOptions.SkipPadding), which needs scratch of its own.
	Packed bool
}

// ActivationBytes is the memory the activations of one n×s batch take
// on be: the float32 allocation Forward carves its views from (the same
// arithmetic) and its token buffers. The allocation grows to the largest
// batch a model has run, so this is the peak for batches up to n×s.
func ActivationBytes(be backend.Backend, cfg Config, n, s int, o ActOptions) int64 {
	tiled := o.Attention.Tiled(s)
	save := be.AttentionSaveLen(backend.Attn{N: n, S: s, Heads: cfg.Heads, HeadDim: cfg.HeadDim(), Tiled: tiled})
	return 4*int64(actsSize(cfg, n, s, save, o.GradientCheckpointing, o.Packed, !o.Train)) + 4*4*int64(n*s)
}

// ActivationResidentBytes is the part of ActivationBytes a pass touches,
// and so what the process holds in memory (untouched pages of a fresh
// allocation are never resident): with a set of activations per layer,
// the last layer computes its residual, LayerNorm and feed-forward rows
// at position 0 only (RunOptions.AllPositions unset), so the rest of
// those five buffers stays untouched.
func ActivationResidentBytes(be backend.Backend, cfg Config, n, s int, o ActOptions) int64 {
	b := ActivationBytes(be, cfg, n, s, o)
	if o.Train && !o.GradientCheckpointing && cfg.Layers > 1 {
		b -= 4 * int64(n*s-n) * int64(3*cfg.Hidden+2*cfg.Intermediate) // r1, a, r2 and f1, f2
	}
	return b
}

// actsSize is the number of values the views of acts.ensure take for an
// n×s batch whose attention saves save values per layer.
func actsSize(c Config, n, s, save int, ckpt, packed, noGrad bool) int {
	T, H, I, L := n*s, c.Hidden, c.Intermediate, c.Layers
	nPer := L
	if ckpt || noGrad {
		nPer = 1
	}
	perSize := 3*T*H + save + T*H + T*H + 2*T + T*H + 2*T*I + T*H + 2*T
	size := T*H + 2*T + (L+1)*T*H + nPer*perSize +
		4*n*H + // xCls, ctxCls, dctxCls, qCls
		4*n*H + n*c.NumLabels + // head
		n*c.NumLabels + 4*n*H + // head backward
		4*T*H + 3*T*H + T*I // layer backward
	if noGrad {
		// No backward scratch; within the one layer set, the GELU runs in
		// place (f2 = f1) and the output residual reuses the attention
		// residual's memory (r2 = r1).
		size -= n*c.NumLabels + 4*n*H + 4*T*H + 3*T*H + T*I
		size -= T*I + T*H
	}
	if packed {
		size += 4 * T * H // qkvP, ctxP
		if !noGrad {
			size += 4 * T * H // dctxPad, dqkvPad
		}
	}
	return size
}
