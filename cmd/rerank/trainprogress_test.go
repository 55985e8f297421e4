package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/train"
)

// TestTrainProgressOffTerminal: written to a file or a pipe, progress is
// plain lines (no carriage returns), one every interval plus the first
// and the last step, each with step, loss, rate, ETA and memory; messages
// are lines of their own.
func TestTrainProgressOffTerminal(t *testing.T) {
	var out strings.Builder
	p := newTrainProgress(&out, func() string { return "gpu 1GiB" })
	clock := time.Unix(0, 0)
	p.now = func() time.Time { return clock }
	p.every = 10 * time.Second
	p.Message("encoding 8 training examples ...")
	for step := 1; step <= 20; step++ {
		clock = clock.Add(time.Second)
		p.Step(train.StepInfo{Step: step, Total: 20, Loss: 0.5, LR: 1e-4, Pairs: 16})
		if step == 7 {
			p.Message("step 7: dev ndcg@10 0.5")
		}
	}
	p.done()
	s := out.String()
	assert.NotContains(t, s, "\r")
	require.True(t, strings.HasSuffix(s, "\n"))
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	require.Len(t, lines, 5, "%q", s)
	assert.Equal(t, "encoding 8 training examples ...", lines[0])
	assert.True(t, strings.HasPrefix(lines[1], "step 1/20 epoch 0 loss 0.5000 lr 1.00e-04 mem "), lines[1])
	assert.True(t, strings.HasSuffix(lines[1], " gpu 1GiB"), lines[1])
	assert.Equal(t, "step 7: dev ndcg@10 0.5", lines[2])
	assert.True(t, strings.HasPrefix(lines[3], "step 11/20 epoch 0 loss 0.5000 lr 1.00e-04 16.0 pairs/s eta 9s mem "), lines[3])
	assert.True(t, strings.HasPrefix(lines[4], "step 20/20 "), lines[4])
	assert.Contains(t, lines[4], "eta 0s")
}

// TestTrainFlagNames: every training argument has a flag under the name
// errors show, and errors of package train reach the user with flag
// names.
func TestTrainFlagNames(t *testing.T) {
	flags := map[string]bool{}
	for _, f := range trainFlags() {
		for _, n := range f.Names() {
			flags["--"+n] = true
		}
	}
	for _, f := range reflect.VisibleFields(reflect.TypeOf(train.Args{})) {
		field, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		assert.True(t, flags[trainFlag(field)], "%s shows as %s, which is not a flag", field, trainFlag(field))
		assert.Equal(t, field, trainField(trainFlag(field)))
		assert.Equal(t, field, trainField(field))
	}
	a := train.DefaultArgs()
	a.LearningRate, a.SaveTotalLimit = 0, -1
	err := withFlagNames(a.Validate())
	require.Error(t, err)
	for _, want := range []string{"--model: required", "--train-data: required", "--output-dir: required", "--learning-rate: must be positive", "--save-total-limit: must not"} {
		assert.Contains(t, err.Error(), want)
	}
	var fe *train.FieldError
	assert.True(t, errors.As(err, &fe), "the library's error stays reachable")
	wrapped := withFlagNames(&train.NonFiniteError{Step: 3, What: "loss", Value: 1, Checkpoint: "out/checkpoint-2"})
	assert.Contains(t, wrapped.Error(), "--resume out/checkpoint-2")
	assert.Contains(t, wrapped.Error(), "--learning-rate or a --max-grad-norm")
	var _ cli.Flag = trainFlags()[0]
}

// TestTrainHealthWarningShown: a health warning of package train reaches
// the user as its own line, step included, naming flags.
func TestTrainHealthWarningShown(t *testing.T) {
	var out strings.Builder
	p := newTrainProgress(&out, func() string { return "" })
	h := train.NewHealth(train.HealthOptions{CollapseSteps: 1})
	for _, w := range h.Observe(12, 0.3, true) {
		p.Message(w.Message)
	}
	p.done()
	assert.Contains(t, out.String(), "warning: step 12: every passage of every group has got the same score")
	assert.Contains(t, out.String(), "lower --learning-rate or set --max-grad-norm")

	// --quiet: no progress, but warnings still.
	out.Reset()
	q := warningsOnly{&out}
	q.Message("encoding 8 training examples ...")
	q.Step(train.StepInfo{Step: 1, Total: 2, Loss: 1})
	q.Message("warning: step 3: the loss has stayed near chance; check {learning_rate}")
	assert.Equal(t, "warning: step 3: the loss has stayed near chance; check --learning-rate\n", out.String())
}
