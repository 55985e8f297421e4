// Package train fine-tunes cross-encoder rerankers on FlagEmbedding data:
// the group sampler's batches are encoded once, scored by the model in
// training mode (dropout on), turned into a loss (group softmax CE,
// pointwise BCE or CE plus teacher distillation), back-propagated,
// clipped and applied with AdamW under a linear warmup/decay schedule.
//
// A run writes checkpoints atomically every SaveSteps (model, optimizer
// moments, step, sampler position and RNG, arguments) and resumes from
// them with exactly the losses an uninterrupted run would have had. It
// logs metrics.jsonl, evaluates on a dev candidate file every EvalSteps,
// and stops on a NaN or Inf loss or gradient without touching the last
// good checkpoint. The final model is a Hugging Face directory at the top
// level of OutputDir.
package train

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"

	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/nn"
)

// Args are the training arguments, named after FlagEmbedding's and
// transformers' TrainingArguments (snake_case in JSON and config files,
// kebab-case on the command line).
type Args struct {
	ModelDir  string `json:"model_name_or_path"`
	TrainData string `json:"train_data"`
	OutputDir string `json:"output_dir"`

	TrainGroupSize int `json:"train_group_size"`
	QueryMaxLen    int `json:"query_max_len"`
	PassageMaxLen  int `json:"passage_max_len"`

	LearningRate              float64 `json:"learning_rate"`
	NumTrainEpochs            float64 `json:"num_train_epochs"`
	MaxSteps                  int     `json:"max_steps"` // > 0 overrides epochs
	PerDeviceTrainBatchSize   int     `json:"per_device_train_batch_size"`
	GradientAccumulationSteps int     `json:"gradient_accumulation_steps"`
	WarmupRatio               float64 `json:"warmup_ratio"`
	WarmupSteps               int     `json:"warmup_steps"` // > 0 overrides the ratio
	WeightDecay               float64 `json:"weight_decay"`
	MaxGradNorm               float64 `json:"max_grad_norm"` // <= 0: no clipping
	Seed                      uint64  `json:"seed"`
	GradientCheckpointing     bool    `json:"gradient_checkpointing"`
	// Attention is auto (tiled from nn.DefaultTiledFrom tokens), stored or
	// tiled (see nn.AttentionMode); empty means auto.
	Attention string `json:"attention,omitempty"`
	// Loss is ce (group softmax cross-entropy, FlagEmbedding's), bce
	// (pointwise binary cross-entropy with logits) or distill (ce plus
	// -Σ softmax(teacher)·log_softmax(logits), needs pos_scores/neg_scores).
	Loss string `json:"loss"`

	// CacheDir holds the tokenized training data between runs (a file
	// per output directory, EncodingCachePath), so that a resumed or
	// repeated run skips tokenizing. Empty: the user's cache directory,
	// os.UserCacheDir()/rerank/train-encodings. It is never the saved
	// model's directory, so the cache (MBs) is not uploaded with it.
	CacheDir string `json:"cache_dir,omitempty"`

	LoggingSteps   int `json:"logging_steps"`
	SaveSteps      int `json:"save_steps"`       // 0: no checkpoints; else every N steps and at the last
	SaveTotalLimit int `json:"save_total_limit"` // 0: keep all
	EvalSteps      int `json:"eval_steps"`       // 0: evaluate before and after only

	// DevCandidates is a first-stage candidate file (BM25 top-k JSONL, a
	// TREC run or FlagEmbedding JSONL) and DevBEIR the BEIR directory
	// holding its corpus, queries and qrels/<DevSplit>.tsv.
	DevCandidates string `json:"dev_candidates,omitempty"`
	DevBEIR       string `json:"dev_beir,omitempty"`
	DevSplit      string `json:"dev_split,omitempty"`
	DevTopK       int    `json:"dev_top_k"`       // candidates reranked per query
	DevMaxQueries int    `json:"dev_max_queries"` // 0: all
	EvalBatchSize int    `json:"per_device_eval_batch_size"`

	// LoraRank > 0 trains LoRA adapters (PEFT format) on the frozen base
	// model instead of every weight; the adapter, not a full model, is
	// then written at the top level of OutputDir.
	LoraRank          int      `json:"lora_rank"`
	LoraAlpha         float64  `json:"lora_alpha"`
	LoraDropout       float64  `json:"lora_dropout"`
	LoraTargetModules []string `json:"target_modules,omitempty"`
	UseRSLoRA         bool     `json:"use_rslora"`

	// Resume is "" (start fresh), "latest" (the newest checkpoint in
	// OutputDir) or a checkpoint directory.
	Resume string `json:"resume_from_checkpoint,omitempty"`
	// ResumeOverride names the arguments (JSON names, e.g.
	// "learning_rate") that a resumed run may change. Without it, resuming
	// with arguments that change the run is refused.
	ResumeOverride []string `json:"resume_override,omitempty"`
	// OverwriteOutputDir lets a fresh run start in a non-empty OutputDir
	// (Hugging Face Trainer's overwrite_output_dir): the earlier run's
	// checkpoints and metrics.jsonl are removed first.
	OverwriteOutputDir bool `json:"overwrite_output_dir,omitempty"`
}

