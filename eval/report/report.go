// Package report renders an evaluation as a report directory: a
// self-contained index.html with the plots embedded, summary.md with the
// plots beside it as PNG files, and results.json.
//
// It is the only package of rerank that draws (with gonum/plot), so that a
// program computing metrics with eval links no plotting, fonts or PDF
// writer.
package report

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html/template"
	"image/color"
	"io"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/rerank-go/rerank/eval"
	"github.com/rerank-go/rerank/internal/atomicfile"
)

// Curve is a metric at several cutoffs for one model (nDCG@k vs k).
type Curve struct {
	Label  string    `json:"label"`
	K      []int     `json:"k"`
	Values []float64 `json:"values"`
}

// DefaultCurveKs are the cutoffs of the report's nDCG@k plot.
var DefaultCurveKs = []int{1, 3, 5, 10, 20, 50, 100}

// NDCGCurve computes mean nDCG@k of run for every k in ks.
func NDCGCurve(label string, run eval.Run, qrels eval.Qrels, ks []int, ties eval.TieBreak) (Curve, error) {
	ms := make([]eval.Metric, len(ks))
	for i, k := range ks {
		ms[i] = eval.Metric{Measure: eval.NDCG, K: k}
	}
	res, err := eval.Evaluate(run, qrels, ms, ties)
	if err != nil {
		return Curve{}, err
	}
	c := Curve{Label: label, K: append([]int(nil), ks...)}
	for _, m := range ms {
		c.Values = append(c.Values, res.MeanOf(m))
	}
	return c, nil
}

// Report is what Write renders.
type Report struct {
	Title string
	// Notes are shown under the title (collection, split, command line...).
	Notes   []string
	Results *eval.Table
	// Curves are plotted as nDCG@k vs k, one line per model.
	Curves []Curve
	// DeltaMetric is the metric of the per-query delta plots (default: the
	// first metric of Results).
	DeltaMetric string
	// Training, when not empty, adds loss and dev-metric curves.
	Training []eval.TrainingRecord
}

// plotFile is a rendered plot.
type plotFile struct {
	Name    string // file name in the report directory
	Caption string
	PNG     []byte
}

// Write writes a report into dir: index.html, self-contained with the
// plots embedded as base64 PNG; summary.md, which links the PNG files
// written next to it; results.json; and one PNG per plot.
//
// The report is written whole into a temporary directory beside dir, which
// then replaces dir: an error or a full disk leaves the previous report as
// it was, and plots of an earlier report never linger beside a new one.
// Write refuses a dir holding files other than a report's.
func Write(dir string, r Report) error {
	if r.Results == nil {
		return fmt.Errorf("report: no results")
	}
	if r.Title == "" {
		r.Title = "rerank evaluation"
	}
	names := r.Results.MetricNames()
	if r.DeltaMetric == "" && len(names) > 0 {
		r.DeltaMetric = names[0]
	}
	plots, err := renderPlots(r)
	if err != nil {
		return err
	}
	return atomicfile.ReplaceDir(dir, isReportFile, func(tmp string) error {
		for _, p := range plots {
			if err := atomicfile.WriteFile(filepath.Join(tmp, p.Name), p.PNG); err != nil {
				return err
			}
		}
		if err := eval.WriteJSON(filepath.Join(tmp, "results.json"), r.Results); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(tmp, "summary.md"), func(w io.Writer) error { return writeMarkdown(w, r, names, plots) }); err != nil {
			return err
		}
		return atomicfile.Write(filepath.Join(tmp, "index.html"), func(w io.Writer) error { return writeHTML(w, r, names, plots) })
	})
}

