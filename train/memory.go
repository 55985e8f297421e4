package train

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/nn"
)

// MemoryEstimate is the memory a training run needs, in bytes, by part.
// Every part comes from the sizes package nn and the optimizer allocate.
type MemoryEstimate struct {
	Params      int64 // the model's weights
	Grads       int64 // gradients of the trainable values
	Optimizer   int64 // AdamW's two moments of the trainable values
	Adapters    int64 // LoRA weights and their scratch
	Activations int64 // the largest batch's activations (nn.ActivationResidentBytes)
	Save        int64 // the host copy of the weights a save writes from
	Runtime     int64 // the process itself: Go runtime, tokenizer, data
}

// Total is the sum of the parts.
func (e MemoryEstimate) Total() int64 {
	return e.Params + e.Grads + e.Optimizer + e.Adapters + e.Activations + e.Save + e.Runtime
}

// String is the total and its parts, in binary units.
func (e MemoryEstimate) String() string { return fmtBytes(e.Total()) + " (" + e.Parts() + ")" }

// Parts lists the parts.
func (e MemoryEstimate) Parts() string {
	return fmt.Sprintf("weights %s, gradients %s, optimizer %s, adapters %s, activations %s, saving %s, runtime %s",
		fmtBytes(e.Params), fmtBytes(e.Grads), fmtBytes(e.Optimizer), fmtBytes(e.Adapters),
		fmtBytes(e.Activations), fmtBytes(e.Save), fmtBytes(e.Runtime))
}

// runtimeBytes is the resident memory of a training process besides the
// model and its buffers: the Go runtime, the binary, the tokenizer and a
// small data set (measured: bench/RESULTS.md, "Memory estimate").
const runtimeBytes = 40 << 20

// EstimateMemory is the memory a run of args needs for a model of cfg on
// be, before anything is allocated: parameters, gradients and AdamW
// state of the trainable values (all, or the LoRA adapters and the head),
// and the activations of the largest batch, training (batch × group
// pairs) or evaluation (the eval batch), at the longest input.
func EstimateMemory(be backend.Backend, cfg nn.Config, args Args) (MemoryEstimate, error) {
	if err := cfg.Validate(); err != nil {
		return MemoryEstimate{}, err
	}
	var e MemoryEstimate
	layout := nn.Layout(cfg)
	params, trainable := int64(0), int64(0)
	maxIn := 0
	lc := args.LoraConfig()
	for _, p := range layout {
		n := int64(1)
		for _, d := range p.Shape {
			n *= int64(d)
		}
		params += n
		if args.LoraRank == 0 || isHeadParam(p.Name, cfg) {
			trainable += n
		}
		if args.LoraRank > 0 && len(p.Shape) == 2 && strings.HasSuffix(p.Name, ".weight") && lc.Matches(strings.TrimSuffix(p.Name, ".weight")) {
			out, in := int64(p.Shape[0]), int64(p.Shape[1])
			e.Adapters += 4 * int64(args.LoraRank) * (in + out) // weights (their gradients and moments below)
			trainable += int64(args.LoraRank) * (in + out)
			maxIn = max(maxIn, p.Shape[1])
		}
	}
	e.Params = 4 * params
	e.Grads = 4 * trainable
	e.Optimizer = 8 * trainable
	s := args.QueryMaxLen + args.PassageMaxLen
	mode := nn.AttentionAuto
	if args.Attention != "" {
		m, err := nn.ParseAttentionMode(args.Attention)
		if err != nil {
			return e, fieldErr("attention", "%v", err)
		}
		mode = m
	}
	o := nn.ActOptions{GradientCheckpointing: args.GradientCheckpointing, Attention: nn.AttentionOptions{Mode: mode}, Packed: true}
	n := args.PerDeviceTrainBatchSize * args.TrainGroupSize
	if args.DevCandidates != "" {
		n = max(n, args.EvalBatchSize)
	}
	e.Activations = nn.ActivationResidentBytes(be, cfg, n, s, o)
	if args.LoraRank > 0 {
		e.Adapters += 4 * int64(n*s) * int64(maxIn+args.LoraRank) // dropout(x) and dy·B scratch
	}
	e.Save = e.Params // hfmodel.Save downloads every weight, then writes
	if args.LoraRank > 0 {
		e.Save = e.Adapters
	}
	e.Runtime = runtimeBytes
	return e, nil
}

// isHeadParam reports whether a parameter belongs to the head, which LoRA
// training keeps trainable (nn.Model.HeadParams).
func isHeadParam(name string, cfg nn.Config) bool {
	return strings.HasPrefix(name, "classifier.") || strings.HasPrefix(name, cfg.Arch.Prefix()+".pooler.")
}

// AvailableMemory is the memory this process may still use: the kernel's
// MemAvailable, or less under a cgroup limit (v2 memory.max, v1
// memory.limit_in_bytes) minus the group's usage. ok is false when
// neither can be read (not Linux).
func AvailableMemory() (bytes int64, ok bool) {
	avail := int64(math.MaxInt64)
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == "MemAvailable:" {
				if kb, err := strconv.ParseInt(f[1], 10, 64); err == nil {
					avail, ok = kb<<10, true
				}
			}
		}
	}
	for _, p := range [][2]string{
		{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"},
		{"/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"},
	} {
		limit, err1 := readInt(p[0])
		used, err2 := readInt(p[1])
		if err1 == nil && err2 == nil && limit > 0 && limit < 1<<60 {
			avail, ok = min(avail, max(0, limit-used)), true
			break
		}
	}
	return avail, ok
}

func readInt(path string) (int64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(string(bytes.TrimSpace(data)), 10, 64)
}

// checkMemory refuses a run whose estimate exceeds the available memory,
// with both figures and what to lower. Only host memory is checked: a
// GPU backend's memory is its own.
func checkMemory(be backend.Backend, cfg nn.Config, args Args, avail int64) error {
	e, err := EstimateMemory(be, cfg, args)
	if err != nil {
		return err
	}
	if e.Total() <= avail {
		return nil
	}
	return fieldErr("per_device_train_batch_size", "this run needs about %s of memory, but %s is available (%s): lower {per_device_train_batch_size} (%d) or {train_group_size} (%d), shorten {passage_max_len}, use {gradient_checkpointing} or {lora_rank}",
		fmtBytes(e.Total()), fmtBytes(avail), e.Parts(), args.PerDeviceTrainBatchSize, args.TrainGroupSize)
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