// DefaultArgs are FlagEmbedding's reranker defaults where it has them and
// transformers' TrainingArguments defaults otherwise.
func DefaultArgs() Args {
	return Args{
		TrainGroupSize: 8, QueryMaxLen: 32, PassageMaxLen: 128,
		LearningRate: 5e-5, NumTrainEpochs: 3, PerDeviceTrainBatchSize: 8,
		GradientAccumulationSteps: 1, MaxGradNorm: 1, Seed: 42, Loss: "ce",
		LoggingSteps: 10, SaveSteps: 500, DevSplit: "dev", DevTopK: 100, EvalBatchSize: 32,
		LoraAlpha: 64, LoraDropout: 0.1,
	}
}

// Validate checks the arguments. The error joins one *FieldError per bad
// argument, named by its JSON key (cmd/rerank shows flag names).
func (a *Args) Validate() error {
	var errs []error
	bad := func(name, format string, v ...any) { errs = append(errs, fieldErr(name, format, v...)) }
	if a.ModelDir == "" {
		bad("model_name_or_path", "required: a Hugging Face model directory (rerank init makes one)")
	}
	if a.TrainData == "" {
		bad("train_data", "required: a FlagEmbedding JSONL file or directory")
	}
	if a.OutputDir == "" {
		bad("output_dir", "required")
	}
	if a.Attention != "" {
		if _, err := nn.ParseAttentionMode(a.Attention); err != nil {
			bad("attention", "%v", err)
		}
	}
	// Every float must be a number: NaN and Inf would otherwise pass the
	// range checks below or fail later in JSON without a name.
	for _, f := range []struct {
		name string
		v    float64
	}{{"learning_rate", a.LearningRate}, {"num_train_epochs", a.NumTrainEpochs}, {"warmup_ratio", a.WarmupRatio},
		{"weight_decay", a.WeightDecay}, {"max_grad_norm", a.MaxGradNorm}, {"lora_alpha", a.LoraAlpha}, {"lora_dropout", a.LoraDropout}} {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) {
			bad(f.name, "must be a finite number, got %v", f.v)
		}
	}
	if a.TrainGroupSize < 1 {
		bad("train_group_size", "must be at least 1, got %d", a.TrainGroupSize)
	}
	if a.QueryMaxLen < 1 {
		bad("query_max_len", "must be positive, got %d", a.QueryMaxLen)
	}
	if a.PassageMaxLen < 1 {
		bad("passage_max_len", "must be positive, got %d", a.PassageMaxLen)
	}
	if !(a.LearningRate > 0) && !math.IsNaN(a.LearningRate) {
		bad("learning_rate", "must be positive, got %g", a.LearningRate)
	}
	if a.MaxSteps < 0 {
		bad("max_steps", "must not be negative, got %d", a.MaxSteps)
	}
	if a.MaxSteps <= 0 && !(a.NumTrainEpochs > 0) && !math.IsNaN(a.NumTrainEpochs) {
		bad("num_train_epochs", "must be positive when {max_steps} is not set, got %g", a.NumTrainEpochs)
	}
	if a.PerDeviceTrainBatchSize < 1 {
		bad("per_device_train_batch_size", "must be at least 1, got %d", a.PerDeviceTrainBatchSize)
	}
	if a.GradientAccumulationSteps < 1 {
		bad("gradient_accumulation_steps", "must be at least 1, got %d", a.GradientAccumulationSteps)
	}
	if a.WarmupRatio < 0 || a.WarmupRatio > 1 {
		bad("warmup_ratio", "must be in [0, 1], got %g", a.WarmupRatio)
	}
	if a.WarmupSteps < 0 {
		bad("warmup_steps", "must not be negative, got %d", a.WarmupSteps)
	}
	if a.WeightDecay < 0 {
		bad("weight_decay", "must not be negative, got %g", a.WeightDecay)
	}
	if a.LoggingSteps < 1 {
		bad("logging_steps", "must be at least 1, got %d", a.LoggingSteps)
	}
	if a.SaveSteps < 0 {
		bad("save_steps", "must not be negative (0: no intermediate checkpoints), got %d", a.SaveSteps)
	}
	if a.SaveTotalLimit < 0 {
		bad("save_total_limit", "must not be negative (0: keep all), got %d", a.SaveTotalLimit)
	}
	if a.EvalSteps < 0 {
		bad("eval_steps", "must not be negative (0: before and after training only), got %d", a.EvalSteps)
	}
	switch a.Loss {
	case "ce", "bce", "distill":
	default:
		bad("loss", "%q: want ce, bce or distill", a.Loss)
	}
	if a.TrainGroupSize == 1 && (a.Loss == "ce" || a.Loss == "distill") {
		bad("train_group_size", "1 passage per query with {loss} %s: the softmax over a group of one is always 1, so the loss is 0 and nothing is learned; use at least 2 (1 positive + negatives) or {loss} bce", a.Loss)
	}
	if a.EvalSteps > 0 && a.DevCandidates == "" {
		bad("eval_steps", "needs dev data to evaluate on: {dev_candidates} (and {dev_beir} for a BEIR candidate file)")
	}
	if a.Resume != "" && a.OverwriteOutputDir {
		bad("overwrite_output_dir", "starts a fresh run and {resume_from_checkpoint} continues one: give only one of them")
	}
	if a.Resume == "" && len(a.ResumeOverride) > 0 {
		bad("resume_override", "applies to a resumed run: add {resume_from_checkpoint} (latest, or a checkpoint directory)")
	}
	if a.DevBEIR != "" && a.DevCandidates == "" {
		bad("dev_candidates", "required with {dev_beir} (e.g. DIR/bm25/dev.top100.jsonl)")
	}
	if a.DevTopK < 1 {
		bad("dev_top_k", "must be at least 1, got %d", a.DevTopK)
	}
	if a.DevMaxQueries < 0 {
		bad("dev_max_queries", "must not be negative (0: all), got %d", a.DevMaxQueries)
	}
	if a.EvalBatchSize < 1 {
		bad("per_device_eval_batch_size", "must be at least 1, got %d", a.EvalBatchSize)
	}
	if a.LoraRank < 0 {
		bad("lora_rank", "must not be negative, got %d", a.LoraRank)
	}
	if a.LoraRank > 0 {
		if err := a.LoraConfig().Validate(); err != nil {
			bad("lora_rank", "%v", err)
		}
	}
	for _, f := range a.ResumeOverride {
		if !isArg(f) {
			bad("resume_override", "%q is not a training argument", f)
		}
	}
	return errors.Join(errs...)
}

