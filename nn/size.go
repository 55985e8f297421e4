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

// ActOptions are the run modes that change the size of the activations
// of Model.Forward (the training path; an inference runner's are
// infer.ActivationBytes).
type ActOptions struct {
	// GradientCheckpointing keeps one layer's activations instead of all.
	GradientCheckpointing bool
	// Attention is the model's attention choice.
	Attention AttentionOptions
	// Packed: batches with padding run packed to their real tokens
	// (RunOptions.SkipPadding), which needs scratch of its own.
	Packed bool
}

// ActivationBytes is the memory the activations of one n×s batch take
// on be: the float32 and int32 allocations Forward carves its views from,
// sized by a counting pass of the very code that carves them. The
// allocations grow to the largest batch a model has run, so this is the
// peak for batches up to n×s.
func ActivationBytes(be backend.Backend, cfg Config, n, s int, o ActOptions) int64 {
	tiled := o.Attention.Tiled(s)
	save := be.AttentionSaveLen(backend.Attn{N: n, S: s, Heads: cfg.Heads, HeadDim: cfg.HeadDim(), Tiled: tiled})
	floats, ints := actsSize(cfg, actShape{n: n, s: s, save: save, ckpt: o.GradientCheckpointing, packed: o.Packed, tiled: tiled})
	return 4*int64(floats) + 4*int64(ints)
}

// ActivationResidentBytes is the part of ActivationBytes a pass touches,
// and so what the process holds in memory (untouched pages of a fresh
// allocation are never resident): with a set of activations per layer,
// the last layer computes its residual, LayerNorm and feed-forward rows
// at position 0 only (RunOptions.AllPositions unset), so the rest of
// those five buffers stays untouched.
func ActivationResidentBytes(be backend.Backend, cfg Config, n, s int, o ActOptions) int64 {
	b := ActivationBytes(be, cfg, n, s, o)
	if !o.GradientCheckpointing && cfg.Layers > 1 {
		b -= 4 * int64(n*s-n) * int64(3*cfg.Hidden+2*cfg.Intermediate) // r1, a, r2 and f1, f2
	}
	return b
}