// isReportFile tells the files Write makes (and the temporaries of an
// interrupted one) from anything else.
func isReportFile(name string) bool {
	switch name {
	case "index.html", "summary.md", "results.json":
		return true
	}
	return strings.HasSuffix(name, ".png") || strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

func renderPlots(r Report) ([]plotFile, error) {
	var out []plotFile
	if len(r.Curves) > 0 {
		png, err := curvePlot(r.Curves)
		if err != nil {
			return nil, err
		}
		out = append(out, plotFile{"ndcg_at_k.png", "Mean nDCG@k against the cutoff k, one line per model.", png})
	}
	res := r.Results
	if base, ok := res.Model(res.Baseline); ok && r.DeltaMetric != "" {
		for i, m := range res.Models {
			if m.Label == res.Baseline {
				continue
			}
			png, n, err := deltaPlot(base, &res.Models[i], r.DeltaMetric)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				continue
			}
			out = append(out, plotFile{
				Name: "delta_" + fileSafe(m.Label) + ".png",
				Caption: fmt.Sprintf("Per-query %s of %s minus %s, sorted (%d queries; green: %s better, red: worse).",
					r.DeltaMetric, m.Label, res.Baseline, n, m.Label),
				PNG: png,
			})
		}
	}
	if len(r.Training) > 0 {
		png, err := trainingPlot(r.Training, "loss", func(t eval.TrainingRecord) float64 { return t.Loss })
		if err != nil {
			return nil, err
		}
		if png != nil {
			out = append(out, plotFile{"training_loss.png", "Training loss against step.", png})
		}
		png, err = trainingPlot(r.Training, "learning rate", func(t eval.TrainingRecord) float64 { return t.LearningRate })
		if err != nil {
			return nil, err
		}
		if png != nil {
			out = append(out, plotFile{"training_lr.png", "Learning rate against step.", png})
		}
		png, err = devPlot(r.Training)
		if err != nil {
			return nil, err
		}
		if png != nil {
			out = append(out, plotFile{"training_dev.png", "Dev metrics during training against step.", png})
		}
	}
	return out, nil
}

const (
	plotW = 7 * vg.Inch
	plotH = 4 * vg.Inch
)

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

// padY leaves a little room above and below the data so that points on
// the edge stay visible.
func padY(p *plot.Plot) {
	r := p.Y.Max - p.Y.Min
	if r <= 0 {
		r = math.Max(math.Abs(p.Y.Max), 1)
	}
	p.Y.Max += 0.04 * r
	p.Y.Min -= 0.04 * r
}

