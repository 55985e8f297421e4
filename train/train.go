package train

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/crossencoder"
	"github.com/rerank-go/rerank/dist"
	"github.com/rerank-go/rerank/flagdata"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/hub"
	"github.com/rerank-go/rerank/input"
	"github.com/rerank-go/rerank/internal/atomicfile"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/optim"
	"github.com/rerank-go/rerank/tokenize"
)

// EncodingCacheFile is where earlier versions cached the tokenized
// training data: in the output directory, which is the saved model's, so
// the cache went wherever the model was uploaded. It now lives in
// Args.CacheDir (EncodingCachePath); --overwrite-output-dir removes an old
// one.
const EncodingCacheFile = "train_encodings.cache"

// EncodingCachePath is the file that caches a run's tokenized training
// data: train_encodings-<key>.cache in a.CacheDir (default
// os.UserCacheDir()/rerank/train-encodings), the key a hash of the output
// directory's absolute path, so that a resumed or repeated run in the same
// directory finds it. The cache checks its tokenizer and truncation
// itself. It returns "" (no cache) when there is no user cache directory.
func EncodingCachePath(a Args) (string, error) {
	dir := a.CacheDir
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return "", nil
		}
		dir = filepath.Join(base, "rerank", "train-encodings")
	}
	out, err := filepath.Abs(a.OutputDir)
	if err != nil {
		return "", fieldErr("output_dir", "%v", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fieldErr("cache_dir", "%v", err)
	}
	sum := sha256.Sum256([]byte(filepath.Clean(out)))
	return filepath.Join(dir, "train_encodings-"+hex.EncodeToString(sum[:8])+".cache"), nil
}

// StepInfo describes one finished optimizer step.
type StepInfo struct {
	Step     int // 1-based
	Total    int // steps of the whole run
	Epoch    int // the sampler's epoch (0-based)
	Loss     float64
	LR       float64
	GradNorm float64
	// Pairs is the number of query-passage pairs the step trained on
	// (over all processes).
	Pairs int
}

// Options are the hooks and outputs of a run besides its Args.
type Options struct {
	// Progress receives messages and every step's figures; nil is
	// silent. The library draws nothing itself.
	Progress Progress
	// OnStep is called after every optimizer step (and after that step's
	// logging, evaluation and checkpoint). An error stops the run and is
	// returned.
	OnStep func(StepInfo) error
	// BeforeUpdate is called after the backward passes of a step, before
	// the gradients are checked, clipped and applied (tests use it).
	BeforeUpdate func(step int, m *nn.Model)
	// Monitor, when set, reports the device's memory and utilisation (a
	// GPU monitor; nil on the CPU): Metrics go into every metrics.jsonl
	// record.
	Monitor Monitor
	// AvailableMemory is the host memory the run may take, 0 for what
	// the machine (or its cgroup) has available now. Run estimates its
	// needs from the model's config before allocating (EstimateMemory) and
	// refuses a run that cannot fit, with both figures. Backends with
	// their own memory (a GPU) are not checked.
	AvailableMemory int64
	// Comm runs the training data-parallel over the processes of a
	// launch (package dist; nil is one process). Every rank calls Run
	// with the same Args; rank 0 alone writes files and progress.
	Comm dist.Comm
	// BucketBytes is the size of the gradient buckets a DeviceComm (NCCL)
	// reduces while the backward pass goes on (0: dist.BucketBytes, 25 MB).
	BucketBytes int
	// Hub resolves a Hugging Face Hub id given as the model
	// (args.ModelDir); nil means hub.FromEnv().
	Hub *hub.Client
	// Examples, when not nil, are the training data, in place of the
	// file args.TrainData (which may then be empty: it only names the
	// data in messages and args.json).
	Examples []flagdata.Example
	// MetricsPath is the metrics.jsonl the run writes (a record per
	// logging step, truncated to the checkpoint on resume); "" is
	// MetricsFile in args.OutputDir.
	MetricsPath string
	// Health tunes the checks that warn, through Progress.Message, when
	// the loss sits at chance or the scores collapse (see Health). Run
	// fills in Chance (ChanceLoss of the loss and group size) and After
	// (the warmup steps) when they are 0.
	Health HealthOptions
}

// Monitor reports a device's state during training.
type Monitor interface {
	// Metrics are numbers added to each metrics.jsonl record.
	Metrics() map[string]float64
}

