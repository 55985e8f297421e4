package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rerank-go/rerank/flagdata"
	"github.com/urfave/cli/v2"
)

func init() { register(newDataCommand()) }

func newDataCommand() *cli.Command {
	validation := []cli.Flag{
		&cli.IntFlag{Name: "max-errors", Usage: "errors to report at most (-1 = all)", Value: 50},
		&cli.BoolFlag{Name: "allow-missing-neg", Usage: "accept lines without neg (input for rerank mine)"},
		&cli.BoolFlag{Name: "require-scores", Usage: "demand pos_scores/neg_scores on every line (distillation)"},
	}
	return &cli.Command{
		Name:  "data",
		Usage: "check and describe FlagEmbedding training data",
		Subcommands: []*cli.Command{
			{
				Name:      "check",
				Usage:     "validate a training file or directory; errors name file:line and field",
				ArgsUsage: "PATH",
				Flags:     validation,
				Action:    runDataCheck,
			},
			{
				Name:      "stats",
				Usage:     "count queries and passages, positives and negatives per query",
				ArgsUsage: "PATH",
				Flags: append(validation[:len(validation):len(validation)],
					&cli.BoolFlag{Name: "json", Usage: "print the statistics as JSON"}),
				Action: runDataStats,
			},
		},
	}
}

func dataOptions(c *cli.Context) flagdata.Options {
	return flagdata.Options{
		AllowMissingNeg: c.Bool("allow-missing-neg"),
		RequireScores:   c.Bool("require-scores"),
		MaxErrors:       c.Int("max-errors"),
	}
}

func dataPath(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", fmt.Errorf("rerank data %s: give one training file or directory", c.Command.Name)
	}
	return c.Args().First(), nil
}

func runDataCheck(c *cli.Context) error {
	path, err := dataPath(c)
	if err != nil {
		return err
	}
	files, err := flagdata.Files(path)
	if err != nil {
		return err
	}
	exs, err := flagdata.Load(path, dataOptions(c))
	var list *flagdata.ErrorList
	if errors.As(err, &list) {
		fmt.Fprintln(c.App.Writer, list.Error())
		more := ""
		if list.Truncated > 0 {
			more = " (or more: raise --max-errors)"
		}
		return fmt.Errorf("%s: %d invalid line(s)%s, %d valid examples", path, list.Lines(), more, len(exs))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "ok: %d examples in %d file(s)\n", len(exs), len(files))
	return nil
}

// dataStats describes a training set.
type dataStats struct {
	Files          int          `json:"files"`
	Examples       int          `json:"examples"`
	InvalidLines   int          `json:"invalid_lines"`
	Pos            countSummary `json:"pos_per_query"`
	Neg            countSummary `json:"neg_per_query"`
	QueryWords     countSummary `json:"query_words"`
	PassageWords   countSummary `json:"passage_words"`
	UniquePassages int          `json:"unique_passages"`
	WithScores     int          `json:"examples_with_teacher_scores"`
	WithPrompt     int          `json:"examples_with_prompt"`
	ExtraKeys      []string     `json:"extra_keys"`
	// NegBelow lists how many queries have fewer negatives than common
	// train_group_size-1 values.
	NegBelow map[string]int `json:"queries_with_fewer_negatives_than"`
}

type countSummary struct {
	Total  int     `json:"total"`
	Min    int     `json:"min"`
	Mean   float64 `json:"mean"`
	Median float64 `json:"median"`
	Max    int     `json:"max"`
}

func summarize(xs []int) countSummary {
	if len(xs) == 0 {
		return countSummary{}
	}
	s := append([]int(nil), xs...)
	sort.Ints(s)
	total := 0
	for _, x := range s {
		total += x
	}
	med := float64(s[len(s)/2])
	if len(s)%2 == 0 {
		med = float64(s[len(s)/2-1]+s[len(s)/2]) / 2
	}
	return countSummary{Total: total, Min: s[0], Max: s[len(s)-1], Mean: float64(total) / float64(len(s)), Median: med}
}

func computeDataStats(exs []flagdata.Example, files, invalid int) dataStats {
	st := dataStats{Files: files, Examples: len(exs), InvalidLines: invalid, NegBelow: map[string]int{}}
	var pos, neg, qw, pw []int
	uniq := map[string]struct{}{}
	extra := map[string]bool{}
	for _, e := range exs {
		pos = append(pos, len(e.Pos))
		neg = append(neg, len(e.Neg))
		qw = append(qw, len(strings.Fields(e.Query)))
		for _, p := range append(append([]string(nil), e.Pos...), e.Neg...) {
			pw = append(pw, len(strings.Fields(p)))
			uniq[p] = struct{}{}
		}
		if e.HasScores() {
			st.WithScores++
		}
		if e.Prompt != "" {
			st.WithPrompt++
		}
		for k := range e.Extra {
			extra[k] = true
		}
		for _, g := range []int{1, 7, 15} {
			if len(e.Neg) < g {
				st.NegBelow[fmt.Sprint(g)]++
			}
		}
	}
	st.Pos, st.Neg, st.QueryWords, st.PassageWords = summarize(pos), summarize(neg), summarize(qw), summarize(pw)
	st.UniquePassages = len(uniq)
	for k := range extra {
		st.ExtraKeys = append(st.ExtraKeys, k)
	}
	sort.Strings(st.ExtraKeys)
	return st
}

func runDataStats(c *cli.Context) error {
	path, err := dataPath(c)
	if err != nil {
		return err
	}
	files, err := flagdata.Files(path)
	if err != nil {
		return err
	}
	exs, err := flagdata.Load(path, dataOptions(c))
	invalid := 0
	var list *flagdata.ErrorList
	if errors.As(err, &list) {
		invalid = list.Lines()
		fmt.Fprintf(c.App.ErrWriter, "warning: invalid lines are left out of the statistics (run `rerank data check %s`):\n%s\n", path, list.Error())
	} else if err != nil {
		return err
	}
	st := computeDataStats(exs, len(files), invalid)
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	fmt.Fprintf(w, "%s: %d examples in %d file(s)", path, st.Examples, st.Files)
	if st.InvalidLines > 0 {
		fmt.Fprintf(w, " (%d invalid lines left out)", st.InvalidLines)
	}
	fmt.Fprintln(w)
	row := func(name string, s countSummary) {
		fmt.Fprintf(w, "  %-22s total %8d  min %5d  mean %8.1f  median %7.1f  max %6d\n", name, s.Total, s.Min, s.Mean, s.Median, s.Max)
	}
	row("pos per query", st.Pos)
	row("neg per query", st.Neg)
	row("words per query", st.QueryWords)
	row("words per passage", st.PassageWords)
	fmt.Fprintf(w, "  unique passages        %d\n", st.UniquePassages)
	fmt.Fprintf(w, "  with teacher scores    %d\n", st.WithScores)
	fmt.Fprintf(w, "  with prompt            %d\n", st.WithPrompt)
	if len(st.ExtraKeys) > 0 {
		fmt.Fprintf(w, "  extra keys             %s\n", strings.Join(st.ExtraKeys, ", "))
	}
	if n := st.NegBelow["1"]; n > 0 {
		fmt.Fprintf(w, "  queries without neg    %d (they cannot train with train_group_size > 1)\n", n)
	}
	for _, g := range []int{7, 15} {
		if n := st.NegBelow[fmt.Sprint(g)]; n > 0 {
			fmt.Fprintf(w, "  queries with < %-2d neg  %d (train_group_size %d repeats negatives for them)\n", g, n, g+1)
		}
	}
	return nil
}
