// Package optim holds the optimizer and learning-rate schedule of
// training: AdamW exactly as torch.optim.AdamW computes it, with Hugging
// Face Trainer's weight-decay groups, linear warmup then linear decay, and
// global gradient-norm clipping.
package optim

import (
	"errors"
	"fmt"
	"math"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/nn"
)

// AdamW is torch.optim.AdamW (amsgrad off) over a set of parameters. Only
// parameters with a gradient buffer are updated, and only they get moment
// buffers.
type AdamW struct {
	Beta1, Beta2, Eps float32
	// WeightDecay applies to parameters whose Decay flag is set (Hugging
	// Face Trainer's rule: not biases, not LayerNorm).
	WeightDecay float32

	be     backend.Backend
	params []*nn.Param
	m, v   []backend.Buf
	step   int
}

// NewAdamW allocates moment buffers for every parameter of params that has
// a gradient, with torch's defaults for betas and eps.
func NewAdamW(be backend.Backend, params []*nn.Param, weightDecay float32) (*AdamW, error) {
	o := &AdamW{Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: weightDecay, be: be}
	for _, p := range params {
		if p.G == nil {
			continue
		}
		m, err := be.Alloc(p.Size())
		if err != nil {
			return nil, fmt.Errorf("adamw: allocate moments of %s: %w", p.Name, err)
		}
		v, err := be.Alloc(p.Size())
		if err != nil {
			return nil, fmt.Errorf("adamw: allocate moments of %s: %w", p.Name, err)
		}
		o.params = append(o.params, p)
		o.m = append(o.m, m)
		o.v = append(o.v, v)
	}
	if len(o.params) == 0 {
		return nil, errors.New("adamw: no trainable parameter (none has a gradient buffer)")
	}
	return o, nil
}

// Params returns the parameters the optimizer updates.
func (o *AdamW) Params() []*nn.Param { return o.params }

// StepCount returns the number of updates applied so far.
func (o *AdamW) StepCount() int { return o.step }

// Step applies one update with learning rate lr.
func (o *AdamW) Step(lr float32) error {
	o.step++
	for i, p := range o.params {
		wd := float32(0)
		if p.Decay {
			wd = o.WeightDecay
		}
		o.be.AdamW(p.W, p.G, o.m[i], o.v[i], backend.AdamWStep{
			LR: lr, Beta1: o.Beta1, Beta2: o.Beta2, Eps: o.Eps, WeightDecay: wd, Step: o.step,
		})
	}
	if err := o.be.Sync(); err != nil {
		return fmt.Errorf("adamw step %d: %w", o.step, err)
	}
	return nil
}

// State is the optimizer's resumable state: the step count and, per
// parameter name, the first and second moments.
type State struct {
	Step int
	M, V map[string][]float32
}

// State downloads the optimizer state for a checkpoint.
func (o *AdamW) State() (*State, error) {
	s := &State{Step: o.step, M: map[string][]float32{}, V: map[string][]float32{}}
	for i, p := range o.params {
		m, v := make([]float32, p.Size()), make([]float32, p.Size())
		o.be.Download(m, o.m[i])
		o.be.Download(v, o.v[i])
		s.M[p.Name], s.V[p.Name] = m, v
	}
	return s, o.be.Sync()
}

// SetState restores a state saved by State, checking every tensor.
func (o *AdamW) SetState(s *State) error {
	for i, p := range o.params {
		m, okm := s.M[p.Name]
		v, okv := s.V[p.Name]
		if !okm || !okv {
			return fmt.Errorf("adamw state: no moments for %s", p.Name)
		}
		if len(m) != p.Size() || len(v) != p.Size() {
			return fmt.Errorf("adamw state: moments of %s hold %d/%d values, want %d", p.Name, len(m), len(v), p.Size())
		}
		o.be.Upload(o.m[i], m)
		o.be.Upload(o.v[i], v)
	}
	o.step = s.Step
	return o.be.Sync()
}

// GradNorm returns the global L2 norm of the gradients of params.
func GradNorm(be backend.Backend, params []*nn.Param) float64 {
	var s float64
	for _, p := range params {
		if p.G != nil {
			s += be.SumSquares(p.G)
		}
	}
	return math.Sqrt(s)
}

// ClipGradNorm scales the gradients so that their global L2 norm is at
// most maxNorm, as torch.nn.utils.clip_grad_norm_ does (coefficient
// maxNorm/(norm+1e-6), applied only when below 1). It returns the norm
// before clipping. maxNorm ≤ 0 only measures.
func ClipGradNorm(be backend.Backend, params []*nn.Param, maxNorm float64) float64 {
	norm := GradNorm(be, params)
	if maxNorm <= 0 {
		return norm
	}
	coef := maxNorm / (norm + 1e-6)
	if coef < 1 {
		for _, p := range params {
			if p.G != nil {
				be.Scale(p.G, float32(coef))
			}
		}
	}
	return norm
}

// LinearSchedule is transformers' get_linear_schedule_with_warmup: the
// learning rate rises linearly from 0 over Warmup steps, then falls
// linearly to 0 at Total steps.
type LinearSchedule struct {
	Peak          float64
	Warmup, Total int
}

// LR returns the learning rate for the update at 0-based step.
func (s LinearSchedule) LR(step int) float64 {
	if step < s.Warmup {
		return s.Peak * float64(step) / float64(max(1, s.Warmup))
	}
	return s.Peak * math.Max(0, float64(s.Total-step)/float64(max(1, s.Total-s.Warmup)))
}

// WarmupSteps converts a warmup ratio to steps as transformers does
// (ceil(ratio·total)).
func WarmupSteps(ratio float64, total int) int { return int(math.Ceil(ratio * float64(total))) }
