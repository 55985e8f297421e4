package report

import (
	"fmt"
	"image/color"
	"math"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/rerank-go/rerank/eval"
)

// exampleView is one model's examples laid out for the templates.
type exampleView struct {
	Metric, Baseline, Model string
	Top                     int
	Gains, Losses           []exampleItem
	Plot                    *plotFile
}

// exampleItem is one query: both rankings row by row.
type exampleItem struct {
	QID, Query, Metric        string
	Before, After, Delta      float64
	Class                     string // up or down
	BaselineLabel, ModelLabel string
	Rows                      []exampleRow
}

type exampleRow struct {
	Rank        int
	Left, Right *docCell
}

// docCell is a passage of a ranking with its label and its move from the
// baseline's rank to the model's.
type docCell struct {
	DocID, Title, Snippet string
	LabelText, LabelClass string
	Move, MoveClass       string
}

// move describes a document's move from rank before (baseline) to rank
// after (model); 0 means the ranking lacks it.
func move(before, after int) (string, string) {
	switch {
	case before == 0:
		return "new", "up"
	case after == 0:
		return "out", "down"
	case after < before:
		return "↑" + strconv.Itoa(before-after), "up"
	case after > before:
		return "↓" + strconv.Itoa(after-before), "down"
	}
	return "=", "same"
}

func newDocCell(d eval.ExampleDoc, baselineSide bool) *docCell {
	c := &docCell{DocID: d.DocID, Title: d.Title, Snippet: d.Snippet, LabelText: "–", LabelClass: "non"}
	if d.Label >= 1 {
		c.LabelText, c.LabelClass = "rel "+strconv.Itoa(d.Label), "rel"
	}
	if baselineSide {
		c.Move, c.MoveClass = move(d.Rank, d.OtherRank)
	} else {
		c.Move, c.MoveClass = move(d.OtherRank, d.Rank)
	}
	return c
}

func newExampleView(ex eval.Examples) exampleView {
	v := exampleView{Metric: ex.Metric, Baseline: ex.Baseline, Model: ex.Model}
	item := func(e eval.Example) exampleItem {
		it := exampleItem{
			QID: e.QID, Query: e.Query, Metric: ex.Metric,
			Before: e.BaselineValue, After: e.ModelValue, Delta: e.ModelValue - e.BaselineValue,
			Class: "up", BaselineLabel: ex.Baseline, ModelLabel: ex.Model,
		}
		if it.Delta < 0 {
			it.Class = "down"
		}
		n := max(len(e.Baseline), len(e.Model))
		v.Top = max(v.Top, n)
		for i := 0; i < n; i++ {
			r := exampleRow{Rank: i + 1}
			if i < len(e.Baseline) {
				r.Left = newDocCell(e.Baseline[i], true)
			}
			if i < len(e.Model) {
				r.Right = newDocCell(e.Model[i], false)
			}
			it.Rows = append(it.Rows, r)
		}
		return it
	}
	for _, e := range ex.Gains {
		v.Gains = append(v.Gains, item(e))
	}
	for _, e := range ex.Losses {
		v.Losses = append(v.Losses, item(e))
	}
	return v
}

