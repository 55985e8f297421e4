package train

import (
	"context"
	"fmt"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/dist"
	"github.com/rerank-go/rerank/eval"
	"github.com/rerank-go/rerank/nn"
)

// Data-parallel training follows Hugging Face Trainer under torchrun:
//
//   - the global batch is PerDeviceTrainBatchSize × world size (× the
//     accumulation steps): the sampler draws global micro-batches of
//     PerDeviceTrainBatchSize × world size groups on every rank, and rank
//     r takes the r-th share, so the sequence of global batches, and the
//     sampler state in checkpoints, do not depend on the world size;
//   - the gradients (and the loss) are averaged over the ranks once per
//     optimizer step, after the last micro-batch (DDP's no_sync on the
//     others): one all-reduce of one flat buffer;
//   - rank 0's weights are broadcast at the start;
//   - rank 0 alone writes checkpoints, metrics.jsonl, the final model and
//     the progress bar;
//   - dev evaluation shards the queries over the ranks and gathers the
//     per-query metrics, so the means equal a one-process evaluation.

// parallel tells whether the run goes through a communicator: several
// ranks, or one through an explicit backend (--ddp-backend nccl with one
// GPU runs every collective, as a check of the backend).
func (t *trainer) parallel() bool { return t.comm.Name() != dist.None }

// share returns this rank's part [lo, hi) of a global micro-batch of n
// groups.
func share(n, rank, size int) (lo, hi int) {
	per := n / size
	return rank * per, (rank + 1) * per
}

// flatParams packs the values (grads=false: weights) or gradients of ps
// into host buffer dst, with extra room; unflatParams writes them back.
func (t *trainer) flatParams(ps []*nn.Param, grads bool, extra int) []float32 {
	n := extra
	for _, p := range ps {
		n += p.Size()
	}
	if cap(t.flat) < n {
		t.flat = make([]float32, n)
	}
	buf := t.flat[:n]
	off := 0
	for _, p := range ps {
		src := p.W
		if grads {
			src = p.G
		}
		t.be.Download(buf[off:off+p.Size()], src)
		off += p.Size()
	}
	return buf
}

func (t *trainer) unflatParams(ps []*nn.Param, grads bool, buf []float32) error {
	off := 0
	for _, p := range ps {
		dst := p.W
		if grads {
			dst = p.G
		}
		t.be.Upload(dst, buf[off:off+p.Size()])
		off += p.Size()
	}
	return t.be.Sync()
}

// broadcastWeights copies rank 0's trainable weights to every rank.
func (t *trainer) broadcastWeights() error {
	if !t.parallel() {
		return nil
	}
	if testHookNet != nil {
		testHookNet(t.net)
	}
	ps := t.opt.Params()
	buf := t.flatParams(ps, false, 0)
	if err := t.be.Sync(); err != nil {
		return err
	}
	if err := t.comm.Broadcast(buf, 0); err != nil {
		return fmt.Errorf("broadcast of rank 0's weights: %w", err)
	}
	return t.unflatParams(ps, false, buf)
}

// reduceGrads averages the gradients and the loss over the ranks: one
// all-reduce per optimizer step.
func (t *trainer) reduceGrads(step int, loss float64) (float64, error) {
	if !t.parallel() {
		return loss, nil
	}
	if _, ok := t.comm.(dist.DeviceComm); ok {
		return loss, nil // reduced during the last backward pass
	}
	ps := t.opt.Params()
	buf := t.flatParams(ps, true, 1)
	buf[len(buf)-1] = float32(loss)
	if err := t.be.Sync(); err != nil {
		return 0, err
	}
	if err := t.comm.AllReduce(buf, dist.Mean); err != nil {
		return 0, fmt.Errorf("step %d: gradients: %w", step, err)
	}
	loss = float64(buf[len(buf)-1])
	return loss, t.unflatParams(ps, true, buf[:len(buf)-1])
}