func encodePNG(p *plot.Plot) ([]byte, error) {
	wt, err := p.WriterTo(plotW, plotH, "png")
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func curvePlot(curves []Curve) ([]byte, error) {
	p := newPlot("nDCG@k per model", "k (log scale)", "nDCG@k")
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	seen := map[int]bool{}
	for i, c := range curves {
		xys := make(plotter.XYs, 0, len(c.K))
		for j, k := range c.K {
			if k <= 0 || j >= len(c.Values) {
				continue
			}
			xys = append(xys, plotter.XY{X: float64(k), Y: c.Values[j]})
			if !seen[k] {
				seen[k] = true
				ticks = append(ticks, plot.Tick{Value: float64(k), Label: strconv.Itoa(k)})
			}
		}
		l, s, err := plotter.NewLinePoints(xys)
		if err != nil {
			return nil, err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(2)
		l.Dashes = plotutil.Dashes(i)
		s.Color = plotutil.Color(i)
		s.Shape = plotutil.Shape(i)
		p.Add(l, s)
		p.Legend.Add(c.Label, l, s)
	}
	sort.Slice(ticks, func(i, j int) bool { return ticks[i].Value < ticks[j].Value })
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	padY(p)
	p.Y.Min = 0
	p.Legend.Left = true
	return encodePNG(p)
}

func deltaPlot(base, model *eval.ModelResult, metric string) ([]byte, int, error) {
	var deltas []float64
	for q, b := range base.PerQuery {
		m, ok := model.PerQuery[q]
		if !ok {
			continue
		}
		bv, ok1 := b[metric]
		mv, ok2 := m[metric]
		if ok1 && ok2 {
			deltas = append(deltas, mv-bv)
		}
	}
	if len(deltas) == 0 {
		return nil, 0, nil
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(deltas)))
	pos := make(plotter.Values, len(deltas))
	neg := make(plotter.Values, len(deltas))
	wins, losses := 0, 0
	for i, d := range deltas {
		switch {
		case d > eval.TieEps:
			pos[i] = d
			wins++
		case d < -eval.TieEps:
			neg[i] = d
			losses++
		}
	}
	title := fmt.Sprintf("%s: %s − %s per query (%d better, %d worse, %d equal)",
		metric, model.Label, base.Label, wins, losses, len(deltas)-wins-losses)
	p := newPlot(title, "queries, sorted by difference", "Δ "+metric)
	w := max(vg.Points(1), (plotW-vg.Inch)/vg.Length(len(deltas))*0.8)
	for _, s := range []struct {
		v plotter.Values
		c color.Color
	}{{pos, color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}}, {neg, color.RGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}}} {
		b, err := plotter.NewBarChart(s.v, w)
		if err != nil {
			return nil, 0, err
		}
		b.Color = s.c
		b.LineStyle.Width = 0
		p.Add(b)
	}
	zero := plotter.NewFunction(func(float64) float64 { return 0 })
	zero.Color = color.Gray{Y: 0x40}
	p.Add(zero)
	p.X.Tick.Marker = plot.ConstantTicks(nil)
	lim := 0.0
	for _, d := range deltas {
		lim = math.Max(lim, math.Abs(d))
	}
	if lim == 0 {
		lim = 1
	}
	p.Y.Min, p.Y.Max = -lim*1.05, lim*1.05
	p.X.Min, p.X.Max = -1, float64(len(deltas))
	png, err := encodePNG(p)
	return png, len(deltas), err
}

func trainingPlot(recs []eval.TrainingRecord, what string, get func(eval.TrainingRecord) float64) ([]byte, error) {
	var xys plotter.XYs
	for _, r := range recs {
		if v := get(r); !math.IsNaN(v) && !math.IsInf(v, 0) {
			xys = append(xys, plotter.XY{X: float64(r.Step), Y: v})
		}
	}
	if len(xys) == 0 {
		return nil, nil
	}
	p := newPlot("Training "+what, "step", what)
	l, err := plotter.NewLine(xys)
	if err != nil {
		return nil, err
	}
	l.Color = plotutil.Color(0)
	l.Width = vg.Points(1.5)
	p.Add(l)
	padY(p)
	return encodePNG(p)
}

func devPlot(recs []eval.TrainingRecord) ([]byte, error) {
	series := map[string]plotter.XYs{}
	for _, r := range recs {
		for k, v := range r.Dev {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				series[k] = append(series[k], plotter.XY{X: float64(r.Step), Y: v})
			}
		}
	}
	if len(series) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(series))
	for k := range series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	p := newPlot("Dev metrics during training", "step", "metric")
	for i, k := range keys {
		l, s, err := plotter.NewLinePoints(series[k])
		if err != nil {
			return nil, err
		}
		l.Color, s.Color = plotutil.Color(i), plotutil.Color(i)
		l.Width = vg.Points(1.5)
		s.Shape = plotutil.Shape(i)
		p.Add(l, s)
		p.Legend.Add(k, l, s)
	}
	p.Legend.Left = true
	padY(p)
	return encodePNG(p)
}

// fileSafe turns a label into a file-name fragment.
func fileSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "model"
	}
	return b.String()
}

func fmtP(p float64) string {
	if p < 0.001 {
		return fmt.Sprintf("%.1e", p)
	}
	return fmt.Sprintf("%.4f", p)
}