// mdExamples writes one model's examples as Markdown tables.
func mdExamples(b *strings.Builder, v exampleView, h string) {
	fmt.Fprintf(b, "%s Examples: %s against %s, by %s\n\n", h, mdEscape(v.Model), mdEscape(v.Baseline), v.Metric)
	fmt.Fprintf(b, "The queries where %s gains most and loses most against %s on %s: the top %d of both rankings, "+
		"each passage with its relevance label (rel N; – not judged relevant), its move from %s's rank to %s's (↑ up, ↓ down), its title and the start of its text.\n\n",
		mdEscape(v.Model), mdEscape(v.Baseline), v.Metric, v.Top, mdEscape(v.Baseline), mdEscape(v.Model))
	cell := func(c *docCell) string {
		if c == nil {
			return " | | "
		}
		t := mdEscape(c.Snippet)
		if c.Title != "" {
			t = "**" + mdEscape(c.Title) + "** " + t
		}
		return fmt.Sprintf("%s | %s | %s `%s`", c.LabelText, c.Move, t, mdEscape(c.DocID))
	}
	for _, part := range []struct {
		title string
		items []exampleItem
	}{{"Largest gains", v.Gains}, {"Largest losses", v.Losses}} {
		fmt.Fprintf(b, "%s# %s\n\n", h, part.title)
		if len(part.items) == 0 {
			b.WriteString("None.\n\n")
		}
		for _, it := range part.items {
			fmt.Fprintf(b, "**%s**: %s — %s %.4f → %.4f (%+.4f)\n\n", mdEscape(it.QID), mdEscape(it.Query), it.Metric, it.Before, it.After, it.Delta)
			fmt.Fprintf(b, "| # | label | move | %s | label | move | %s |\n|---:|---|---|---|---|---|---|\n", mdEscape(it.BaselineLabel), mdEscape(it.ModelLabel))
			for _, r := range it.Rows {
				fmt.Fprintf(b, "| %d | %s | %s |\n", r.Rank, cell(r.Left), cell(r.Right))
			}
			b.WriteString("\n")
		}
	}
}

// isShift tells the rank-shift plots, shown with their examples in the
// HTML, from a section's other plots.
func isShift(name string) bool { return strings.Contains(name, "rankshift_") }

// rankShiftPlot draws the rank of every judged relevant document by the
// baseline (x) against the model (y), log scales, and returns the PNG and
// the number of documents plotted (those both rankings hold).
func rankShiftPlot(ex eval.Examples) ([]byte, int, error) {
	var up, down, same plotter.XYs
	maxRank := 1
	for _, s := range ex.Shifts {
		if s.Before <= 0 || s.After <= 0 {
			continue
		}
		xy := plotter.XY{X: float64(s.Before), Y: float64(s.After)}
		maxRank = max(maxRank, s.Before, s.After)
		switch {
		case s.After < s.Before:
			up = append(up, xy)
		case s.After > s.Before:
			down = append(down, xy)
		default:
			same = append(same, xy)
		}
	}
	n := len(up) + len(down) + len(same)
	if n == 0 {
		return nil, 0, nil
	}
	title := fmt.Sprintf("Rank of judged relevant passages: %s → %s (%d up, %d down, %d same)",
		ex.Baseline, ex.Model, len(up), len(down), len(same))
	p := newPlot(title, "rank by "+ex.Baseline+" (log scale)", "rank by "+ex.Model+" (log scale)")
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	hi := math.Max(2, float64(maxRank)*1.25)
	p.X.Min, p.Y.Min = 0.8, 0.8
	p.X.Max, p.Y.Max = hi, hi
	var ticks []plot.Tick
	for _, t := range []int{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000} {
		if float64(t) <= hi {
			ticks = append(ticks, plot.Tick{Value: float64(t), Label: strconv.Itoa(t)})
		}
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.ConstantTicks(ticks), plot.ConstantTicks(ticks)
	diag, err := plotter.NewLine(plotter.XYs{{X: 0.8, Y: 0.8}, {X: hi, Y: hi}})
	if err != nil {
		return nil, 0, err
	}
	diag.Color = color.Gray{Y: 0x80}
	diag.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(diag)
	for _, g := range []struct {
		xys   plotter.XYs
		c     color.Color
		label string
	}{
		{same, color.NRGBA{R: 0x80, G: 0x80, B: 0x80, A: 0x90}, "same rank"},
		{up, color.NRGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xc0}, "ranked higher by " + ex.Model},
		{down, color.NRGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xc0}, "ranked lower by " + ex.Model},
	} {
		if len(g.xys) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(g.xys)
		if err != nil {
			return nil, 0, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: g.c, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
		p.Add(sc)
		p.Legend.Add(g.label, sc)
	}
	p.Legend.Left = true
	png, err := encodePNGSize(p, 6*vg.Inch, 6*vg.Inch)
	return png, n, err
}
