package train

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestValidateRefusesArgumentsThatDoNothing: arguments that would be
// silently ignored, or a run that cannot learn, are refused by name
// instead of training for hours on something else than was asked.
func TestValidateRefusesArgumentsThatDoNothing(t *testing.T) {
	base := func() Args {
		a := DefaultArgs()
		a.ModelDir, a.TrainData, a.OutputDir = "m", "d.jsonl", "out"
		return a
	}
	for _, tc := range []struct {
		name  string
		edit  func(a *Args)
		field string // "" when valid
		msg   string
	}{
		{"defaults", func(a *Args) {}, "", ""},
		{"group of one, ce", func(a *Args) { a.TrainGroupSize = 1 }, "train_group_size", "the loss is 0"},
		{"group of one, distill", func(a *Args) { a.TrainGroupSize, a.Loss = 1, "distill" }, "train_group_size", "{loss} bce"},
		{"group of one, bce", func(a *Args) { a.TrainGroupSize, a.Loss = 1, "bce" }, "", ""},
		{"group of two, ce", func(a *Args) { a.TrainGroupSize = 2 }, "", ""},
		{"eval steps without dev data", func(a *Args) { a.EvalSteps = 5 }, "eval_steps", "{dev_candidates}"},
		{"eval steps with dev data", func(a *Args) { a.EvalSteps, a.DevCandidates = 5, "dev.jsonl" }, "", ""},
		{"resume and overwrite", func(a *Args) { a.Resume, a.OverwriteOutputDir = "latest", true }, "overwrite_output_dir", "{resume_from_checkpoint}"},
		{"overwrite alone", func(a *Args) { a.OverwriteOutputDir = true }, "", ""},
		{"override without resume", func(a *Args) { a.ResumeOverride = []string{"learning_rate"} }, "resume_override", "{resume_from_checkpoint}"},
		{"override with resume", func(a *Args) { a.Resume, a.ResumeOverride = "latest", []string{"learning_rate"} }, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := base()
			tc.edit(&a)
			err := a.Validate()
			if tc.field == "" {
				assert.NoError(t, err)
				return
			}
			var fe *FieldError
			require.True(t, errors.As(err, &fe), "%v", err)
			assert.Equal(t, tc.field, fe.Field)
			assert.Contains(t, fe.Msg, tc.msg)
		})
	}
}