func writeMarkdown(w io.Writer, r Report, names []string, plots []plotFile) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("## Metrics\n\n| model |")
	for _, n := range names {
		fmt.Fprintf(&b, " %s |", n)
	}
	b.WriteString("\n|---|")
	for range names {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, m := range r.Results.Models {
		fmt.Fprintf(&b, "| %s |", mdEscape(m.Label))
		for _, n := range names {
			fmt.Fprintf(&b, " %.4f |", m.Metrics[n])
		}
		b.WriteString("\n")
	}
	if len(r.Results.Comparisons) > 0 {
		fmt.Fprintf(&b, "\n## Against %s\n\n", mdEscape(r.Results.Baseline))
		b.WriteString("Paired over queries: mean difference, bootstrap confidence interval, two-sided paired randomization test, and queries won/tied/lost.\n\n")
		b.WriteString("| model | metric | baseline | model | diff | CI | p | win/tie/loss |\n|---|---|---:|---:|---:|---|---:|---|\n")
		for _, c := range r.Results.Comparisons {
			fmt.Fprintf(&b, "| %s | %s | %.4f | %.4f | %+.4f | [%+.4f, %+.4f] | %s%s | %d/%d/%d |\n",
				mdEscape(c.Model), c.Metric, c.BaselineMean, c.ModelMean, c.MeanDiff, c.CILow, c.CIHigh,
				fmtP(c.PValue), eval.Significance(c.PValue), c.Wins, c.Ties, c.Losses)
		}
		b.WriteString("\n`*` p < 0.05, `**` p < 0.01.\n")
	}
	if len(plots) > 0 {
		b.WriteString("\n## Plots\n")
		for _, p := range plots {
			fmt.Fprintf(&b, "\n![%s](%s)\n\n%s\n", p.Name, p.Name, p.Caption)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mdEscape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"f4":  func(v float64) string { return fmt.Sprintf("%.4f", v) },
	"d4":  func(v float64) string { return fmt.Sprintf("%+.4f", v) },
	"p":   func(v float64) string { return fmtP(v) + eval.Significance(v) },
	"get": func(m map[string]float64, k string) float64 { return m[k] },
	"b64": func(b []byte) template.URL {
		return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b))
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.R.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
figure{margin:1.5em 0}img{max-width:100%}figcaption{color:#555}
</style></head><body>
<h1>{{.R.Title}}</h1>
{{if .R.Notes}}<ul>{{range .R.Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
<h2>Metrics</h2>
<table><tr><th>model</th>{{range .Names}}<th>{{.}}</th>{{end}}</tr>
{{range .R.Results.Models}}{{$m := .}}<tr><td>{{.Label}}</td>{{range $.Names}}<td class="n">{{f4 (get $m.Metrics .)}}</td>{{end}}</tr>
{{end}}</table>
{{if .R.Results.Comparisons}}<h2>Against {{.R.Results.Baseline}}</h2>
<p>Paired over queries: mean difference, bootstrap confidence interval, two-sided paired randomization test, and queries won/tied/lost. * p &lt; 0.05, ** p &lt; 0.01.</p>
<table><tr><th>model</th><th>metric</th><th>baseline</th><th>model</th><th>diff</th><th>CI</th><th>p</th><th>win/tie/loss</th></tr>
{{range .R.Results.Comparisons}}<tr><td>{{.Model}}</td><td>{{.Metric}}</td><td class="n">{{f4 .BaselineMean}}</td><td class="n">{{f4 .ModelMean}}</td><td class="n">{{d4 .MeanDiff}}</td><td class="n">[{{d4 .CILow}}, {{d4 .CIHigh}}]</td><td class="n">{{p .PValue}}</td><td>{{.Wins}}/{{.Ties}}/{{.Losses}}</td></tr>
{{end}}</table>{{end}}
{{if .Plots}}<h2>Plots</h2>{{range .Plots}}
<figure><img alt="{{.Name}}" src="{{b64 .PNG}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}{{end}}
</body></html>
`))

func writeHTML(w io.Writer, r Report, names []string, plots []plotFile) error {
	return htmlTemplate.Execute(w, struct {
		R     Report
		Names []string
		Plots []plotFile
	}{r, names, plots})
}
