package flagdata

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/rerank-go/rerank/internal/mathx"
)

// SamplerConfig configures FlagEmbedding's group sampler.
type SamplerConfig struct {
	// GroupSize is train_group_size: one positive and GroupSize-1
	// negatives per query. At least 1.
	GroupSize int
	// BatchSize is the number of queries per batch. Only full batches
	// are produced: each epoch drops the last len(examples) % BatchSize
	// shuffled examples, as a DataLoader with drop_last does.
	BatchSize int
	// Seed drives the epoch shuffles and the positive/negative draws.
	Seed uint64
	// NoShuffle keeps file order in every epoch.
	NoShuffle bool
	// Distill carries teacher scores with each group; every example must
	// then have pos_scores and neg_scores.
	Distill bool
}

// Group is one query with its sampled passages: Passages[0] is the
// positive, the rest are negatives.
type Group struct {
	Example  int // index into the sampler's examples
	Query    string
	Prompt   string
	Passages []string
	// PosIndex and NegIndex locate the passages in the example's pos/neg
	// lists (NegIndex may repeat when the example has too few negatives).
	PosIndex int
	NegIndex []int
	// TeacherScores are aligned with Passages; nil unless Distill.
	TeacherScores []float64
}

// StepGroups is one training step's groups, as Sampler.Next draws them.
type StepGroups struct {
	Epoch  int // 0-based
	Step   int // 0-based step within the epoch
	Groups []Group
}

// SamplerState is everything needed to continue sampling exactly where
// it stopped. It marshals to JSON.
type SamplerState struct {
	Epoch    int    `json:"epoch"`
	Position int    `json:"position"` // next index into the epoch's order
	RNG      []byte `json:"rng"`      // draw generator state (PCG)
	Seed     uint64 `json:"seed"`
	// Examples, GroupSize and BatchSize guard against resuming with other
	// data or settings.
	Examples  int `json:"examples"`
	GroupSize int `json:"group_size"`
	BatchSize int `json:"batch_size"`
}

// Sampler draws FlagEmbedding training groups batch by batch, epoch
// after epoch. Not safe for concurrent use.
type Sampler struct {
	ex    []Example
	cfg   SamplerConfig
	epoch int
	pos   int
	order []int
	draw  *rand.PCG
}

// NewSampler checks the examples against the configuration and starts at
// epoch 0.
func NewSampler(examples []Example, cfg SamplerConfig) (*Sampler, error) {
	if cfg.GroupSize < 1 {
		return nil, fmt.Errorf("train group size must be at least 1, got %d", cfg.GroupSize)
	}
	if cfg.BatchSize < 1 {
		return nil, fmt.Errorf("batch size must be at least 1, got %d", cfg.BatchSize)
	}
	if len(examples) < cfg.BatchSize {
		return nil, fmt.Errorf("%d training examples are fewer than one batch of %d: lower the batch size or add data", len(examples), cfg.BatchSize)
	}
	for i := range examples {
		e := &examples[i]
		where := fmt.Sprintf("%s:%d", e.File, e.Line)
		if e.File == "" {
			where = fmt.Sprintf("example %d", i)
		}
		if len(e.Pos) == 0 {
			return nil, fmt.Errorf("%s: pos is empty: every example needs a positive", where)
		}
		if cfg.GroupSize > 1 && len(e.Neg) == 0 {
			return nil, fmt.Errorf("%s: neg is empty: a group size of %d needs negatives", where, cfg.GroupSize)
		}
		if cfg.Distill {
			if !e.HasScores() {
				return nil, fmt.Errorf("%s: distillation needs pos_scores and neg_scores", where)
			}
			if len(e.PosScores) != len(e.Pos) || len(e.NegScores) != len(e.Neg) {
				return nil, fmt.Errorf("%s: pos_scores/neg_scores lengths do not match pos/neg", where)
			}
		}
	}
	s := &Sampler{ex: examples, cfg: cfg, draw: rand.NewPCG(cfg.Seed, 0x6472617773)} // "draws"
	s.startEpoch(0)
	return s, nil
}

// StepsPerEpoch is the number of full batches in one epoch.
func (s *Sampler) StepsPerEpoch() int { return len(s.ex) / s.cfg.BatchSize }

// Epoch is the epoch the next batch comes from.
func (s *Sampler) Epoch() int { return s.epoch }

func (s *Sampler) startEpoch(epoch int) {
	s.epoch, s.pos = epoch, 0
	if s.order == nil {
		s.order = make([]int, len(s.ex))
	}
	for i := range s.order {
		s.order[i] = i
	}
	if !s.cfg.NoShuffle {
		// The shuffle depends only on (seed, epoch), so a resumed run
		// rebuilds it without storing it.
		r := rand.NewPCG(s.cfg.Seed, uint64(epoch)+1)
		for i := len(s.order) - 1; i > 0; i-- {
			j := mathx.Uniform(r, i+1)
			s.order[i], s.order[j] = s.order[j], s.order[i]
		}
	}
}

