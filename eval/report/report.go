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
	// Examples are example rankings of models against the baseline
	// (eval.NewExamples): the queries of largest gain and loss side by
	// side, and a rank-shift plot each.
	Examples []eval.Examples
	// Datasets, when an evaluation covers several datasets, hold one
	// section each; the report then opens with a summary table per metric
	// (datasets as rows, models as columns, macro average), and Results,
	// when set, is the table of the pooled queries (eval.PoolResults).
	Datasets []Dataset
}

// Dataset is the part of a report about one dataset.
type Dataset struct {
	Name     string
	Notes    []string
	Results  *eval.Table
	Curves   []Curve
	Examples []eval.Examples
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
	if r.Results == nil && len(r.Datasets) == 0 {
		return fmt.Errorf("report: no results")
	}
	for _, d := range r.Datasets {
		if d.Results == nil {
			return fmt.Errorf("report: dataset %q has no results", d.Name)
		}
	}
	if r.Title == "" {
		r.Title = "rerank evaluation"
	}
	v, err := newView(r)
	if err != nil {
		return err
	}
	return atomicfile.ReplaceDir(dir, isReportFile, func(tmp string) error {
		for _, p := range v.allPlots() {
			if err := atomicfile.WriteFile(filepath.Join(tmp, p.Name), p.PNG); err != nil {
				return err
			}
		}
		if r.Results != nil {
			if err := eval.WriteJSON(filepath.Join(tmp, "results.json"), r.Results); err != nil {
				return err
			}
		}
		for _, s := range v.Sections {
			if s.Name == "" {
				continue
			}
			if err := eval.WriteJSON(filepath.Join(tmp, "results_"+fileSafe(s.Name)+".json"), s.Results); err != nil {
				return err
			}
		}
		if err := atomicfile.Write(filepath.Join(tmp, "summary.md"), func(w io.Writer) error { return writeMarkdown(w, v) }); err != nil {
			return err
		}
		return atomicfile.Write(filepath.Join(tmp, "index.html"), func(w io.Writer) error { return writeHTML(w, v) })
	})
}

// section is the part of a report about one dataset (or the only one).
type section struct {
	Name     string // "" for a single-dataset report
	Notes    []string
	Results  *eval.Table
	Names    []string // metric columns
	Timed    bool     // some model has a latency
	Examples []exampleView
	Plots    []plotFile
}

// summaryView is a summary table; only the first (the primary metric's)
// shows the latency rows.
type summaryView struct {
	eval.Summary
	ShowLatency bool
}

// view is a report laid out for the templates.
type view struct {
	R         Report
	Summaries []summaryView
	// Pooled is the pooled queries' table of a multi-dataset report.
	Pooled   *section
	Sections []section
	Training []plotFile
}

func (v *view) allPlots() []plotFile {
	var out []plotFile
	for _, s := range v.Sections {
		out = append(out, s.Plots...)
	}
	return append(out, v.Training...)
}

func newSection(name string, notes []string, res *eval.Table, curves []Curve, examples []eval.Examples, delta string) (section, error) {
	s := section{Name: name, Notes: notes, Results: res, Names: res.MetricNames()}
	for _, m := range res.Models {
		s.Timed = s.Timed || m.Latency != nil
	}
	if delta == "" && len(s.Names) > 0 {
		delta = s.Names[0]
	}
	prefix := ""
	if name != "" {
		prefix = fileSafe(name) + "_"
	}
	var err error
	if s.Plots, err = renderPlots(res, curves, delta, prefix); err != nil {
		return s, err
	}
	for _, ex := range examples {
		ev := newExampleView(ex)
		png, n, err := rankShiftPlot(ex)
		if err != nil {
			return s, err
		}
		if n > 0 {
			ev.Plot = &plotFile{
				Name: prefix + "rankshift_" + fileSafe(ex.Model) + ".png",
				Caption: fmt.Sprintf("Rank of each judged relevant passage (%d, over all judged queries) by %s (x) and by %s (y), log scales. "+
					"Below the diagonal (green): %s ranks it higher; above (red): lower.", n, ex.Baseline, ex.Model, ex.Model),
				PNG: png,
			}
			s.Plots = append(s.Plots, *ev.Plot)
		}
		s.Examples = append(s.Examples, ev)
	}
	return s, nil
}