// Result summarises a finished run.
type Result struct {
	Steps     int       // optimizer steps done in total (also when Run stopped early)
	FirstStep int       // the first step this call ran (1, or after the resumed checkpoint)
	Losses    []float64 // the loss of every step this call ran
	Dev       map[string]float64
	DevBefore map[string]float64
	ModelDir  string    // the final model directory (OutputDir)
	Net       *nn.Model // the trained network, still on the backend
}

// NonFiniteError reports a NaN or Inf loss or gradient.
type NonFiniteError struct {
	Step       int
	What       string // "loss" or "gradient norm"
	Value      float64
	Checkpoint string // the last good checkpoint, "" when none was written
}

// Error is Format with the Args field names as they are (a library
// caller's names; the CLI formats its own flag names).
func (e *NonFiniteError) Error() string { return e.Format(func(f string) string { return f }) }

// Format renders the error naming training arguments with name.
func (e *NonFiniteError) Format(name func(field string) string) string {
	kept := "no checkpoint was written before it"
	if e.Checkpoint != "" {
		kept = "the last good checkpoint is " + e.Checkpoint + " (resume with {resume_from_checkpoint} " + e.Checkpoint + ")"
	}
	return FormatFields(fmt.Sprintf("step %d: %s is %v: training stopped without saving; %s; try a lower {learning_rate} or a {max_grad_norm}",
		e.Step, e.What, e.Value, kept), name)
}

// trainer holds a run's state.
type trainer struct {
	args    Args
	opts    Options
	be      backend.Backend
	net     *nn.Model
	cfg     *hfmodel.Config
	opt     *optim.AdamW
	samp    *flagdata.Sampler
	data    *Encoded
	loss    Loss
	dlogits []float32 // the loss's gradient, reused every micro-step
	sched   optim.LinearSchedule
	dev     *DevSet
	score   *crossencoder.Model
	lora    *lora.Adapters // nil for full fine-tuning
	st      State
	ckpt    string // last checkpoint written or resumed from
	log     *metricsLog
	comm    dist.Comm
	flat    []float32   // host buffer of the all-reduces and broadcasts
	lossBuf backend.Buf // the loss on the device, for a DeviceComm
	// base is the model's directory (a Hub id's cached snapshot), source
	// where it came from (the Hub id, or the directory's absolute path),
	// which an adapter records as base_model_name_or_path.
	base, source string
}

