package lora_test

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/loss"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/optim"
)

// miniLMConfig is the config.json of cross-encoder/ms-marco-MiniLM-L-6-v2
// (6 layers, hidden 384, 12 heads, intermediate 1536, vocab 30522).
const miniLMConfig = `{
  "architectures": ["BertForSequenceClassification"],
  "attention_probs_dropout_prob": 0.1,
  "hidden_act": "gelu",
  "hidden_dropout_prob": 0.1,
  "hidden_size": 384,
  "id2label": {"0": "LABEL_0"},
  "initializer_range": 0.02,
  "intermediate_size": 1536,
  "layer_norm_eps": 1e-12,
  "max_position_embeddings": 512,
  "model_type": "bert",
  "num_attention_heads": 12,
  "num_hidden_layers": 6,
  "pad_token_id": 0,
  "type_vocab_size": 2,
  "vocab_size": 30522
}`

// Benchmark batch: 16 sequences of 128 tokens, 2 queries × 8 candidates.
const (
	benchSeqs  = 16
	benchLen   = 128
	benchGroup = 8
)

// countingBackend tracks the float32/int32 device memory allocated through
// it: live and peak bytes.
type countingBackend struct {
	backend.Backend
	mu         sync.Mutex
	live, peak int64
}

func (c *countingBackend) add(n int64) {
	c.mu.Lock()
	c.live += n
	c.peak = max(c.peak, c.live)
	c.mu.Unlock()
}

func (c *countingBackend) Alloc(n int) (backend.Buf, error) {
	b, err := c.Backend.Alloc(n)
	if err == nil {
		c.add(4 * int64(n))
	}
	return b, err
}

func (c *countingBackend) AllocInt(n int) (backend.IntBuf, error) {
	b, err := c.Backend.AllocInt(n)
	if err == nil {
		c.add(4 * int64(n))
	}
	return b, err
}

func (c *countingBackend) Free(b any) {
	switch v := b.(type) {
	case backend.Buf:
		c.add(-4 * int64(v.Len()))
	case backend.IntBuf:
		c.add(-4 * int64(v.Len()))
	}
	c.Backend.Free(b)
}

// trainer is one model set up for full or LoRA fine-tuning.
type trainer struct {
	be    *countingBackend
	m     *nn.Model
	ad    *lora.Adapters
	opt   *optim.AdamW
	batch *nn.Batch
	ckpt  bool // RunOptions.GradientCheckpointing
	// Bytes counted by kind after setup (activations after a step).
	params, grads, optState int64
}

func newTrainer(b *testing.B, loraRank int, loraDropout float64, ckpt bool) *trainer {
	b.Helper()
	cfg, err := hfmodel.ParseConfig("miniLM config.json", []byte(miniLMConfig))
	if err != nil {
		b.Fatal(err)
	}
	tr := &trainer{be: &countingBackend{Backend: cpu.New()}}
	if tr.m, err = nn.New(tr.be, cfg.Config); err != nil {
		b.Fatal(err)
	}
	tr.m.InitRandom(1, cfg.InitializerRange)
	tr.ckpt = ckpt
	var trainable []*nn.Param
	if loraRank > 0 {
		lc := lora.Config{R: loraRank, Alpha: 2 * float64(loraRank), Dropout: loraDropout, TargetModules: []string{"query", "key", "value"}}
		if tr.ad, err = lora.Attach(tr.m, lc, 1); err != nil {
			b.Fatal(err)
		}
		trainable = tr.ad.Trainable()
	} else {
		if err := tr.m.EnableGrads(nil); err != nil {
			b.Fatal(err)
		}
		trainable = tr.m.Params()
	}
	if tr.opt, err = optim.NewAdamW(tr.be, trainable, 0.01); err != nil {
		b.Fatal(err)
	}
	all := tr.m.Params()
	if tr.ad != nil {
		all = append(all, tr.ad.Params()...)
	}
	for _, p := range all {
		tr.params += 4 * int64(p.Size())
		if p.G != nil {
			tr.grads += 4 * int64(p.Size())
		}
	}
	for _, p := range tr.opt.Params() {
		tr.optState += 2 * 4 * int64(p.Size())
	}
	rng := rand.New(rand.NewPCG(2, 2))
	tr.batch = &nn.Batch{N: benchSeqs, S: benchLen}
	for i := 0; i < benchSeqs*benchLen; i++ {
		tr.batch.InputIDs = append(tr.batch.InputIDs, int32(1+rng.IntN(cfg.VocabSize-1)))
		tr.batch.TypeIDs = append(tr.batch.TypeIDs, int32(min(1, (i%benchLen)/(benchLen/4))))
		tr.batch.Mask = append(tr.batch.Mask, 1)
	}
	return tr
}

