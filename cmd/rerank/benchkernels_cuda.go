//go:build cuda

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/rerank-go/rerank/cuda"
	"github.com/rerank-go/rerank/internal/atomicfile"
)

func init() {
	register(&cli.Command{
		Name:  "bench-kernels",
		Usage: "time the CUDA kernels at real model shapes against cuBLAS and PyTorch SDPA",
		Description: "Runs every kernel at the shapes of MiniLM-L6, bge-base and bge-reranker-v2-m3 " +
			"(CUDA events, warm-up, median of many runs, inputs rotated past the L2 cache) beside its " +
			"reference: cuBLAS for the GEMMs, a naive cuBLAS+softmax attention, and PyTorch SDPA when " +
			"python3 can import torch. Percentages are of the peaks measured at start.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print the results as JSON instead of a table"},
			&cli.StringFlag{Name: "json-out", Usage: "also write the JSON results to this file (written atomically)"},
			&cli.BoolFlag{Name: "quick", Usage: "fewer shapes and repeats"},
			&cli.StringFlag{Name: "filter", Usage: "only kernels whose name contains this"},
			&cli.IntFlag{Name: "warmup", Usage: "warm-up launches per kernel (0: 5)"},
			&cli.IntFlag{Name: "repeats", Usage: "timed launches per kernel, the median is reported (0: 30)"},
			&cli.StringFlag{Name: "python", Value: "python3", Usage: "python with torch for the SDPA reference (empty: skip)"},
			&cli.StringFlag{Name: "sdpa-script", Usage: "path of scripts/sdpa_bench.py (default: found from the working directory or the executable)"},
		},
		Action: runBenchKernels,
	})
}

type benchReport struct {
	Date   string           `json:"date"`
	Peak   cuda.BenchPeak   `json:"peak"`
	Torch  string           `json:"torch,omitempty"`
	Notes  []string         `json:"notes,omitempty"`
	Rows   []cuda.BenchRow  `json:"rows"`
	Ratios []benchRatioLine `json:"ratios"`
}

// benchRatioLine compares rerank's time with a reference at one shape:
// Speedup > 1 means rerank is faster.
type benchRatioLine struct {
	Name, Shape, Reference string
	Speedup                float64
}

func runBenchKernels(c *cli.Context) error {
	asJSON := c.Bool("json")
	start := time.Now()
	peak, rows, err := cuda.BenchKernels(cuda.BenchOptions{
		Quick: c.Bool("quick"), Warmup: c.Int("warmup"), Repeats: c.Int("repeats"),
		Filter: c.String("filter"), Quiet: asJSON,
	})
	if err != nil {
		return err
	}
	rep := benchReport{Date: start.UTC().Format(time.RFC3339), Peak: peak, Rows: rows}
	if peak.FailedSections > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d benchmark sections failed (see standard error); their rows are missing", peak.FailedSections))
	}
	if !peak.Measured {
		rep.Notes = append(rep.Notes, "peaks not measured: percentages use the H100 SXM datasheet (989 bf16 / 67 fp32 TFLOP/s, 3350 GB/s)")
	}
	if py := c.String("python"); py != "" {
		torchRows, version, note := sdpaRows(py, c.String("sdpa-script"), rows, peak)
		rep.Rows = append(rep.Rows, torchRows...)
		rep.Torch = version
		if note != "" {
			rep.Notes = append(rep.Notes, note)
		}
	}
	rep.Ratios = ratios(rep.Rows)
	if path := c.String("json-out"); path != "" {
		if err := writeJSONAtomic(path, rep); err != nil {
			return err
		}
	}
	if asJSON {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	printBenchTable(c.App.Writer, rep)
	fmt.Fprintf(c.App.Writer, "\n%d rows in %.0fs\n", len(rep.Rows), time.Since(start).Seconds())
	return nil
}