// Run trains a model as args say, on be, the way FlagEmbedding's
// reranker trainer does (same arguments, loss, sampling and output), and
// returns when args.MaxSteps (or NumTrainEpochs) steps are done, ctx is
// cancelled, or a step fails.
//
// It loads args.ModelDir (a directory or a Hugging Face Hub id, through
// opts.Hub), attaches LoRA adapters when args.LoraRank > 0, tokenizes the
// training data once (args.TrainData, or opts.Examples; cached in
// args.CacheDir, see EncodingCachePath), then runs optimizer steps of
// PerDeviceTrainBatchSize × GradientAccumulationSteps groups, evaluating
// on args.DevCandidates every EvalSteps. args.OutputDir receives
// checkpoint-N directories every SaveSteps and at the last step, as
// transformers' Trainer writes them (args.Resume continues from
// one, with identical losses), metrics.jsonl (or opts.MetricsPath) and
// the final model or adapter, written atomically. Progress goes to
// opts.Progress and opts.OnStep; the library draws nothing.
//
// The Result is returned with the steps done so far also when an error
// stops the run (an interrupt, a NonFiniteError); errors about arguments
// are *FieldError values named by their JSON keys.
func Run(ctx context.Context, be backend.Backend, args Args, opts Options) (*Result, error) {
	if opts.Examples != nil && args.TrainData == "" {
		args.TrainData = "in-memory examples"
	}
	if err := args.Validate(); err != nil {
		return nil, err
	}
	t := &trainer{args: args, opts: opts, be: be, comm: opts.Comm}
	if t.comm == nil {
		t.comm = dist.Single{}
	}
	rank, world := t.comm.Rank(), t.comm.Size()
	if rank != 0 {
		t.opts.Progress = nil // rank 0 alone draws progress
	}
	lossFn, err := LossByName(args.Loss)
	if err != nil {
		return nil, err
	}
	t.loss = lossFn
	if sameDir(args.ModelDir, args.OutputDir) {
		return nil, fieldErr("output_dir", "%s is the input {model_name_or_path}: training would overwrite its weights; choose another {output_dir}", args.OutputDir)
	}
	if rank == 0 {
		// Rank 0 writes the directory and holds its lock for the run.
		lock, err := LockOutputDir(args.OutputDir)
		if err != nil {
			return nil, err
		}
		defer lock.Unlock()
		removed, err := removeStaleTemps(args.OutputDir)
		if err != nil {
			return nil, fmt.Errorf("output dir: removing the temporaries of an interrupted run: %w", err)
		}
		if len(removed) > 0 {
			t.progressf("removed %d temporaries left by an interrupted run (%s)", len(removed), removed[0])
		}
	} else if err := os.MkdirAll(args.OutputDir, 0o755); err != nil {
		return nil, fieldErr("output_dir", "%v", err)
	}

	// Resume: find the checkpoint first, since the model comes from it.
	resumeDir := ""
	switch args.Resume {
	case "":
	case "latest", "auto", "true":
		d, err := LatestCheckpoint(args.OutputDir)
		if err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		if d == "" {
			return nil, fmt.Errorf("resume: no checkpoint-* directory with %s in %s", StateFile, args.OutputDir)
		}
		resumeDir = d
	default:
		resumeDir = args.Resume
	}
	if resumeDir == "" && rank == 0 && !args.OverwriteOutputDir {
		if err := checkFreshOutputDir(args.OutputDir); err != nil {
			return nil, err
		}
	}
	if resumeDir != "" {
		if t.st, err = readState(resumeDir); err != nil {
			return nil, err
		}
		if err := checkResumeWorld(resumeDir, t.st, args, world); err != nil {
			return nil, err
		}
		if t.st.Seed != args.Seed {
			return nil, fieldErr("seed", "%s was trained with {seed} %d, this run has %d: resume with the same arguments", resumeDir, t.st.Seed, args.Seed)
		}
		if err := checkResumeArgs(resumeDir, args); err != nil {
			return nil, err
		}
	}

	res, err := opts.Hub.Resolve(ctx, args.ModelDir, hub.Model)
	if err != nil {
		return nil, fieldErr("model_name_or_path", "%s: %v (give a model directory, which rerank init creates, or a Hugging Face Hub id)", args.ModelDir, err)
	}
	if st, err := os.Stat(res.Dir); err != nil || !st.IsDir() {
		return nil, fieldErr("model_name_or_path", "%s: no such model directory (rerank init creates one; a Hugging Face Hub id works too)", args.ModelDir)
	}
	t.base, t.source = res.Dir, res.Source
	tok, err := input.LoadTokenizer(t.base)
	if err != nil {
		return nil, err
	}
	modelDir := t.base
	if resumeDir != "" && args.LoraRank == 0 {
		modelDir = resumeDir
	}
	if err := t.checkMemory(modelDir); err != nil {
		return nil, err
	}
	net, info, err := hfmodel.Load(be, modelDir, hfmodel.LoadOptions{}) // a fresh head is the one eval and score draw: not --seed's
	if err != nil {
		return nil, err
	}
	t.net, t.cfg = net, info.Config
	if len(info.Initialized) > 0 && resumeDir == "" {
		t.progressf("%s has no trained head: initialised %d tensors (%s, ...)", modelDir, len(info.Initialized), info.Initialized[0])
	}
	// The one check that tokenizer and lengths fit the model: the
	// training batches and the dev scoring share the encoder.
	enc, err := input.NewEncoder(net.Cfg, tok, tokenize.Truncation{Strategy: tokenize.FlagEmbedding, QueryMaxLen: args.QueryMaxLen, PassageMaxLen: args.PassageMaxLen})
	var lenErr *input.LengthError
	if errors.As(err, &lenErr) {
		return nil, fieldErr("query_max_len", "{query_max_len} %d + {passage_max_len} %d = %d tokens, but %s takes at most %d (its position table): lower them",
			args.QueryMaxLen, args.PassageMaxLen, lenErr.Trunc.Limit(), modelDir, lenErr.Max)
	}
	if err != nil {
		return nil, err
	}
	if t.score, err = crossencoder.NewWithEncoder(net, enc, crossencoder.Options{BatchSize: args.EvalBatchSize}); err != nil {
		return nil, err
	}
	if args.Attention != "" {
		mode, err := nn.ParseAttentionMode(args.Attention)
		if err != nil {
			return nil, fieldErr("attention", "%v", err)
		}
		net.Attention.Mode = mode
	}
	params := net.Params()
	switch {
	case args.LoraRank > 0 && resumeDir != "":
		if t.lora, err = lora.Load(net, resumeDir); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		params = t.lora.Trainable()
	case args.LoraRank > 0:
		if t.lora, err = lora.Attach(net, args.LoraConfig(), args.Seed); err != nil {
			return nil, fieldErr("lora_rank", "%v", err)
		}
		params = t.lora.Trainable()
		t.progressf("LoRA r=%d alpha=%g on %d modules: %d trainable values", args.LoraRank, args.LoraAlpha, len(t.lora.List()), t.lora.NumTrainable())
	default:
		if err := net.EnableGrads(nil); err != nil {
			return nil, err
		}
	}
	if t.opt, err = optim.NewAdamW(be, params, float32(args.WeightDecay)); err != nil {
		return nil, err
	}

	examples := opts.Examples
	if examples == nil {
		if examples, err = flagdata.Load(args.TrainData, flagdata.Options{RequireScores: args.Loss == "distill"}); err != nil {
			return nil, err
		}
	}
	if need := args.TrainGroupSize - 1; need > 0 {
		// FlagEmbedding repeats the negatives of such groups; say so.
		short, first := 0, -1
		for i, e := range examples {
			if len(e.Neg) < need {
				short++
				if first < 0 {
					first = i
				}
			}
		}
		if short > 0 {
			e := examples[first]
			t.progressf("%d of %d training examples have fewer than the %d negatives {train_group_size} %d takes (the first: %s:%d has %d): their negatives are repeated, as FlagEmbedding does",
				short, len(examples), need, args.TrainGroupSize, e.File, e.Line, len(e.Neg))
		}
	}
	t.samp, err = flagdata.NewSampler(examples, flagdata.SamplerConfig{
		GroupSize: args.TrainGroupSize, BatchSize: args.PerDeviceTrainBatchSize * world, Seed: args.Seed, Distill: args.Loss == "distill",
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", args.TrainData, err)
	}
	t.progressf("encoding %d training examples ...", len(examples))
	// Rank 0 tokenizes and writes the cache; the others then read it.
	cachePath, err := EncodingCachePath(args)
	if err != nil {
		return nil, err
	}
	if rank == 0 {
		if t.data, err = Encode(enc, examples, cachePath); err != nil {
			return nil, err
		}
	}
	if err := t.comm.Barrier(); err != nil {
		return nil, fmt.Errorf("waiting for rank 0 to encode the training data: %w", err)
	}
	if rank != 0 {
		if t.data, err = Encode(enc, examples, cachePath); err != nil {
			return nil, err
		}
	}

	total := args.MaxSteps
	if total <= 0 {
		perEpoch := max(1, t.samp.StepsPerEpoch()/args.GradientAccumulationSteps)
		total = int(math.Ceil(args.NumTrainEpochs * float64(perEpoch)))
	}
	warm := args.WarmupSteps
	if warm <= 0 {
		warm = optim.WarmupSteps(args.WarmupRatio, total)
	}
	t.sched = optim.LinearSchedule{Peak: args.LearningRate, Warmup: warm, Total: total}

	if args.DevCandidates != "" {
		if t.dev, err = LoadDev(args.DevCandidates, args.DevBEIR, args.DevSplit, args.DevMaxQueries); err != nil {
			return nil, err
		}
		if m := t.dev.Missing; len(m) > 0 {
			t.progressf("warning: the dev qrels judge %d documents relevant that the corpus of {dev_beir} lacks (%s): dev recall and nDCG stay below 1",
				len(m), strings.Join(m[:min(len(m), 5)], ", "))
		}
	}

	if resumeDir != "" {
		if t.st.Total != total {
			return nil, fmt.Errorf("resume: %s is from a run of %d steps, this one has %d: resume with the same arguments", resumeDir, t.st.Total, total)
		}
		if err := loadOptimizer(resumeDir, t.opt, t.st.Step); err != nil {
			return nil, err
		}
		if err := t.samp.Restore(t.st.Sampler); err != nil {
			return nil, fmt.Errorf("resume: %w", err)
		}
		t.ckpt = resumeDir
		if rank == 0 {
			if err := truncateMetrics(t.metricsPath(), t.st.Step); err != nil {
				return nil, err
			}
		}
		t.progressf("resuming from %s at step %d of %d", resumeDir, t.st.Step, total)
		t.st.WorldSize = world
	} else {
		t.st = State{Total: total, Seed: args.Seed, WorldSize: world}
		if rank == 0 {
			os.Remove(t.metricsPath())
		}
	}
	if rank == 0 && resumeDir == "" && args.OverwriteOutputDir {
		if err := clearOutputDir(args.OutputDir); err != nil {
			return nil, err
		}
	}
	if rank == 0 {
		if err := writeArgs(filepath.Join(args.OutputDir, ArgsFile), args); err != nil {
			return nil, err
		}
	}
	if t.parallel() {
		t.progressf("data-parallel on %d processes (%s): global batch %d queries × %d accumulation steps", world, t.comm.Name(), args.PerDeviceTrainBatchSize*world, args.GradientAccumulationSteps)
	}
	if err := t.broadcastWeights(); err != nil {
		return nil, err
	}
	return t.loop(ctx)
}

// metricsPath is the metrics.jsonl the run writes.
func (t *trainer) metricsPath() string {
	if t.opts.MetricsPath != "" {
		return t.opts.MetricsPath
	}
	return filepath.Join(t.args.OutputDir, MetricsFile)
}

// checkMemory compares the run's memory estimate with what is available
// on a CPU backend, before the model is loaded.
func (t *trainer) checkMemory(modelDir string) error {
	if !strings.HasPrefix(t.be.Name(), "cpu") {
		return nil
	}
	cfg, err := hfmodel.ReadConfig(modelDir)
	if err != nil {
		return nil // Load says what is wrong
	}
	avail := t.opts.AvailableMemory
	if avail <= 0 {
		var ok bool
		if avail, ok = AvailableMemory(); !ok {
			return nil
		}
	}
	if err := checkMemory(t.be, cfg.Config, t.args, avail); err != nil {
		return err
	}
	if e, err := EstimateMemory(t.be, cfg.Config, t.args); err == nil {
		t.progressf("memory: about %s needed, %s available", e, fmtBytes(avail))
	}
	return nil
}

// newHealth returns the run's health detector (nil when Progress is nil:
// no one would hear it).
func (t *trainer) newHealth() *Health {
	if t.opts.Progress == nil || t.opts.Health.Disable {
		return nil
	}
	o := t.opts.Health
	if o.Chance == 0 {
		o.Chance, o.ChanceDesc, _ = ChanceLoss(t.args.Loss, t.args.TrainGroupSize)
	}
	if o.After == 0 {
		o.After = t.sched.Warmup
	}
	return NewHealth(o)
}

func (t *trainer) progressf(format string, a ...any) {
	if t.opts.Progress != nil {
		t.opts.Progress.Message(fmt.Sprintf(format, a...))
	}
}

func (t *trainer) evaluate(ctx context.Context) (map[string]float64, error) {
	m, err := evaluateSharded(ctx, t.dev, t.score, t.args.DevTopK, t.args.EvalBatchSize, t.comm)
	if err != nil {
		return nil, fmt.Errorf("dev evaluation at step %d: %w", t.st.Step, err)
	}
	return m, nil
}

func (t *trainer) loop(ctx context.Context) (*Result, error) {
	a := t.args
	res := &Result{FirstStep: t.st.Step + 1, Steps: t.st.Step, ModelDir: a.OutputDir, Net: t.net}
	var err error
	logPath := t.metricsPath()
	if t.comm.Rank() != 0 {
		logPath = "" // rank 0 alone writes metrics.jsonl
	}
	if t.log, err = newMetricsLog(logPath); err != nil {
		return nil, err
	}
	defer t.log.close()
	if t.dev != nil && t.st.Step == 0 {
		t.progressf("evaluating the initial model on %d dev queries (%d pairs) ...", len(t.dev.Cands), t.dev.Pairs(a.DevTopK))
		if res.DevBefore, err = t.evaluate(ctx); err != nil {
			return nil, err
		}
		if err := t.log.write(record(0, math.NaN(), math.NaN(), 0, res.DevBefore)); err != nil {
			return nil, err
		}
		t.progressf("step 0: dev ndcg@10 %.4f mrr@10 %.4f", res.DevBefore["ndcg@10"], res.DevBefore["mrr@10"])
	}
	G := a.TrainGroupSize
	health := t.newHealth()
	pairsSinceLog, logStart := 0, time.Now()
	for t.st.Step < t.st.Total {
		if err := ctx.Err(); err != nil {
			last := "none yet"
			if t.ckpt != "" {
				last = t.ckpt + "; continue with {resume_from_checkpoint} latest and the same arguments, which " +
					filepath.Join(a.OutputDir, ArgsFile) + " holds"
			}
			return res, &wrapError{msg: fmt.Sprintf("interrupted after step %d (last checkpoint: %s)", t.st.Step, last), err: err}
		}
		step := t.st.Step // 0-based index of this update
		lr := t.sched.LR(step)
		t.net.ZeroGrads()
		if t.lora != nil {
			t.lora.ZeroGrads()
		}
		var loss float64
		collapsed := false
		stepPairs := 0
		for micro := 0; micro < a.GradientAccumulationSteps; micro++ {
			b := t.samp.Next()
			if world := t.comm.Size(); world > 1 {
				lo, hi := share(len(b.Groups), t.comm.Rank(), world)
				b.Groups = b.Groups[lo:hi]
			}
			batch, teacher := t.data.Batch(b)
			seed := backend.SubSeed(a.Seed, uint64(step*a.GradientAccumulationSteps+micro))
			if r := t.comm.Rank(); r > 0 {
				seed = backend.SubSeed(seed, uint64(r)) // each rank its own dropout
			}
			logits, err := t.net.Forward(batch, nn.RunOptions{Train: true, Seed: seed, SkipPadding: true, GradientCheckpointing: a.GradientCheckpointing})
			if err != nil {
				return res, fmt.Errorf("step %d: %w", step+1, err)
			}
			collapsed = health.Collapsed(logits, G) && (micro == 0 || collapsed)
			l, grad, err := t.loss(t.dlogits[:0], logits, G, teacher)
			if err != nil {
				return res, fmt.Errorf("step %d: %w", step+1, err)
			}
			if (math.IsNaN(l) || math.IsInf(l, 0)) && !t.parallel() {
				// With several ranks, the averaged loss below stops all.
				return res, &NonFiniteError{Step: step + 1, What: "loss", Value: l, Checkpoint: t.ckpt}
			}
			t.dlogits = grad // reused by the next micro-step
			if k := float32(a.GradientAccumulationSteps); k > 1 {
				for i := range grad {
					grad[i] /= k
				}
			}
			loss += l / float64(a.GradientAccumulationSteps)
			var finish func() (float64, error)
			if dc, ok := t.comm.(dist.DeviceComm); ok && t.parallel() && micro == a.GradientAccumulationSteps-1 {
				// The last micro-step: reduce while backward runs.
				if finish, err = t.deviceSync(dc, loss); err != nil {
					return res, fmt.Errorf("step %d: %w", step+1, err)
				}
			}
			if err := t.net.Backward(grad); err != nil {
				t.net.GradsReady = nil
				return res, fmt.Errorf("step %d: %w", step+1, err)
			}
			if finish != nil {
				if loss, err = finish(); err != nil {
					return res, fmt.Errorf("step %d: gradients: %w", step+1, err)
				}
			}
			pairsSinceLog += batch.N * t.comm.Size()
			stepPairs += batch.N * t.comm.Size()
			t.st.Epoch = b.Epoch
		}
		if loss, err = t.reduceGrads(step+1, loss); err != nil {
			return res, err
		}
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return res, &NonFiniteError{Step: step + 1, What: "loss", Value: loss, Checkpoint: t.ckpt}
		}
		if t.opts.BeforeUpdate != nil {
			t.opts.BeforeUpdate(step+1, t.net)
		}
		norm := optim.ClipGradNorm(t.be, t.opt.Params(), a.MaxGradNorm)
		if math.IsNaN(norm) || math.IsInf(norm, 0) {
			return res, &NonFiniteError{Step: step + 1, What: "gradient norm", Value: norm, Checkpoint: t.ckpt}
		}
		if err := t.opt.Step(float32(lr)); err != nil {
			return res, err
		}
		t.st.Step++
		res.Steps = t.st.Step // also right when a later error stops the run
		res.Losses = append(res.Losses, loss)
		t.st.LogLossSum += loss
		t.st.LogCount++
		info := StepInfo{Step: t.st.Step, Total: t.st.Total, Epoch: t.st.Epoch, Loss: loss, LR: lr, GradNorm: norm, Pairs: stepPairs}
		if t.opts.Progress != nil {
			t.opts.Progress.Step(info)
		}
		for _, w := range health.Observe(t.st.Step, loss, collapsed) {
			t.progressf("%s", w.Message)
		}

		var dev map[string]float64
		if t.dev != nil && ((a.EvalSteps > 0 && t.st.Step%a.EvalSteps == 0) || t.st.Step == t.st.Total) {
			if dev, err = t.evaluate(ctx); err != nil {
				return res, err
			}
			res.Dev = dev
			t.progressf("step %d: dev ndcg@10 %.4f mrr@10 %.4f", t.st.Step, dev["ndcg@10"], dev["mrr@10"])
		}
		if t.st.Step%a.LoggingSteps == 0 || t.st.Step == t.st.Total || dev != nil {
			el := time.Since(logStart).Seconds()
			pps := 0.0
			if el > 0 {
				pps = float64(pairsSinceLog) / el
			}
			avg := t.st.LogLossSum / float64(max(1, t.st.LogCount))
			rec := record(t.st.Step, avg, lr, pps, dev, "grad_norm", norm, "epoch", float64(t.st.Epoch))
			if t.opts.Monitor != nil {
				for k, v := range t.opts.Monitor.Metrics() {
					rec[k] = v
				}
			}
			if err := t.log.write(rec); err != nil {
				return res, err
			}
			t.st.LogLossSum, t.st.LogCount = 0, 0
			pairsSinceLog, logStart = 0, time.Now()
		}
		// As transformers' Trainer (save_strategy "steps"): every SaveSteps,
		// and at the last step whatever its number.
		if a.SaveSteps > 0 && (t.st.Step%a.SaveSteps == 0 || t.st.Step == t.st.Total) {
			t.st.Sampler = t.samp.State()
			if t.comm.Rank() == 0 {
				dir, err := saveCheckpoint(a.OutputDir, t.saveModel, t.opt, t.st, a)
				if err != nil {
					return res, err
				}
				t.ckpt = dir
				if err := rotate(a.OutputDir, a.SaveTotalLimit); err != nil {
					return res, fmt.Errorf("save total limit: %w", err)
				}
			} else {
				t.ckpt = CheckpointDir(a.OutputDir, t.st.Step)
			}
		}
		if t.opts.OnStep != nil {
			if err := t.opts.OnStep(info); err != nil {
				return res, err
			}
		}
	}
	res.Steps = t.st.Step
	if t.comm.Rank() == 0 {
		if err := t.saveModel(a.OutputDir); err != nil {
			return res, err
		}
	}
	if err := t.comm.Barrier(); err != nil {
		return res, fmt.Errorf("waiting for rank 0 to save the model: %w", err)
	}
	what := "model"
	if t.lora != nil {
		what = "LoRA adapter (base: " + a.ModelDir + ")"
	}
	t.progressf("saved the %s to %s", what, a.OutputDir)
	return res, nil
}