func newView(r Report) (*view, error) {
	v := &view{R: r}
	if len(r.Datasets) == 0 {
		s, err := newSection("", nil, r.Results, r.Curves, r.Examples, r.DeltaMetric)
		if err != nil {
			return nil, err
		}
		v.Sections = []section{s}
	} else {
		var named []eval.NamedTable
		for _, d := range r.Datasets {
			s, err := newSection(d.Name, d.Notes, d.Results, d.Curves, d.Examples, r.DeltaMetric)
			if err != nil {
				return nil, err
			}
			v.Sections = append(v.Sections, s)
			named = append(named, eval.NamedTable{Name: d.Name, Table: d.Results})
		}
		for _, m := range r.Datasets[0].Results.MetricNames() {
			v.Summaries = append(v.Summaries, summaryView{eval.Summarize(m, named, r.Results), len(v.Summaries) == 0})
		}
		if r.Results != nil {
			v.Pooled = &section{Name: "pooled", Results: r.Results, Names: r.Results.MetricNames()}
		}
	}
	var err error
	v.Training, err = trainingPlots(r.Training)
	return v, err
}

// isReportFile tells the files Write makes (and the temporaries of an
// interrupted one) from anything else.
func isReportFile(name string) bool {
	switch name {
	case "index.html", "summary.md", "results.json":
		return true
	}
	if strings.HasPrefix(name, "results_") && strings.HasSuffix(name, ".json") {
		return true
	}
	return strings.HasSuffix(name, ".png") || strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")
}

// renderPlots draws a dataset's nDCG@k curves and per-query delta plots,
// their file names prefixed with prefix.
func renderPlots(res *eval.Table, curves []Curve, deltaMetric, prefix string) ([]plotFile, error) {
	var out []plotFile
	if len(curves) > 0 {
		png, err := curvePlot(curves)
		if err != nil {
			return nil, err
		}
		out = append(out, plotFile{prefix + "ndcg_at_k.png", "Mean nDCG@k against the cutoff k, one line per model.", png})
	}
	if base, ok := res.Model(res.Baseline); ok && deltaMetric != "" {
		for i, m := range res.Models {
			if m.Label == res.Baseline {
				continue
			}
			png, n, err := deltaPlot(base, &res.Models[i], deltaMetric)
			if err != nil {
				return nil, err
			}
			if n == 0 {
				continue
			}
			out = append(out, plotFile{
				Name: prefix + "delta_" + fileSafe(m.Label) + ".png",
				Caption: fmt.Sprintf("Per-query %s of %s minus %s, sorted (%d queries; green: %s better, red: worse).",
					deltaMetric, m.Label, res.Baseline, n, m.Label),
				PNG: png,
			})
		}
	}
	return out, nil
}