// sdpaRows runs scripts/sdpa_bench.py at the attention shapes that were
// benchmarked; a missing torch or script is a note, not an error.
func sdpaRows(py, script string, rows []cuda.BenchRow, peak cuda.BenchPeak) ([]cuda.BenchRow, string, string) {
	if script == "" {
		script = findScript("scripts/sdpa_bench.py")
	}
	if script == "" {
		return nil, "", "PyTorch SDPA reference skipped: scripts/sdpa_bench.py not found (pass --sdpa-script)"
	}
	seen := map[string]bool{}
	var specs []string
	for _, r := range rows {
		if r.Name != "attention_fwd_f32" || r.Impl != "rerank" || seen[r.Shape] {
			continue
		}
		seen[r.Shape] = true
		var name string
		var n, s, h, d int
		if _, err := fmt.Sscanf(lastFields(r.Shape, 4), "N%d S%d h%d d%d", &n, &s, &h, &d); err != nil {
			continue
		}
		name = strings.TrimSuffix(r.Shape, " "+lastFields(r.Shape, 4))
		specs = append(specs, fmt.Sprintf("%s:%d:%d:%d:%d", name, n, s, h, d))
	}
	if len(specs) == 0 {
		return nil, "", ""
	}
	cmd := exec.Command(py, append([]string{script}, specs...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, "", fmt.Sprintf("PyTorch SDPA reference skipped: %s %s: %v", py, script, err)
	}
	var res struct {
		Torch string `json:"torch"`
		Rows  []struct {
			Name, Shape, Impl string
			Ms, Flops, Tflops float64
		} `json:"rows"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, "", fmt.Sprintf("PyTorch SDPA reference skipped: cannot read its output: %v", err)
	}
	var got []cuda.BenchRow
	for _, r := range res.Rows {
		pct := 0.0
		if strings.Contains(r.Impl, "bf16") && peak.BF16TFLOPS > 0 {
			pct = 100 * r.Tflops / peak.BF16TFLOPS
		} else if peak.FP32TFLOPS > 0 {
			pct = 100 * r.Tflops / peak.FP32TFLOPS
		}
		got = append(got, cuda.BenchRow{Name: r.Name, Shape: r.Shape, Impl: r.Impl, Ms: r.Ms, FLOPs: r.Flops,
			TFLOPS: r.Tflops, PctPeak: pct, RelErr: -1})
	}
	return got, res.Torch, ""
}

func lastFields(s string, n int) string {
	f := strings.Fields(s)
	if len(f) < n {
		return s
	}
	return strings.Join(f[len(f)-n:], " ")
}

// findScript looks for rel under the working directory and beside the
// executable's parent (bin/../scripts).
func findScript(rel string) string {
	cands := []string{rel}
	if exe, err := os.Executable(); err == nil {
		cands = append(cands, filepath.Join(filepath.Dir(exe), "..", rel))
	}
	for _, p := range cands {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// ratios pairs each rerank row with the references at its kernel and shape.
func ratios(rows []cuda.BenchRow) []benchRatioLine {
	ours := map[string]float64{}
	for _, r := range rows {
		if r.Impl == "rerank" {
			ours[r.Name+"|"+r.Shape] = r.Ms
		}
	}
	var out []benchRatioLine
	for _, r := range rows {
		if r.Impl == "rerank" {
			continue
		}
		key := r.Name + "|" + r.Shape
		if ms, ok := ours[key]; ok && ms > 0 {
			out = append(out, benchRatioLine{Name: r.Name, Shape: r.Shape, Reference: r.Impl, Speedup: r.Ms / ms})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func printBenchTable(w io.Writer, rep benchReport) {
	p := rep.Peak
	fmt.Fprintf(w, "device: %s\n", p.Device)
	fmt.Fprintf(w, "peaks: bf16 %.0f TFLOP/s (cuBLAS 8192³), fp32 %.1f TFLOP/s (cuBLAS SGEMM 4096³, no TF32), DRAM %.0f GB/s (1 GiB copy, read+write)\n",
		p.BF16TFLOPS, p.FP32TFLOPS, p.DRAMGBps)
	if !p.Measured {
		fmt.Fprintln(w, "(datasheet figures, not measured)")
	}
	if rep.Torch != "" {
		fmt.Fprintf(w, "torch %s\n", rep.Torch)
	}
	for _, n := range rep.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "kernel\tshape\timpl\tms\tTFLOP/s\tGB/s\t% peak\trel err\t")
	for _, r := range rep.Rows {
		tf, gb, re := "", "", ""
		if r.FLOPs > 0 {
			tf = fmt.Sprintf("%.2f", r.TFLOPS)
		}
		if r.Bytes > 0 {
			gb = fmt.Sprintf("%.0f", r.GBps)
		}
		if r.RelErr >= 0 {
			re = fmt.Sprintf("%.1e", r.RelErr)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.4f\t%s\t%s\t%.1f\t%s\t\n", r.Name, r.Shape, r.Impl, r.Ms, tf, gb, r.PctPeak, re)
	}
	tw.Flush()
	if len(rep.Ratios) > 0 {
		fmt.Fprintln(w, "\nrerank vs reference (reference time / rerank time; > 1 means rerank is faster):")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, r := range rep.Ratios {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%.2fx\n", r.Name, r.Shape, r.Reference, r.Speedup)
		}
		tw.Flush()
	}
}

// writeJSONAtomic writes v as indented JSON to a temporary file beside path,
// then renames it into place.
func writeJSONAtomic(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, append(data, '\n')); err != nil {
		return fmt.Errorf("bench-kernels: --json-out: %w", err)
	}
	return nil
}