// saveModel writes the model directory, or with LoRA the PEFT adapter
// directory (with the tokenizer files), to dir.
func (t *trainer) saveModel(dir string) error {
	if t.lora == nil {
		return hfmodel.Save(t.net, t.cfg, dir, t.base)
	}
	if err := t.lora.Save(dir, t.source); err != nil {
		return err
	}
	if err := hfmodel.CopyTokenizer(t.base, dir); err != nil {
		return err
	}
	return hfmodel.WriteTokenizerConfig(dir, t.net.Cfg.MaxSequence())
}

// record builds one metrics.jsonl line: step, loss, learning_rate,
// pairs_per_second, dev_<metric> for dev metrics, and extra key/value
// pairs. NaN values are left out.
func record(step int, loss, lr, pps float64, dev map[string]float64, extra ...any) map[string]any {
	r := map[string]any{"step": step}
	put := func(k string, v float64) {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			r[k] = v
		}
	}
	put("loss", loss)
	put("learning_rate", lr)
	if pps > 0 {
		put("pairs_per_second", pps)
	}
	for k, v := range dev {
		put("dev_"+k, v)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		put(extra[i].(string), extra[i+1].(float64))
	}
	return r
}

// truncateMetrics drops the lines of metrics.jsonl after step, so that a
// resumed run's log continues where its checkpoint was.
func truncateMetrics(path string, step int) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var keep bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r struct {
			Step int `json:"step"`
		}
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.Step <= step {
			keep.Write(sc.Bytes())
			keep.WriteByte('\n')
		}
	}
	return atomicfile.WriteFile(path, keep.Bytes())
}