// trainingPlots draws the training log's loss, learning rate and dev
// metrics.
func trainingPlots(training []eval.TrainingRecord) ([]plotFile, error) {
	var out []plotFile
	if len(training) > 0 {
		r := Report{Training: training}
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

func encodePNG(p *plot.Plot) ([]byte, error) { return encodePNGSize(p, plotW, plotH) }

func encodePNGSize(p *plot.Plot, w, h vg.Length) ([]byte, error) {
	wt, err := p.WriterTo(w, h, "png")
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

func writeMarkdown(w io.Writer, v *view) error {
	r := v.R
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", r.Title)
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(r.Notes) > 0 {
		b.WriteString("\n")
	}
	if len(v.Summaries) > 0 {
		b.WriteString("## Summary\n\n")
		for _, s := range v.Summaries {
			mdSummary(&b, s.Summary, s.ShowLatency)
		}
		fmt.Fprintf(&b, "%s\n\n", summaryNote(v.Summaries[0].Baseline))
	}
	if v.Pooled != nil {
		b.WriteString("## All queries pooled\n\nEvery query of every dataset, ids prefixed by the dataset's name.\n\n")
		mdTables(&b, *v.Pooled, "###")
	}
	for _, s := range v.Sections {
		h := "##"
		if s.Name != "" {
			fmt.Fprintf(&b, "## Dataset %s\n\n", mdEscape(s.Name))
			for _, n := range s.Notes {
				fmt.Fprintf(&b, "- %s\n", n)
			}
			if len(s.Notes) > 0 {
				b.WriteString("\n")
			}
			h = "###"
		}
		mdTables(&b, s, h)
		for _, ex := range s.Examples {
			mdExamples(&b, ex, h)
		}
		if len(s.Plots) > 0 {
			fmt.Fprintf(&b, "\n%s Plots\n", h)
			for _, p := range s.Plots {
				fmt.Fprintf(&b, "\n![%s](%s)\n\n%s\n", p.Name, p.Name, p.Caption)
			}
			b.WriteString("\n")
		}
	}
	if len(v.Training) > 0 {
		b.WriteString("\n## Training\n")
		for _, p := range v.Training {
			fmt.Fprintf(&b, "\n![%s](%s)\n\n%s\n", p.Name, p.Name, p.Caption)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// firstStageNote explains the empty latency cells.
const firstStageNote = "ms/query: scoring time per query at the rerank depth, measured while scoring; pairs/s: scoring throughput. " +
	"First-stage runs (BM25 candidates, --run files) have no rerank cost: their cells are empty."

// mdTables writes a section's metrics table and its comparisons.
func mdTables(b *strings.Builder, s section, h string) {
	r, names := s.Results, s.Names
	fmt.Fprintf(b, "%s Metrics\n\n| model |", h)
	for _, n := range names {
		fmt.Fprintf(b, " %s |", n)
	}
	if s.Timed {
		b.WriteString(" ms/query | pairs/s |")
	}
	b.WriteString("\n|---|")
	for range names {
		b.WriteString("---:|")
	}
	if s.Timed {
		b.WriteString("---:|---:|")
	}
	b.WriteString("\n")
	for _, m := range r.Models {
		fmt.Fprintf(b, "| %s |", mdEscape(m.Label))
		for _, n := range names {
			fmt.Fprintf(b, " %.4f |", m.Metrics[n])
		}
		if s.Timed {
			fmt.Fprintf(b, " %s | %s |", msPerQuery(m.Latency), pairsPerSecond(m.Latency))
		}
		b.WriteString("\n")
	}
	if s.Timed {
		fmt.Fprintf(b, "\n%s\n", firstStageNote)
	}
	if len(r.Comparisons) > 0 {
		fmt.Fprintf(b, "\n%s Against %s\n\n", h, mdEscape(r.Baseline))
		b.WriteString("Paired over queries: mean difference, bootstrap confidence interval, p-value, and queries won/tied/lost.\n\n")
		adj := r.Adjusted()
		b.WriteString("| model | metric | baseline | model | diff | CI | p |")
		if adj {
			fmt.Fprintf(b, " p (%s) |", r.Correction)
		}
		b.WriteString(" win/tie/loss |\n|---|---|---:|---:|---:|---|---:|")
		if adj {
			b.WriteString("---:|")
		}
		b.WriteString("---|\n")
		for _, c := range r.Comparisons {
			fmt.Fprintf(b, "| %s | %s | %.4f | %.4f | %+.4f | [%+.4f, %+.4f] | %s |",
				mdEscape(c.Model), c.Metric, c.BaselineMean, c.ModelMean, c.MeanDiff, c.CILow, c.CIHigh, fmtP(c.PValue))
			if adj {
				fmt.Fprintf(b, " %s |", fmtP(c.PAdjusted))
			}
			fmt.Fprintf(b, " %d/%d/%d%s |\n", c.Wins, c.Ties, c.Losses, eval.Significance(c.P()))
		}
		fmt.Fprintf(b, "\n%s\n", mdEscape(r.TestNote()))
	}
	b.WriteString("\n")
}

// mdSummary writes one metric's summary: datasets as rows, models as
// columns, macro average, pooled queries and latency.
func mdSummary(b *strings.Builder, s eval.Summary, withLatency bool) {
	fmt.Fprintf(b, "### %s\n\n| dataset | queries |", s.Metric)
	for _, m := range s.Models {
		fmt.Fprintf(b, " %s |", mdEscape(m))
	}
	b.WriteString("\n|---|---:|")
	for range s.Models {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	row := func(name string, queries string, vals []*float64, marks []string, bold bool) {
		if bold {
			name = "**" + name + "**"
		}
		fmt.Fprintf(b, "| %s | %s |", mdEscape(name), queries)
		for i, v := range vals {
			m := ""
			if marks != nil && marks[i] != "" {
				m = " " + marks[i]
			}
			fmt.Fprintf(b, " %s%s |", fmtOpt(v), m)
		}
		b.WriteString("\n")
	}
	for _, r := range s.Rows {
		row(r.Dataset, strconv.Itoa(r.Queries), r.Values, r.Marks, false)
	}
	row("macro average", "", s.Macro, nil, true)
	if s.Pooled != nil {
		row("pooled", strconv.Itoa(s.Pooled.Queries), s.Pooled.Values, s.Pooled.Marks, false)
	}
	if withLatency && hasAny(s.Latency) {
		fmt.Fprintf(b, "| ms/query | |")
		for _, l := range s.Latency {
			fmt.Fprintf(b, " %s |", msPerQuery(l))
		}
		fmt.Fprintf(b, "\n| pairs/s | |")
		for _, l := range s.Latency {
			fmt.Fprintf(b, " %s |", pairsPerSecond(l))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
}

// summaryNote explains the summary tables.
func summaryNote(baseline string) string {
	return "Datasets as rows, models as columns. Marks: significance against " + baseline + " on that dataset or the pooled queries " +
		"(* p < 0.05, ** p < 0.01). Macro average: the mean over datasets; pooled: the mean over every query. " +
		"ms/query and pairs/s: scoring cost over all datasets at the rerank depth; first-stage runs have no rerank cost."
}

func hasAny(ls []*eval.Latency) bool {
	for _, l := range ls {
		if l != nil {
			return true
		}
	}
	return false
}

func fmtOpt(v *float64) string {
	if v == nil || math.IsNaN(*v) {
		return "–"
	}
	return fmt.Sprintf("%.4f", *v)
}

func msPerQuery(l *eval.Latency) string {
	if l == nil {
		return ""
	}
	return fmt.Sprintf("%.1f", l.MsPerQuery())
}

func pairsPerSecond(l *eval.Latency) string {
	if l == nil {
		return ""
	}
	return fmt.Sprintf("%.0f", l.PairsPerSecond())
}

func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.Join(strings.Fields(s), " ")
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"f4":     func(v float64) string { return fmt.Sprintf("%.4f", v) },
	"d4":     func(v float64) string { return fmt.Sprintf("%+.4f", v) },
	"p":      func(v float64) string { return fmtP(v) + eval.Significance(v) },
	"praw":   fmtP,
	"sig":    eval.Significance,
	"get":    func(m map[string]float64, k string) float64 { return m[k] },
	"opt":    fmtOpt,
	"ms":     msPerQuery,
	"pps":    pairsPerSecond,
	"hasAny": hasAny,
	"idx":    func(s []string, i int) string { return s[i] },
	"b64": func(b []byte) template.URL {
		return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(b))
	},
	"firstStageNote": func() string { return firstStageNote },
	"isShift":        isShift,
	"summaryNote":    summaryNote,
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.R.Title}}</title>
<style>
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:72em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em}
td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#f3f3f3}
tr.avg td{font-weight:bold;border-top:2px solid #888}tr.lat td{color:#555}
sup{color:#2a7a2a}.sums{display:flex;flex-wrap:wrap;gap:0 2em}.sums h3{margin-bottom:0}p.note{color:#555;font-size:.9em}
figure{margin:1.5em 0}img{max-width:100%}figcaption{color:#555}
h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
details{margin:1em 0}summary{cursor:pointer;font-weight:bold}
.ex{margin:1em 0 1.5em}.ex p.q{margin:.3em 0}.ex .val{color:#555;margin-left:.5em}
table.side{font-size:.85em;width:100%;table-layout:fixed;margin:.3em 0}
table.side td,table.side th{vertical-align:top}
col.c-n{width:2em}col.c-l{width:3.6em}col.c-m{width:3.2em}
td.lab,td.mv{text-align:center;white-space:nowrap}
td.rel{background:#d8f0d8}td.non{color:#999}
.up{color:#1a7f1a}.down{color:#c0282a}.same{color:#888}
td.doc{overflow-wrap:anywhere}.id{color:#888}
</style></head><body>
<h1>{{.R.Title}}</h1>
{{if .R.Notes}}<ul>{{range .R.Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if .Summaries}}<h2>Summary</h2>
<p class="note">{{summaryNote (index .Summaries 0).Baseline}}</p>
<div class="sums">{{range .Summaries}}<div>{{template "summary" .}}</div>{{end}}</div>{{end}}
{{with .Pooled}}<h2>All queries pooled</h2><p>Every query of every dataset, ids prefixed by the dataset's name.</p>{{template "tables" .}}{{end}}
{{range .Sections}}{{if .Name}}<h2>Dataset {{.Name}}</h2>{{if .Notes}}<ul>{{range .Notes}}<li>{{.}}</li>{{end}}</ul>{{end}}{{else}}<h2>Metrics</h2>{{end}}
{{template "tables" .}}
{{range $i, $e := .Examples}}<details{{if eq $i 0}} open{{end}}><summary>Examples: {{.Model}} against {{.Baseline}}, by {{.Metric}}</summary>
<p>The queries where {{.Model}} gains most and loses most against {{.Baseline}} on {{.Metric}}: the top {{.Top}} of both rankings, each passage with its relevance label (rel N; – unjudged), its move from {{.Baseline}}'s rank to {{.Model}}'s (↑ up, ↓ down), its title and the start of its text.</p>
<h3>Largest gains</h3>{{range .Gains}}{{template "example" .}}{{else}}<p>None: {{$e.Model}} is better on no query.</p>{{end}}
<h3>Largest losses</h3>{{range .Losses}}{{template "example" .}}{{else}}<p>None: {{$e.Model}} is worse on no query.</p>{{end}}
{{with .Plot}}<figure><img alt="{{.Name}}" src="{{b64 .PNG}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}
</details>{{end}}
{{if .Plots}}<h3>Plots</h3>{{range .Plots}}{{if not (isShift .Name)}}
<figure><img alt="{{.Name}}" src="{{b64 .PNG}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}{{end}}{{end}}
{{end}}
{{if .Training}}<h2>Training</h2>{{range .Training}}
<figure><img alt="{{.Name}}" src="{{b64 .PNG}}"><figcaption>{{.Caption}}</figcaption></figure>{{end}}{{end}}
</body></html>
{{define "tables"}}
<table><tr><th>model</th>{{range .Names}}<th>{{.}}</th>{{end}}{{if .Timed}}<th>ms/query</th><th>pairs/s</th>{{end}}</tr>
{{range .Results.Models}}{{$m := .}}<tr><td>{{.Label}}</td>{{range $.Names}}<td class="n">{{f4 (get $m.Metrics .)}}</td>{{end}}{{if $.Timed}}<td class="n">{{ms .Latency}}</td><td class="n">{{pps .Latency}}</td>{{end}}</tr>
{{end}}</table>
{{if .Timed}}<p class="note">{{firstStageNote}}</p>{{end}}
{{if .Results.Comparisons}}<h3>Against {{.Results.Baseline}}</h3>
<p>Paired over queries: mean difference, bootstrap confidence interval, p-value, and queries won/tied/lost. {{.Results.TestNote}}</p>
{{$adj := .Results.Adjusted}}<table><tr><th>model</th><th>metric</th><th>baseline</th><th>model</th><th>diff</th><th>CI</th><th>p</th>{{if $adj}}<th>p ({{.Results.Correction}})</th>{{end}}<th>win/tie/loss</th></tr>
{{range .Results.Comparisons}}<tr><td>{{.Model}}</td><td>{{.Metric}}</td><td class="n">{{f4 .BaselineMean}}</td><td class="n">{{f4 .ModelMean}}</td><td class="n">{{d4 .MeanDiff}}</td><td class="n">[{{d4 .CILow}}, {{d4 .CIHigh}}]</td><td class="n">{{praw .PValue}}</td>{{if $adj}}<td class="n">{{praw .PAdjusted}}</td>{{end}}<td>{{.Wins}}/{{.Ties}}/{{.Losses}}{{sig .P}}</td></tr>
{{end}}</table>{{end}}
{{end}}
{{define "summary"}}<h3>{{.Metric}}</h3>
<table><tr><th>dataset</th><th>queries</th>{{range .Models}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}{{$r := .}}<tr><td>{{.Dataset}}</td><td class="n">{{.Queries}}</td>{{range $i, $v := .Values}}<td class="n">{{opt $v}}<sup>{{idx $r.Marks $i}}</sup></td>{{end}}</tr>
{{end}}<tr class="avg"><td>macro average</td><td></td>{{range .Macro}}<td class="n">{{opt .}}</td>{{end}}</tr>
{{with .Pooled}}{{$r := .}}<tr><td>pooled</td><td class="n">{{.Queries}}</td>{{range $i, $v := .Values}}<td class="n">{{opt $v}}<sup>{{idx $r.Marks $i}}</sup></td>{{end}}</tr>{{end}}
{{if and .ShowLatency (hasAny .Latency)}}<tr class="lat"><td>ms/query</td><td></td>{{range .Latency}}<td class="n">{{ms .}}</td>{{end}}</tr>
<tr class="lat"><td>pairs/s</td><td></td>{{range .Latency}}<td class="n">{{pps .}}</td>{{end}}</tr>{{end}}
</table>
{{end}}
{{define "example"}}<div class="ex"><p class="q"><b>{{.QID}}</b>: {{.Query}} <span class="val">{{.Metric}} {{f4 .Before}} → {{f4 .After}} (<span class="{{.Class}}">{{d4 .Delta}}</span>)</span></p>
<table class="side"><colgroup><col class="c-n"><col class="c-l"><col class="c-m"><col><col class="c-l"><col class="c-m"><col></colgroup><tr><th>#</th><th colspan="3">{{.BaselineLabel}}</th><th colspan="3">{{.ModelLabel}}</th></tr>
{{range .Rows}}<tr><td class="n">{{.Rank}}</td>{{with .Left}}<td class="lab {{.LabelClass}}">{{.LabelText}}</td><td class="mv {{.MoveClass}}">{{.Move}}</td><td class="doc"><b>{{.Title}}</b> {{.Snippet}} <span class="id">[{{.DocID}}]</span></td>{{else}}<td></td><td></td><td></td>{{end}}{{with .Right}}<td class="lab {{.LabelClass}}">{{.LabelText}}</td><td class="mv {{.MoveClass}}">{{.Move}}</td><td class="doc"><b>{{.Title}}</b> {{.Snippet}} <span class="id">[{{.DocID}}]</span></td>{{else}}<td></td><td></td><td></td>{{end}}</tr>
{{end}}</table></div>
{{end}}`))

func writeHTML(w io.Writer, v *view) error {
	return htmlTemplate.ExecuteTemplate(w, "report", v)
}