// step is one training step: forward, loss, backward, AdamW.
func (tr *trainer) step(b *testing.B, i int) {
	tr.m.ZeroGrads()
	if tr.ad != nil {
		tr.ad.ZeroGrads()
	}
	logits, err := tr.m.Forward(tr.batch, nn.RunOptions{Train: true, Seed: uint64(i), GradientCheckpointing: tr.ckpt})
	if err != nil {
		b.Fatal(err)
	}
	_, dl, err := loss.GroupSoftmaxCE(logits, benchGroup)
	if err != nil {
		b.Fatal(err)
	}
	if err := tr.m.Backward(dl); err != nil {
		b.Fatal(err)
	}
	if err := tr.opt.Step(1e-4); err != nil {
		b.Fatal(err)
	}
}

// benchModes: full fine-tuning, and LoRA r=16 on query, key and value
// with lora_dropout 0.1 (rerank train's default), without dropout, and
// with gradient checkpointing on top.
var benchModes = []struct {
	name    string
	rank    int
	dropout float64
	ckpt    bool
}{
	{"full", 0, 0, false},
	{"lora_r16_qkv", 16, 0.1, false},
	{"lora_r16_qkv_nodropout", 16, 0, false},
	{"lora_r16_qkv_checkpointing", 16, 0.1, true},
}

// BenchmarkTrainStep times one training step (forward + backward + AdamW)
// on the MiniLM-L6 shape, 16×128 tokens, full fine-tuning vs LoRA r=16 on
// query, key and value, and reports the device bytes it counts:
// parameters, gradients, optimizer moments, and activations and scratch
// (the rest of the peak).
func BenchmarkTrainStep(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			tr := newTrainer(b, mode.rank, mode.dropout, mode.ckpt)
			tr.step(b, 0) // allocate activations
			cpu0 := cpuSeconds()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				tr.step(b, i+1)
			}
			b.StopTimer()
			// CPU time (user+system) per step: less sensitive than wall
			// time to other processes sharing the machine.
			b.ReportMetric((cpuSeconds()-cpu0)/float64(b.N), "cpu-s/op")
			peak := tr.be.peak
			b.ReportMetric(float64(tr.params), "param-B")
			b.ReportMetric(float64(tr.grads), "grad-B")
			b.ReportMetric(float64(tr.optState), "adam-B")
			b.ReportMetric(float64(peak-tr.params-tr.grads-tr.optState), "act-B")
			b.ReportMetric(float64(peak), "peak-device-B")
			if tr.ad != nil {
				b.ReportMetric(float64(tr.ad.NumTrainable()), "trainable")
			} else {
				b.ReportMetric(float64(len(tr.m.Params())), "tensors")
			}
		})
	}
}

// BenchmarkTrainMemory measures process memory of the same training
// steps, one mode per sub-benchmark: the peak resident set (VmHWM, reset
// through /proc/self/clear_refs before the setup) and the Go heap.
func BenchmarkTrainMemory(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			runtime.GC()
			debug.FreeOSMemory()
			reset := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
			base := procStatus("VmRSS")
			tr := newTrainer(b, mode.rank, mode.dropout, mode.ckpt)
			for i := 0; i < b.N; i++ {
				tr.step(b, i)
			}
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if reset {
				b.ReportMetric(float64(procStatus("VmHWM")), "peak-RSS-B")
				b.ReportMetric(float64(procStatus("VmHWM")-base), "peak-RSS-over-start-B")
			}
			b.ReportMetric(float64(ms.HeapInuse), "heap-inuse-B")
			b.ReportMetric(float64(ms.HeapSys), "heap-sys-B")
			b.ReportMetric(float64(tr.be.peak), "peak-device-B")
			runtime.KeepAlive(tr)
		})
	}
}

// cpuSeconds is the process's user+system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// procStatus returns a "kB" field of /proc/self/status in bytes (0 when
// unavailable).
func procStatus(field string) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0
		}
		return kb * 1024
	}
	return 0
}
