package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/bench"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/nn/infer"
)

func init() {
	register(&cli.Command{
		Name:  "bench",
		Usage: "time inference and training steps on the CPU, in the layout of the PyTorch reference that bench/cpu_vs_torch.sh runs beside it",
		Description: "Each mode runs in its own child process, so that peak RSS is per mode. With --lengths-from, the\n" +
			"rows keep the real lengths of pairs drawn from a FlagEmbedding training file and each mode also\n" +
			"runs fully padded (every position real), giving the padding-skip speed-up.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "shape", Value: "minilm-l6", Usage: "model shape: " + strings.Join(bench.PresetNames(), ", ")},
			&cli.IntFlag{Name: "seq", Value: 128, Usage: "padded sequence length"},
			&cli.IntFlag{Name: "batch", Value: 16, Usage: "sequences per step"},
			&cli.IntFlag{Name: "group", Value: 8, Usage: "candidates per query (1 positive + negatives)"},
			&cli.StringFlag{Name: "modes", Value: "infer,train", Usage: "comma list of infer, train, save (write a fresh model to --dir), load (read --dir)"},
			&cli.IntFlag{Name: "warmup", Value: 2, Usage: "untimed steps first"},
			&cli.IntFlag{Name: "steps", Value: 5, Usage: "timed steps"},
			&cli.Float64Flag{Name: "dropout", Value: 0.1, Usage: "dropout probability in training"},
			&cli.Float64Flag{Name: "lr", Value: 2e-5, Usage: "AdamW learning rate"},
			&cli.StringFlag{Name: "lengths-from", Usage: "FlagEmbedding training file whose pairs give the rows' real lengths"},
			&cli.StringFlag{Name: "tokenizer", Usage: "tokenizer.json for --lengths-from (default: the bundled examples/bert-uncased-tokenizer/tokenizer.json, bert-base-uncased's)"},
			&cli.BoolFlag{Name: "no-peak", Usage: "skip measuring the FMA peak"},
			&cli.IntFlag{Name: "pack-mib", Value: infer.DefaultPackBudget >> 20, Usage: "0: inference packs no weights; else it packs all of them in the float32 weights' place, as scoring does, or with --keep-float32 this many MiB beside them (-1: all)"},
			&cli.BoolFlag{Name: "int8", Usage: "inference with the encoder's linear layers quantized to int8, as scoring --int8 does"},
			&cli.BoolFlag{Name: "keep-float32", Usage: "inference keeps the float32 weights beside the packed or int8 copy (as serve --adapter does)"},
			&cli.StringFlag{Name: "json", Usage: "append one JSON record per run to this file"},
			&cli.IntFlag{Name: "lora-rank", Usage: "train LoRA adapters of this rank (alpha 2·rank, on query and value) instead of every weight"},
			&cli.BoolFlag{Name: "gradient-checkpointing", Usage: "recompute each layer's activations in backward"},
			&cli.StringFlag{Name: "attention", Value: "auto", Usage: "auto (tiled from --tiled-from tokens), stored or tiled"},
			&cli.IntFlag{Name: "tiled-from", Value: nn.DefaultTiledFrom, Usage: "length from which --attention auto tiles"},
			&cli.StringFlag{Name: "dir", Usage: "model directory: save writes it, load reads it, infer and train take its weights"},
			&cli.IntFlag{Name: "layers", Usage: "replace the shape's layer count (memory per layer of shapes too large to run whole)"},
			&cli.StringFlag{Name: "lengths", Hidden: true},
			&cli.StringFlag{Name: "child", Hidden: true},
			&cli.Float64Flag{Name: "peak", Hidden: true},
		},
		Action: benchAction,
	})
}