// isArg reports whether name is the JSON name of a field of Args.
func isArg(name string) bool {
	for _, f := range reflect.VisibleFields(reflect.TypeOf(Args{})) {
		if jsonName(f) == name {
			return true
		}
	}
	return false
}

func jsonName(f reflect.StructField) string {
	n, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if n == "" {
		return f.Name
	}
	return n
}

// LoraConfig is the adapter configuration the LoRA arguments describe
// (target modules default to PEFT's query and value).
func (a *Args) LoraConfig() lora.Config {
	c := lora.Config{R: a.LoraRank, Alpha: a.LoraAlpha, Dropout: a.LoraDropout, UseRSLoRA: a.UseRSLoRA,
		TargetModules: a.LoraTargetModules}
	if len(c.TargetModules) == 0 {
		c.TargetModules = append([]string(nil), lora.DefaultTargets...)
	}
	return c
}

// ReadArgsFile reads a JSON config file of training arguments (snake_case
// keys as in training_args.json) over base. Unknown keys are an error
// naming the key, so that a typo does not silently train with a default.
func ReadArgsFile(path string, base Args) (Args, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return base, fmt.Errorf("read config: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	a := base
	if err := dec.Decode(&a); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			line := 1 + bytes.Count(data[:min(int(se.Offset), len(data))], []byte("\n"))
			return base, fmt.Errorf("%s:%d: %v", path, line, se)
		case errors.As(err, &te):
			line := 1 + bytes.Count(data[:min(int(te.Offset), len(data))], []byte("\n"))
			return base, fmt.Errorf("%s:%d: field %q: want a %s, got a JSON %s", path, line, te.Field, te.Type, te.Value)
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return base, fmt.Errorf("%s: %s (see training_args.json of a run for the known keys)", path, strings.TrimPrefix(err.Error(), "json: "))
		}
		return base, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}
