package train

import (
	"context"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/dist"
	"github.com/rerank-go/rerank/nn"
)

// fakeDeviceComm is rank 0 of 2 whose peer always holds the same values
// (so a mean changes nothing); it records what the trainer asks of a
// DeviceComm such as NCCL.
type fakeDeviceComm struct {
	dist.Single
	grads   func() backend.Buf
	steps   [][]span // the buckets started before each Wait
	cur     []span
	waits   int
	started map[int][]float32 // bucket offset -> values when started
}

type span struct {
	off, n int
	loss   bool // the group carried the loss
}

func (f *fakeDeviceComm) Size() int    { return 2 }
func (f *fakeDeviceComm) Name() string { return "fake" }
func (f *fakeDeviceComm) Stats() dist.Stats {
	return dist.Stats{AllReduces: f.waits}
}

func (f *fakeDeviceComm) AllReduceAsync(op dist.Op, bufs ...backend.Buf) error {
	g := f.grads().(cpu.F32)
	base := uintptr(unsafe.Pointer(&g[0]))
	hasLoss := false
	for _, b := range bufs {
		if b.Len() == 1 {
			hasLoss = true
		}
	}
	for _, b := range bufs {
		if b.Len() == 1 {
			continue
		}
		v := b.(cpu.F32)
		off := int(uintptr(unsafe.Pointer(&v[0]))-base) / 4
		f.cur = append(f.cur, span{off: off, n: len(v), loss: hasLoss})
		f.started[off] = append([]float32(nil), v...)
	}
	if len(bufs) == 1 && hasLoss {
		f.cur = append(f.cur, span{loss: true})
	}
	return nil
}

func (f *fakeDeviceComm) Wait() error {
	f.waits++
	f.steps = append(f.steps, f.cur)
	f.cur = nil
	return nil
}

// On a DeviceComm the gradients go in buckets started during the last
// backward pass of each step (none during accumulation), from the last
// layer to the first, each holding final values when started, covering
// the whole gradient allocation once, the loss with the last one; one
// Wait per optimizer step.
func TestDeviceCommBucketsDuringBackward(t *testing.T) {
	model, data := microModel(t), microData(t, 12, false)
	a := microArgs(t, model, data)
	a.GradientAccumulationSteps, a.MaxSteps, a.SaveSteps = 2, 3, 0
	var net *nn.Model
	f := &fakeDeviceComm{started: map[int][]float32{}}
	f.grads = func() backend.Buf { return net.Grads() }
	const bucket = 5000 // values: a layer of the micro model has ~8.5k, its embeddings ~1M
	var final [][]float32
	opts := Options{Comm: f, BucketBytes: 4 * bucket, BeforeUpdate: func(step int, m *nn.Model) {
		g := m.Grads().(cpu.F32)
		final = append(final, append([]float32(nil), g...))
		// Every bucket held its final values when it was started.
		for _, s := range f.steps[step-1] {
			if s.n > 0 {
				require.Equal(t, g[s.off:s.off+s.n], cpu.F32(f.started[s.off]), "bucket at %d of step %d", s.off, step)
			}
		}
	}}
	res, err := runCatchingNet(t, a, opts, &net)
	require.NoError(t, err)
	require.Len(t, res.Losses, 3)
	assert.Equal(t, 3, f.waits, "one Wait per optimizer step")
	total := net.Grads().Len()
	for i, spans := range f.steps {
		require.NotEmpty(t, spans, "step %d", i+1)
		end := total
		for j, s := range spans {
			if s.n == 0 {
				continue
			}
			assert.Equal(t, end, s.off+s.n, "step %d bucket %d: buckets go down the allocation without gaps", i+1, j)
			if j < len(spans)-1 {
				assert.GreaterOrEqual(t, s.n, bucket, "step %d bucket %d", i+1, j)
				assert.False(t, s.loss, "the loss goes with the last bucket only")
			}
			end = s.off
		}
		assert.Equal(t, 0, end, "step %d: the buckets cover every gradient", i+1)
		assert.True(t, spans[len(spans)-1].loss, "step %d: the loss goes with the last bucket", i+1)
		assert.Greater(t, len(spans), 2, "several buckets")
	}
}

// runCatchingNet runs a with opts, setting *net to the model before the
// first step.
func runCatchingNet(t *testing.T, a Args, opts Options, net **nn.Model) (*Result, error) {
	t.Helper()
	testHookNet = func(m *nn.Model) { *net = m }
	defer func() { testHookNet = nil }()
	return Run(context.Background(), cpu.New(), a, opts)
}
