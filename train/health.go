package train

import (
	"fmt"
	"math"
)

// HealthOptions configure the training health checks of a Health
// detector. The zero value takes the defaults below.
type HealthOptions struct {
	// Disable turns both checks off.
	Disable bool
	// Chance is the loss of a model that scores every passage of a group
	// alike (ChanceLoss); 0 turns the chance check off.
	Chance float64
	// ChanceDesc says how Chance was found, for the warning (e.g.
	// "ln 16 for ce with groups of 16").
	ChanceDesc string
	// Window is the stretch of consecutive judged steps (default 50) the
	// loss must stay within Tolerance of Chance, and After the steps not
	// judged at all (the learning-rate warmup, when a model barely moves
	// and a fresh head sits at chance by design).
	Window, After int
	// Tolerance is relative: |loss - Chance| <= Tolerance·Chance (default
	// 0.02).
	Tolerance float64
	// CollapseSteps is how many consecutive steps every group must have
	// scored all its passages alike before a collapse is reported (default
	// 3), and ScoreTol how close "alike" is: max - min <=
	// ScoreTol·max(1, max |score|) within a group (default 1e-5).
	CollapseSteps int
	ScoreTol      float64
}

func (o HealthOptions) withDefaults() HealthOptions {
	if o.Window <= 0 {
		o.Window = 50
	}
	if o.Tolerance <= 0 {
		o.Tolerance = 0.02
	}
	if o.CollapseSteps <= 0 {
		o.CollapseSteps = 3
	}
	if o.ScoreTol <= 0 {
		o.ScoreTol = 1e-5
	}
	return o
}

// ChanceLoss is the loss of a model that gives every passage of a group
// of groupSize the same score, the best such a model can do:
//   - ce: ln G (a uniform softmax over the group);
//   - distill: 2 ln G (the group CE plus the teacher's soft cross-entropy
//     against a uniform student, whatever the teacher's scores);
//   - bce: H(1/G) = -(1/G) ln(1/G) - (1-1/G) ln(1-1/G), the entropy of the
//     labels (one positive per group), reached by the constant logit
//     logit(1/G); a model stuck there has learnt only how many positives
//     there are.
//
// It returns false for an unknown loss or a group of fewer than two.
func ChanceLoss(lossName string, groupSize int) (chance float64, desc string, ok bool) {
	if groupSize < 2 {
		return 0, "", false
	}
	g := float64(groupSize)
	switch lossName {
	case "ce":
		return math.Log(g), fmt.Sprintf("ln %d for ce with groups of %d", groupSize, groupSize), true
	case "distill":
		return 2 * math.Log(g), fmt.Sprintf("2·ln %d for distill with groups of %d", groupSize, groupSize), true
	case "bce":
		p := 1 / g
		return -p*math.Log(p) - (1-p)*math.Log(1-p), fmt.Sprintf("H(1/%d), the labels' entropy, for bce with groups of %d", groupSize, groupSize), true
	}
	return 0, "", false
}

// HealthWarning is one finding of a Health detector.
type HealthWarning struct {
	Step int    // the step it was found at (1-based)
	Kind string // "chance" or "collapse"
	// Message says what was seen and what to check, naming training
	// arguments as {field} (Progress.Message's convention).
	Message string
}

// Health watches a run's loss and scores for two signs of a run that
// learns nothing: the loss staying at chance (ChanceLoss) for Window
// steps, and every group scoring all its passages alike (collapse) for
// CollapseSteps steps. Each is reported once. It prints nothing: Run
// passes its warnings to Progress.Message.
type Health struct {
	o                   HealthOptions
	chance, collapse    streak
	warnedC, warnedColl bool
}

// streak counts consecutive steps on which a condition held, and the step
// it began at.
type streak struct{ n, start int }

// observe extends the streak when hit, else resets it.
func (s *streak) observe(hit bool, step int) {
	if !hit {
		s.n = 0
		return
	}
	if s.n == 0 {
		s.start = step
	}
	s.n++
}

// NewHealth returns a detector with opts (defaults filled in).
func NewHealth(opts HealthOptions) *Health {
	return &Health{o: opts.withDefaults()}
}

// Collapsed reports whether every group of groupSize logits scores all
// its passages alike, within the detector's ScoreTol (AllGroupsCollapsed).
// A step's micro-batches are judged one by one, while their logits are
// fresh, and the step is collapsed when all of them are.
func (h *Health) Collapsed(logits []float32, groupSize int) bool {
	if h == nil || h.o.Disable {
		return false
	}
	return AllGroupsCollapsed(logits, groupSize, h.o.ScoreTol)
}

// Observe judges one finished step: its loss and whether its groups'
// scores collapsed (Collapsed). It returns the warnings found at this
// step, at most one of each kind over the detector's life.
func (h *Health) Observe(step int, loss float64, collapsed bool) []HealthWarning {
	if h == nil || h.o.Disable {
		return nil
	}
	var out []HealthWarning
	o := h.o
	if o.Chance > 0 && !h.warnedC && step > o.After {
		h.chance.observe(math.Abs(loss-o.Chance) <= o.Tolerance*o.Chance, step)
		if h.chance.n >= o.Window {
			h.warnedC = true
			desc := o.ChanceDesc
			if desc != "" {
				desc = ", " + desc
			}
			out = append(out, HealthWarning{Step: step, Kind: "chance", Message: fmt.Sprintf(
				"warning: step %d: the loss has stayed within %.0f%% of chance (%.4f%s) for %d steps (%d-%d): the model is not learning to tell the positive from its negatives; check {learning_rate}, that the data's pos are relevant, and the scores of the model before training",
				step, 100*o.Tolerance, o.Chance, desc, h.chance.n, h.chance.start, step)})
		}
	}
	if !h.warnedColl {
		h.collapse.observe(collapsed, step)
		if h.collapse.n >= o.CollapseSteps {
			h.warnedColl = true
			out = append(out, HealthWarning{Step: step, Kind: "collapse", Message: fmt.Sprintf(
				"warning: step %d: every passage of every group has got the same score for %d steps (%d-%d): the scores collapsed and rank nothing; lower {learning_rate} or set {max_grad_norm}, and resume from a checkpoint before step %d",
				step, h.collapse.n, h.collapse.start, step, h.collapse.start)})
		}
	}
	return out
}

// AllGroupsCollapsed reports whether every group of groupSize logits has
// all its scores alike: max - min <= tol·max(1, max |score|). It is false
// for no groups at all.
func AllGroupsCollapsed(logits []float32, groupSize int, tol float64) bool {
	if groupSize < 2 || len(logits) < groupSize {
		return false
	}
	for b := 0; b+groupSize <= len(logits); b += groupSize {
		lo, hi, mag := math.Inf(1), math.Inf(-1), 1.0
		for _, s := range logits[b : b+groupSize] {
			v := float64(s)
			if math.IsNaN(v) {
				return false
			}
			lo, hi, mag = min(lo, v), max(hi, v), max(mag, math.Abs(v))
		}
		if hi-lo > tol*mag {
			return false
		}
	}
	return true
}
