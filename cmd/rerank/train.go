package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/dist"
	"github.com/rerank-go/rerank/train"
)

func trainFlags() []cli.Flag {
	d := train.DefaultArgs()
	return append([]cli.Flag{
		&cli.StringFlag{Name: "config", Usage: "JSON file of training arguments (snake_case keys, as training_args.json); flags given on the command line win"},
		&cli.StringFlag{Name: "model", Usage: "model to start from: a Hugging Face model directory (rerank init makes one) or Hub id (org/name[@revision])"},
		&cli.StringFlag{Name: "train-data", Usage: "FlagEmbedding JSONL (.jsonl/.json/.gz) file or directory"},
		&cli.StringFlag{Name: "output-dir", Usage: "where the final model, checkpoints, metrics.jsonl and training_args.json go"},
		&cli.StringFlag{Name: "cache-dir", Usage: "`DIR` caching the tokenized training data for resumed and repeated runs, outside the saved model (default: the user cache directory's rerank/train-encodings)"},
		&cli.IntFlag{Name: "train-group-size", Value: d.TrainGroupSize, Usage: "passages per query: 1 positive + N-1 negatives"},
		&cli.IntFlag{Name: "query-max-len", Value: d.QueryMaxLen, Usage: "query tokens (FlagEmbedding truncation)"},
		&cli.IntFlag{Name: "passage-max-len", Value: d.PassageMaxLen, Usage: "passage tokens (FlagEmbedding truncation)"},
		&cli.Float64Flag{Name: "learning-rate", Value: d.LearningRate, Usage: "peak learning rate"},
		&cli.Float64Flag{Name: "num-train-epochs", Value: d.NumTrainEpochs, Usage: "epochs (when --max-steps is not set)"},
		&cli.IntFlag{Name: "max-steps", Usage: "optimizer steps; overrides --num-train-epochs"},
		&cli.IntFlag{Name: "per-device-train-batch-size", Value: d.PerDeviceTrainBatchSize, Usage: "queries per micro-batch"},
		&cli.IntFlag{Name: "gradient-accumulation-steps", Value: d.GradientAccumulationSteps, Usage: "micro-batches per optimizer step"},
		&cli.Float64Flag{Name: "warmup-ratio", Value: d.WarmupRatio, Usage: "fraction of steps for linear warmup"},
		&cli.IntFlag{Name: "warmup-steps", Usage: "warmup steps; overrides --warmup-ratio"},
		&cli.Float64Flag{Name: "weight-decay", Value: d.WeightDecay, Usage: "AdamW weight decay (not on biases and LayerNorm)"},
		&cli.Float64Flag{Name: "max-grad-norm", Value: d.MaxGradNorm, Usage: "clip the global gradient norm (0: off)"},
		&cli.Uint64Flag{Name: "seed", Value: d.Seed, Usage: "seed of sampling, shuffling and dropout"},
		&cli.BoolFlag{Name: "gradient-checkpointing", Usage: "recompute each layer's activations in backward: less memory, same losses"},
		&cli.StringFlag{Name: "attention", Value: "auto", Usage: "auto (tiled from 1024 tokens), stored (keep every probability) or tiled (online softmax, recomputed in backward: memory linear in length)"},
		&cli.StringFlag{Name: "loss", Value: d.Loss, Usage: "ce (group softmax), bce (pointwise) or distill (ce + teacher pos_scores/neg_scores)"},
		&cli.IntFlag{Name: "logging-steps", Value: d.LoggingSteps, Usage: "write a metrics.jsonl line every N steps"},
		&cli.IntFlag{Name: "save-steps", Value: d.SaveSteps, Usage: "write a checkpoint every N steps and at the last step, as transformers' Trainer does (0: none)"},
		&cli.IntFlag{Name: "save-total-limit", Usage: "keep only the newest N checkpoints (0: all)"},
		&cli.IntFlag{Name: "eval-steps", Usage: "dev evaluation every N steps (0: before and after training only)"},
		&cli.StringFlag{Name: "dev-candidates", Usage: "dev candidates, e.g. DATA/bm25/dev.top100.jsonl"},
		&cli.StringFlag{Name: "dev-beir", Usage: "BEIR directory of the dev candidates (corpus.jsonl, queries.jsonl, qrels/)"},
		&cli.StringFlag{Name: "dev-split", Value: d.DevSplit, Usage: "qrels split of --dev-beir"},
		&cli.IntFlag{Name: "dev-top-k", Value: d.DevTopK, Usage: "candidates reranked per dev query"},
		&cli.IntFlag{Name: "dev-max-queries", Usage: "evaluate only the first N dev queries (0: all)"},
		&cli.IntFlag{Name: "per-device-eval-batch-size", Value: d.EvalBatchSize, Usage: "pairs per forward pass in evaluation"},
		&cli.IntFlag{Name: "lora-rank", Usage: "train LoRA adapters of this rank on the frozen model (0: full fine-tuning); the adapter is written to --output-dir"},
		&cli.Float64Flag{Name: "lora-alpha", Value: d.LoraAlpha, Usage: "LoRA alpha (update scaled by alpha/rank)"},
		&cli.Float64Flag{Name: "lora-dropout", Value: d.LoraDropout, Usage: "dropout on the adapters' input"},
		&cli.StringFlag{Name: "lora-target-modules", Usage: "comma-separated module names to adapt (default: query,value)"},
		&cli.BoolFlag{Name: "use-rslora", Usage: "rank-stabilised LoRA scaling alpha/sqrt(rank)"},
		&cli.StringFlag{Name: "resume", Usage: "continue from 'latest' (newest checkpoint in --output-dir) or a checkpoint directory"},
		&cli.StringFlag{Name: "resume-override", Usage: "comma-separated flags a --resume may change that change the run (e.g. learning-rate,loss); others must match the checkpoint's"},
		&cli.BoolFlag{Name: "overwrite-output-dir", Usage: "start a fresh run in a non-empty --output-dir, removing the earlier run's model, checkpoints and metrics"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"},
		&cli.StringFlag{Name: "ddp-backend", Usage: "data-parallel backend under mpirun or torchrun: nccl (GPUs), mpi (CPU processes, build with -tags mpi) or none; default: nccl on cuda, mpi on the cpu"},
		&cli.DurationFlag{Name: "ddp-timeout", Value: dist.DefaultTimeout, Usage: "how long a rank waits for the others in a collective before it stops with an error"},
	}, deviceFlags()...)
}

// argsFromFlags builds train.Args: defaults, then --config, then every
// flag set on the command line.
func argsFromFlags(c *cli.Context) (train.Args, error) {
	a := train.DefaultArgs()
	if p := c.String("config"); p != "" {
		var err error
		if a, err = train.ReadArgsFile(p, a); err != nil {
			return a, err
		}
	}
	str := map[string]*string{"model": &a.ModelDir, "train-data": &a.TrainData, "output-dir": &a.OutputDir, "cache-dir": &a.CacheDir, "loss": &a.Loss,
		"dev-candidates": &a.DevCandidates, "dev-beir": &a.DevBEIR, "dev-split": &a.DevSplit, "resume": &a.Resume}
	ints := map[string]*int{"train-group-size": &a.TrainGroupSize, "query-max-len": &a.QueryMaxLen, "passage-max-len": &a.PassageMaxLen,
		"max-steps": &a.MaxSteps, "per-device-train-batch-size": &a.PerDeviceTrainBatchSize, "gradient-accumulation-steps": &a.GradientAccumulationSteps,
		"warmup-steps": &a.WarmupSteps, "logging-steps": &a.LoggingSteps, "save-steps": &a.SaveSteps, "save-total-limit": &a.SaveTotalLimit,
		"eval-steps": &a.EvalSteps, "dev-top-k": &a.DevTopK, "dev-max-queries": &a.DevMaxQueries, "per-device-eval-batch-size": &a.EvalBatchSize}
	ints["lora-rank"] = &a.LoraRank
	floats := map[string]*float64{"lora-alpha": &a.LoraAlpha, "lora-dropout": &a.LoraDropout, "learning-rate": &a.LearningRate, "num-train-epochs": &a.NumTrainEpochs, "warmup-ratio": &a.WarmupRatio,
		"weight-decay": &a.WeightDecay, "max-grad-norm": &a.MaxGradNorm}
	for k, p := range str {
		if c.IsSet(k) {
			*p = c.String(k)
		}
	}
	for k, p := range ints {
		if c.IsSet(k) {
			*p = c.Int(k)
		}
	}
	for k, p := range floats {
		if c.IsSet(k) {
			*p = c.Float64(k)
		}
	}
	if c.IsSet("seed") {
		a.Seed = c.Uint64("seed")
	}
	if c.IsSet("use-rslora") {
		a.UseRSLoRA = c.Bool("use-rslora")
	}
	if c.IsSet("lora-target-modules") {
		a.LoraTargetModules = nil
		for _, m := range strings.Split(c.String("lora-target-modules"), ",") {
			if m = strings.TrimSpace(m); m != "" {
				a.LoraTargetModules = append(a.LoraTargetModules, m)
			}
		}
	}
	if c.IsSet("gradient-checkpointing") {
		a.GradientCheckpointing = c.Bool("gradient-checkpointing")
	}
	if c.IsSet("overwrite-output-dir") {
		a.OverwriteOutputDir = c.Bool("overwrite-output-dir")
	}
	if c.IsSet("resume-override") {
		a.ResumeOverride = nil
		for _, f := range strings.Split(c.String("resume-override"), ",") {
			if f = strings.TrimSpace(f); f == "" {
				continue
			}
			field := trainField(f)
			if field == "" {
				return a, fmt.Errorf("--resume-override: %q is not a flag of rerank train", f)
			}
			a.ResumeOverride = append(a.ResumeOverride, field)
		}
	}
	if c.IsSet("attention") {
		a.Attention = c.String("attention")
	}
	if a.LoraRank == 0 {
		// Without a rank the run fine-tunes every weight: a LoRA flag
		// would be ignored, and the user meant LoRA.
		for _, f := range []string{"lora-alpha", "lora-dropout", "lora-target-modules", "use-rslora"} {
			if c.IsSet(f) {
				return a, fmt.Errorf("--%s applies to LoRA training, which --lora-rank turns on (e.g. --lora-rank 16); without it every weight is fine-tuned", f)
			}
		}
	}
	return a, nil
}

func init() {
	register(&cli.Command{
		Name:      "train",
		Usage:     "fine-tune a cross-encoder reranker on FlagEmbedding data",
		UsageText: "rerank train --model DIR|ID --train-data PATH --output-dir DIR [--max-steps N] [options]",
		Description: "Trains like FlagEmbedding's reranker finetune (flag names are its arguments, kebab-cased). The final model\n" +
			"(config.json, model.safetensors, tokenizer files) is written at the top level of --output-dir, with\n" +
			"training_args.json, metrics.jsonl and checkpoint-N/ directories (--save-steps) that --resume continues from.",
		Flags: trainFlags(),
		Action: func(c *cli.Context) error {
			args, err := argsFromFlags(c)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			opts := train.Options{Hub: hubClient(c)}
			errw := c.App.ErrWriter
			if errw == nil {
				errw = os.Stderr
			}
			var prog *trainProgress
			launch, err := dist.Detect(os.Getenv)
			if err != nil {
				return err
			}
			device, monitorDevice, err := rankDevice(c.String("device"), launch, os.Getenv, os.Setenv)
			if err != nil {
				return err
			}
			be, release, err := openDevice(device, c.Bool("bf16"))
			if err != nil {
				return err
			}
			defer release()
			kind, _, _ := parseDevice(device)
			comm, err := dist.Open(dist.Options{Backend: c.String("ddp-backend"), Device: kind, Timeout: c.Duration("ddp-timeout"),
				Launch: &launch, GPU: be, Context: ctx})
			if err != nil {
				return err
			}
			opts.Comm = comm
			mon, peak := openMonitor(monitorDevice, func(f string, a ...any) {
				fmt.Fprintf(errw, "rerank: "+f+"\n", a...)
			})
			opts.Monitor = mon
			if !c.Bool("quiet") && comm.Rank() == 0 {
				var status func() string
				if s, ok := mon.(interface{ Status() string }); ok {
					status = s.Status
				}
				prog = newTrainProgress(errw, status)
				opts.Progress = prog
			} else if comm.Rank() == 0 {
				opts.Progress = warningsOnly{errw} // --quiet hides progress, not warnings
			}
			res, err := train.Run(ctx, be, args, opts)
			if prog != nil {
				prog.done()
			}
			err = withFlagNames(err)
			if peak != nil {
				if s := peak(); s != "" {
					fmt.Fprintln(c.App.Writer, s)
				}
			}
			if err != nil {
				var re *dist.RankError
				if comm.Size() > 1 && !errors.As(err, &re) {
					comm.Abort(err) // stop the other ranks now, naming this one
				}
				if comm.Size() > 1 {
					err = fmt.Errorf("rank %d of %d: %w", comm.Rank(), comm.Size(), err)
				}
				return err
			}
			if err := comm.Close(); err != nil {
				return err
			}
			if comm.Rank() != 0 {
				return nil
			}
			if args.LoraRank > 0 {
				fmt.Fprintf(c.App.Writer, "trained %d steps; LoRA adapter in %s (use it with --model %s --adapter %s, or rerank merge --adapter %s --output DIR)\n",
					res.Steps, res.ModelDir, args.ModelDir, res.ModelDir, res.ModelDir)
			} else {
				fmt.Fprintf(c.App.Writer, "trained %d steps; model in %s\n", res.Steps, res.ModelDir)
			}
			if res.DevBefore != nil && res.Dev != nil {
				fmt.Fprintf(c.App.Writer, "dev ndcg@10 %.4f -> %.4f, mrr@10 %.4f -> %.4f\n",
					res.DevBefore["ndcg@10"], res.Dev["ndcg@10"], res.DevBefore["mrr@10"], res.Dev["mrr@10"])
			}
			return nil
		},
	})
}

// rankDevice picks each rank's GPU for --device cuda under a launcher:
// the LOCAL_RANK-th visible one, as torchrun users expect
// (cuda:LOCAL_RANK). The process is given that GPU alone, through
// CUDA_VISIBLE_DEVICES set before CUDA starts, and opens it as cuda:0, so
// that every thread of the process sees it as its current device. It
// returns the device to open and the physical one (for NVML, which
// ignores CUDA_VISIBLE_DEVICES). An explicit cuda:N is kept as it is.
func rankDevice(device string, l dist.Launch, getenv func(string) string, setenv func(string, string) error) (open, physical string, err error) {
	kind, _, err := parseDevice(device)
	if err != nil || kind != "cuda" || strings.Contains(device, ":") || l.Size <= 1 {
		return device, device, err
	}
	visible := getenv("CUDA_VISIBLE_DEVICES")
	ids := []string{}
	for _, v := range strings.Split(visible, ",") {
		if v = strings.TrimSpace(v); v != "" {
			ids = append(ids, v)
		}
	}
	pick := strconv.Itoa(l.LocalRank)
	if visible != "" {
		if l.LocalRank >= len(ids) {
			return "", "", fmt.Errorf("local rank %d of %s needs a GPU, but CUDA_VISIBLE_DEVICES=%q lists %d: start at most %d processes per machine", l.LocalRank, l.Launcher, visible, len(ids), len(ids))
		}
		pick = ids[l.LocalRank]
	}
	if err := setenv("CUDA_VISIBLE_DEVICES", pick); err != nil {
		return "", "", err
	}
	physical = "cuda"
	if _, err := strconv.Atoi(pick); err == nil {
		physical = "cuda:" + pick
	}
	return "cuda:0", physical, nil
}