// evaluateSharded scores rank r's queries (every size-th, from r) and
// gathers the per-query metrics of all ranks, then averages them over
// the judged queries in the order a one-process Evaluate does.
func evaluateSharded(ctx context.Context, d *DevSet, s eval.Scorer, topK, batch int, comm dist.Comm) (map[string]float64, error) {
	if comm.Size() == 1 {
		m, _, err := d.Evaluate(ctx, s, topK, batch)
		return m, err
	}
	var mine []eval.Candidate
	for i, c := range d.Cands {
		if i%comm.Size() == comm.Rank() {
			mine = append(mine, c)
		}
	}
	run, err := eval.Rerank(ctx, s, mine, d.Queries, d.Passages, eval.RerankOptions{TopK: topK, BatchSize: batch})
	if err != nil {
		return nil, err
	}
	res, err := eval.Evaluate(run, d.Qrels, DevMetrics, eval.TiesInputOrder)
	if err != nil {
		return nil, err
	}
	// Every value travels as three float32 parts (hi, mid, lo) that add
	// up to it exactly; only its owner sends non-zero parts, so the sum
	// is exact.
	M := len(DevMetrics)
	qids := res.QueryIDs
	buf := make([]float32, 3*M*len(qids))
	for qi, q := range qids {
		if _, ok := run[q]; !ok {
			continue
		}
		for mi, m := range DevMetrics {
			x := res.PerQuery[q][m.String()]
			hi := float32(x)
			mid := float32(x - float64(hi))
			lo := float32(x - float64(hi) - float64(mid))
			k := 3 * (qi*M + mi)
			buf[k], buf[k+1], buf[k+2] = hi, mid, lo
		}
	}
	if err := comm.AllReduce(buf, dist.Sum); err != nil {
		return nil, fmt.Errorf("gathering the dev metrics: %w", err)
	}
	mean := make(map[string]float64, M)
	for mi, m := range DevMetrics {
		sum := 0.0
		for qi := range qids {
			k := 3 * (qi*M + mi)
			sum += float64(buf[k]) + float64(buf[k+1]) + float64(buf[k+2])
		}
		if len(qids) > 0 {
			mean[m.String()] = sum / float64(len(qids))
		} else {
			mean[m.String()] = 0
		}
	}
	return mean, nil
}

// checkResumeWorld explains what resuming at another world size does:
// the sampler's global batch must stay the same.
func checkResumeWorld(dir string, st State, args Args, size int) error {
	was := max(st.WorldSize, 1)
	if was == size {
		return nil
	}
	if args.PerDeviceTrainBatchSize*size == st.Sampler.BatchSize {
		return nil // the same global batch: the run continues exactly
	}
	return fmt.Errorf("resume: %s was written by %d processes × --per-device-train-batch-size %d (a global batch of %d queries); this run has %d × %d = %d. "+
		"Resume with %d processes (mpirun -np %d / torchrun --nproc-per-node %d), or with a --per-device-train-batch-size that keeps the global batch at %d",
		dir, was, st.Sampler.BatchSize/was, st.Sampler.BatchSize, size, args.PerDeviceTrainBatchSize, size*args.PerDeviceTrainBatchSize,
		was, was, was, st.Sampler.BatchSize)
}

// testHookNet, set by tests only, sees the model before training starts.
var testHookNet func(*nn.Model)

// bucketer starts the all-reduce of the gradients in buckets of at least
// size values as the backward pass finishes them (nn.Model.GradsReady),
// from the last layer to the first, as torch's DDP does; the rank's loss
// travels with the last bucket.
type bucketer struct {
	dc    dist.DeviceComm
	grads backend.Buf
	loss  backend.Buf
	size  int
	sent  int // grads[sent:] are started
}

func (b *bucketer) ready(off int) error {
	if off == 0 {
		bufs := []backend.Buf{b.loss}
		if b.sent > 0 {
			bufs = append([]backend.Buf{b.grads.Slice(0, b.sent)}, bufs...)
		}
		b.sent = 0
		return b.dc.AllReduceAsync(dist.Mean, bufs...)
	}
	if b.sent-off >= b.size {
		if err := b.dc.AllReduceAsync(dist.Mean, b.grads.Slice(off, b.sent-off)); err != nil {
			return err
		}
		b.sent = off
	}
	return nil
}

// deviceSync prepares the last micro-step's backward pass of a step on a
// DeviceComm (NCCL): the loss so far goes to the device and, for full
// fine-tuning, the buckets start as backward produces them. It returns
// what to do after backward.
func (t *trainer) deviceSync(dc dist.DeviceComm, loss float64) (finish func() (float64, error), err error) {
	if t.lossBuf == nil {
		if t.lossBuf, err = t.be.Alloc(1); err != nil {
			return nil, err
		}
	}
	t.be.Upload(t.lossBuf, []float32{float32(loss)})
	grads := t.net.Grads()
	overlap := t.lora == nil && grads != nil
	if overlap {
		size := t.opts.BucketBytes / 4
		if size <= 0 {
			size = dist.BucketBytes / 4
		}
		b := &bucketer{dc: dc, grads: grads, loss: t.lossBuf, size: size, sent: grads.Len()}
		t.net.GradsReady = b.ready
	}
	return func() (float64, error) {
		t.net.GradsReady = nil
		if !overlap {
			bufs := []backend.Buf{t.lossBuf}
			for _, p := range t.opt.Params() {
				bufs = append(bufs, p.G)
			}
			if err := dc.AllReduceAsync(dist.Mean, bufs...); err != nil {
				return 0, err
			}
		}
		if err := dc.Wait(); err != nil {
			return 0, err
		}
		v := []float32{0}
		t.be.Download(v, t.lossBuf)
		return float64(v[0]), t.be.Sync()
	}, nil
}