// Next returns the next full batch, moving to the next epoch when the
// current one has no full batch left.
func (s *Sampler) Next() StepGroups {
	if s.pos+s.cfg.BatchSize > len(s.order) {
		s.startEpoch(s.epoch + 1)
	}
	b := StepGroups{Epoch: s.epoch, Step: s.pos / s.cfg.BatchSize, Groups: make([]Group, s.cfg.BatchSize)}
	for k := range b.Groups {
		b.Groups[k] = s.group(s.order[s.pos+k])
	}
	s.pos += s.cfg.BatchSize
	return b
}

// group samples like FlagEmbedding's AbsRerankerTrainDataset: one
// positive uniformly; GroupSize-1 negatives without replacement, from the
// negatives repeated ceil((GroupSize-1)/len(neg)) times when there are
// too few.
func (s *Sampler) group(i int) Group {
	e := &s.ex[i]
	g := Group{Example: i, Query: e.Query, Prompt: e.Prompt}
	g.PosIndex = mathx.Uniform(s.draw, len(e.Pos))
	g.Passages = append(make([]string, 0, s.cfg.GroupSize), e.Pos[g.PosIndex])
	if need := s.cfg.GroupSize - 1; need > 0 {
		reps := (need + len(e.Neg) - 1) / len(e.Neg)
		if reps < 1 {
			reps = 1
		}
		pool := make([]int, 0, reps*len(e.Neg))
		for r := 0; r < reps; r++ {
			for j := range e.Neg {
				pool = append(pool, j)
			}
		}
		// Partial Fisher-Yates: the first need entries are a uniform
		// sample without replacement, in random order.
		for k := 0; k < need; k++ {
			j := k + mathx.Uniform(s.draw, len(pool)-k)
			pool[k], pool[j] = pool[j], pool[k]
		}
		g.NegIndex = pool[:need:need]
		for _, j := range g.NegIndex {
			g.Passages = append(g.Passages, e.Neg[j])
		}
	}
	if s.cfg.Distill {
		g.TeacherScores = make([]float64, 0, len(g.Passages))
		g.TeacherScores = append(g.TeacherScores, e.PosScores[g.PosIndex])
		for _, j := range g.NegIndex {
			g.TeacherScores = append(g.TeacherScores, e.NegScores[j])
		}
	}
	return g
}

// State captures the sampler's position for a checkpoint.
func (s *Sampler) State() SamplerState {
	rng, _ := s.draw.MarshalBinary() // never fails for PCG
	return SamplerState{
		Epoch: s.epoch, Position: s.pos, RNG: rng, Seed: s.cfg.Seed,
		Examples: len(s.ex), GroupSize: s.cfg.GroupSize, BatchSize: s.cfg.BatchSize,
	}
}

// Restore continues from a saved state. The examples and configuration
// must be those the state was saved with.
func (s *Sampler) Restore(st SamplerState) error {
	switch {
	case st.Examples != len(s.ex):
		return fmt.Errorf("sampler state is for %d examples, the data has %d: resume with the same training data", st.Examples, len(s.ex))
	case st.Seed != s.cfg.Seed:
		return fmt.Errorf("sampler state has seed %d, the run has %d: resume with the same --seed", st.Seed, s.cfg.Seed)
	case st.GroupSize != s.cfg.GroupSize || st.BatchSize != s.cfg.BatchSize:
		return fmt.Errorf("sampler state has group size %d and batch size %d, the run has %d and %d: resume with the same settings",
			st.GroupSize, st.BatchSize, s.cfg.GroupSize, s.cfg.BatchSize)
	case st.Epoch < 0 || st.Position < 0 || st.Position > len(s.ex):
		return fmt.Errorf("sampler state has epoch %d position %d: out of range", st.Epoch, st.Position)
	}
	var r rand.PCG
	if err := r.UnmarshalBinary(st.RNG); err != nil {
		return fmt.Errorf("sampler state: bad RNG state: %w", err)
	}
	s.startEpoch(st.Epoch)
	s.pos = st.Position
	s.draw = &r
	return nil
}

// MarshalState and UnmarshalState are JSON helpers for checkpoints.
func MarshalState(st SamplerState) ([]byte, error) { return json.Marshal(st) }

// UnmarshalState decodes a state written by MarshalState.
func UnmarshalState(b []byte) (SamplerState, error) {
	var st SamplerState
	if err := json.Unmarshal(b, &st); err != nil {
		return st, fmt.Errorf("sampler state: %w", err)
	}
	if st.RNG == nil {
		return st, errors.New("sampler state: no rng field")
	}
	return st, nil
}