func benchAction(c *cli.Context) error {
	if mode := c.String("child"); mode != "" {
		return benchChild(c, mode)
	}
	if _, ok := bench.Presets[c.String("shape")]; !ok {
		return fmt.Errorf("--shape %q: use one of %s", c.String("shape"), strings.Join(bench.PresetNames(), ", "))
	}
	w := c.App.Writer
	peak := 0.0
	if !c.Bool("no-peak") {
		peak = bench.FMAPeak(runtime.GOMAXPROCS(0), 300*time.Millisecond)
		fmt.Fprintf(w, "fma peak: %.1f GFLOP/s on %d cores; gemm: %s\n", peak, runtime.GOMAXPROCS(0), cpu.GemmRoute())
	}
	var lengths string
	if f := c.String("lengths-from"); f != "" {
		tk := c.String("tokenizer")
		if tk == "" {
			tk = "examples/bert-uncased-tokenizer/tokenizer.json"
		}
		lens, err := bench.RealLengths(f, tk, c.Int("seq"), c.Int("batch"), c.Int("group"), 1)
		if err != nil {
			return err
		}
		s := make([]string, len(lens))
		for i, v := range lens {
			s[i] = strconv.Itoa(v)
		}
		lengths = strings.Join(s, ",")
		fmt.Fprintf(w, "real lengths from %s: %s\n", f, lengths)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("bench: find own executable to run each mode in a child: %w", err)
	}
	for _, mode := range strings.Split(c.String("modes"), ",") {
		if mode == "" {
			continue
		}
		runs := []string{""}
		if lengths != "" {
			runs = []string{"", lengths}
		}
		var step [2]float64
		for i, ls := range runs {
			args := []string{"bench", "--child", mode, "--peak", strconv.FormatFloat(peak, 'f', 3, 64)}
			for _, name := range []string{"shape", "seq", "batch", "group", "warmup", "steps", "dropout", "lr", "json", "pack-mib", "int8", "keep-float32",
				"lora-rank", "gradient-checkpointing", "attention", "tiled-from", "dir", "layers"} {
				if c.IsSet(name) {
					args = append(args, "--"+name+"="+fmt.Sprint(c.Value(name)))
				}
			}
			if ls != "" {
				args = append(args, "--lengths", ls)
			}
			cmd := exec.Command(exe, args...)
			cmd.Stderr = c.App.ErrWriter
			out, err := cmd.Output()
			if err != nil {
				return fmt.Errorf("bench %s: %w", mode, err)
			}
			line := strings.TrimSpace(string(out))
			var r bench.Result
			if k := strings.LastIndex(line, " @@"); k >= 0 {
				if err := json.Unmarshal([]byte(line[k+3:]), &r); err != nil {
					return fmt.Errorf("bench %s: read the child's record: %w", mode, err)
				}
				line = line[:k]
			}
			fmt.Fprintln(w, line)
			step[i] = r.StepMedian
		}
		if lengths != "" && step[1] > 0 {
			fmt.Fprintf(w, "%s padding skip: %.2fx (step %.3fs padded, %.3fs with real lengths)\n", mode, step[0]/step[1], step[0], step[1])
		}
	}
	return nil
}

func benchChild(c *cli.Context, mode string) error {
	o := bench.Options{
		Shape: c.String("shape"), Seq: c.Int("seq"), Batch: c.Int("batch"), Group: c.Int("group"),
		Warmup: c.Int("warmup"), Steps: c.Int("steps"), Dropout: float32(c.Float64("dropout")), LR: float32(c.Float64("lr")),
		Backend: cpu.New(), PackBudget: int64(c.Int("pack-mib")) << 20, Int8: c.Bool("int8"), KeepFloat32: c.Bool("keep-float32"),
		LoraRank: c.Int("lora-rank"), Checkpointing: c.Bool("gradient-checkpointing"), Dir: c.String("dir"), Layers: c.Int("layers"),
	}
	am, err := nn.ParseAttentionMode(c.String("attention"))
	if err != nil {
		return fmt.Errorf("--attention: %w", err)
	}
	o.Attention = nn.AttentionOptions{Mode: am, TiledFrom: c.Int("tiled-from")}
	if ls := c.String("lengths"); ls != "" {
		for _, s := range strings.Split(ls, ",") {
			v, err := strconv.Atoi(s)
			if err != nil {
				return fmt.Errorf("--lengths: %q is not a length", s)
			}
			o.Lengths = append(o.Lengths, v)
		}
	}
	r, err := bench.Run(mode, o)
	if err != nil {
		return err
	}
	r.FMAPeakGFLOPs = c.Float64("peak")
	js, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if f := c.String("json"); f != "" {
		fh, err := os.OpenFile(f, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		if _, err := fmt.Fprintf(fh, "%s\n", js); err != nil {
			fh.Close()
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	// The parent prints the line and reads the record after "@@".
	fmt.Fprintf(c.App.Writer, "%s @@%s\n", r, js)
	return nil
}
