package crossencoder

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/eval"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/nn"
	"github.com/rerank-go/rerank/tokenize"
)

// bundledTokenizer is the BERT vocabulary shipped in examples/.
func bundledTokenizer(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(filepath.Dir(file)), "examples", "bert-uncased-tokenizer")
}

func initTiny(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "tiny")
	_, err := hfmodel.Init(cpu.New(), hfmodel.InitOptions{Preset: "tiny", Arch: nn.BERT, Tokenizer: bundledTokenizer(t), Output: dir, Seed: 7})
	require.NoError(t, err)
	return dir
}

var _ eval.Scorer = (*Model)(nil)

func TestInitWritesHFDirectory(t *testing.T) {
	dir := initTiny(t)
	for _, f := range []string{"config.json", "model.safetensors", "tokenizer.json", "vocab.txt"} {
		assert.FileExists(t, filepath.Join(dir, f))
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	assert.Contains(t, string(cfg), `"id2label"`)
	assert.Contains(t, string(cfg), `"vocab_size": 30522`)
	assert.Contains(t, string(cfg), `"BertForSequenceClassification"`)
}

func TestScoreMatchesSinglePairs(t *testing.T) {
	dir := initTiny(t)
	m, err := Load(cpu.New(), dir, Options{MaxLen: 64, BatchSize: 3})
	require.NoError(t, err)
	q := "does aspirin reduce the risk of heart attack"
	ps := []string{
		"Aspirin lowers the risk of myocardial infarction in adults.",
		"short",
		"The weather was pleasant and the river was calm all afternoon long, with birds singing in the trees by the water.",
		"Heart attacks are caused by blocked arteries.",
		"",
	}
	got, err := m.Score(context.Background(), q, ps)
	require.NoError(t, err)
	require.Len(t, got, len(ps))
	for i, p := range ps {
		one, err := m.Score(context.Background(), q, []string{p})
		require.NoError(t, err)
		assert.InDelta(t, one[0], got[i], 1e-5, "passage %d", i)
		assert.False(t, math.IsNaN(float64(got[i])))
	}
	// Deterministic across calls.
	again, err := m.Score(context.Background(), q, ps)
	require.NoError(t, err)
	assert.Equal(t, got, again)
}

// TestScorePackBudgets: packing the weights for a call's batches, whole,
// in part or not at all, leaves every score's bits as they are.
func TestScorePackBudgets(t *testing.T) {
	dir := initTiny(t)
	q := "does aspirin reduce the risk of heart attack"
	ps := []string{"Aspirin lowers the risk of myocardial infarction.", "short", "Heart attacks are caused by blocked arteries.", "", "aspirin"}
	var want []float32
	for _, budget := range []int64{-1, 0, 4 << 10, 1 << 30} {
		m, err := Load(cpu.NewWorkers(2), dir, Options{MaxLen: 64, BatchSize: 2, PackBudget: budget})
		require.NoError(t, err)
		got, err := m.Score(context.Background(), q, ps)
		require.NoError(t, err)
		if want == nil {
			want = got
			continue
		}
		assert.Equal(t, want, got, "budget %d", budget)
	}
}

func TestTruncationOptions(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want tokenize.Truncation
		err  string
	}{
		{"default", Options{}, tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: 512}, ""},
		{"max_len", Options{MaxLen: 128}, tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: 128}, ""},
		{"flag", Options{QueryMaxLen: 32, PassageMaxLen: 96}, tokenize.Truncation{Strategy: tokenize.FlagEmbedding, QueryMaxLen: 32, PassageMaxLen: 96}, ""},
		{"flag half", Options{QueryMaxLen: 64}, tokenize.Truncation{}, "set both or neither"},
		{"max above the model", Options{MaxLen: 1024}, tokenize.Truncation{Strategy: tokenize.LongestFirst, MaxLen: 512}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.o.Truncation(512)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestFlagTruncationLimitsLength(t *testing.T) {
	dir := initTiny(t)
	m, err := Load(cpu.New(), dir, Options{QueryMaxLen: 8, PassageMaxLen: 24})
	require.NoError(t, err)
	long := ""
	for i := 0; i < 100; i++ {
		long += "word "
	}
	e, err := m.Encode(long, long)
	require.NoError(t, err)
	assert.Equal(t, 32, e.Len())
}

func TestLoadErrors(t *testing.T) {
	empty := t.TempDir()
	_, err := Load(cpu.New(), empty, Options{})
	require.ErrorContains(t, err, "has no tokenizer.json")
}

// An XLM-R model from the XLM-R-layout tokenizer: <pad> = 1, positions
// 512 + pad + 1, one token type; it scores and truncates like BERT.
func TestInitXLMRoberta(t *testing.T) {
	tok := filepath.Join(sharedtest.Models(t), "xlmr-layout-unigram-tokenizer", "tokenizer.json")
	dir := filepath.Join(t.TempDir(), "xlmr")
	cfg, err := hfmodel.Init(cpu.New(), hfmodel.InitOptions{Preset: "tiny", Arch: nn.XLMRoberta, Tokenizer: tok, Output: dir, Seed: 1})
	require.NoError(t, err)
	assert.Equal(t, 1, cfg.PadID)
	assert.Equal(t, 514, cfg.MaxPositions)
	assert.Equal(t, 1, cfg.TypeVocab)
	m, err := Load(cpu.New(), dir, Options{QueryMaxLen: 8, PassageMaxLen: 24})
	require.NoError(t, err)
	got, err := m.Score(context.Background(), "what is a wing", []string{"A wing generates lift.", "Heat transfer in slabs and plates of various shapes."})
	require.NoError(t, err)
	require.Len(t, got, 2)
	assert.NotEqual(t, got[0], got[1])
	js, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	assert.Contains(t, string(js), `"XLMRobertaForSequenceClassification"`)
}

// TestScoreInt8: int8 scoring stays close to float32 and keeps a pair's
// score whatever the batch it lands in (a single pair, which runs on the
// model alone, included).
func TestScoreInt8(t *testing.T) {
	dir := initTiny(t)
	q := "does aspirin reduce the risk of heart attack"
	ps := []string{"Aspirin lowers the risk of myocardial infarction.", "short", "Heart attacks are caused by blocked arteries.", "", "aspirin"}
	fp, err := Load(cpu.NewWorkers(2), dir, Options{MaxLen: 64, BatchSize: 2})
	require.NoError(t, err)
	want, err := fp.Score(context.Background(), q, ps)
	require.NoError(t, err)
	m, err := Load(cpu.NewWorkers(2), dir, Options{MaxLen: 64, BatchSize: 2, Int8: true})
	require.NoError(t, err)
	got, err := m.Score(context.Background(), q, ps)
	require.NoError(t, err)
	assert.NotEqual(t, want, got, "int8 took no effect")
	for i, p := range ps {
		assert.InDelta(t, want[i], got[i], 0.05, "passage %d", i)
		one, err := m.Score(context.Background(), q, []string{p})
		require.NoError(t, err)
		assert.Equal(t, got[i], one[0], "passage %d alone", i)
	}
	// A loaded model scored by one worker holds the int8 weights only;
	// KeepFloat32 keeps the float32 ones, with the same scores.
	assert.True(t, m.Net.LinearWeightsDropped(), "int8 scoring kept the float32 weights")
	_, err = m.WithAdapter("a", t.TempDir())
	assert.ErrorContains(t, err, "KeepFloat32")
	keep, err := Load(cpu.NewWorkers(2), dir, Options{MaxLen: 64, BatchSize: 2, Int8: true, KeepFloat32: true})
	require.NoError(t, err)
	kept, err := keep.Score(context.Background(), q, ps)
	require.NoError(t, err)
	assert.Equal(t, got, kept)
	assert.False(t, keep.Net.LinearWeightsDropped())
	// Several workers each quantize a copy of their own: nothing dropped.
	many, err := Load(cpu.NewWorkers(2), dir, Options{MaxLen: 64, BatchSize: 2, Int8: true, Workers: 2})
	require.NoError(t, err)
	got2, err := many.Score(context.Background(), q, ps)
	require.NoError(t, err)
	assert.Equal(t, got, got2)
	assert.False(t, many.Net.LinearWeightsDropped())
}

// TestScoreOneCopy: a loaded model scored by one worker holds one copy of
// each float32 weight, the packed one, on the routes that pack (the
// float32 weights are marked dropped), with the scores of KeepFloat32 to
// the bit, in batches and one pair at a time (a single pair runs on the
// model alone; on the openblas route its bits may differ from the same
// pair's in a batch, with or without packing); on the routes that do not
// pack nothing is dropped.
// WithAdapter goes before the first pass and not after.
func TestScoreOneCopy(t *testing.T) {
	have := map[string]bool{}
	for _, r := range cpu.GemmRoutes() {
		have[r] = true
	}
	dir := initTiny(t)
	q := "does aspirin reduce the risk of heart attack"
	ps := []string{"Aspirin lowers the risk of myocardial infarction.", "short", "Heart attacks are caused by blocked arteries.", "", "aspirin"}
	for _, tc := range []struct {
		route string
		batch int
		packs bool
	}{
		{cpu.GemmAVX512, 0, true},
		{cpu.GemmAVX512, 1, true},
		{cpu.GemmAVX2, 2, true},
		{cpu.GemmOpenBLAS, 0, false},
		{cpu.GemmGo, 2, false},
	} {
		t.Run(fmt.Sprintf("%s/batch=%d", tc.route, tc.batch), func(t *testing.T) {
			if !have[tc.route] {
				t.Skipf("the %s route is not available here (routes: %v)", tc.route, cpu.GemmRoutes())
			}
			load := func(o Options) *Model {
				be, err := cpu.NewWithOptions(cpu.Options{Workers: 2, Gemm: tc.route})
				require.NoError(t, err)
				o.MaxLen, o.BatchSize = 64, tc.batch
				m, err := Load(be, dir, o)
				require.NoError(t, err)
				t.Cleanup(func() { m.Close() })
				return m
			}
			keep, m := load(Options{KeepFloat32: true}), load(Options{})
			want, err := keep.Score(context.Background(), q, ps)
			require.NoError(t, err)
			got, err := m.Score(context.Background(), q, ps)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			for i, p := range ps {
				one, err := m.Score(context.Background(), q, []string{p})
				require.NoError(t, err)
				kept, err := keep.Score(context.Background(), q, []string{p})
				require.NoError(t, err)
				assert.Equal(t, kept, one, "passage %d alone", i)
			}
			assert.Equal(t, tc.packs, m.Net.LinearWeightsDropped(), "float32 weights dropped")
			assert.False(t, keep.Net.LinearWeightsDropped())
			_, err = m.WithAdapter("a", t.TempDir())
			if tc.packs {
				assert.ErrorContains(t, err, "KeepFloat32")
			} else {
				assert.NotContains(t, fmt.Sprint(err), "KeepFloat32")
			}
			// Before the first pass, an adapter keeps the float32 weights.
			early := load(Options{})
			_, err = early.WithAdapter("a", t.TempDir())
			assert.NotContains(t, fmt.Sprint(err), "KeepFloat32")
			got, err = early.Score(context.Background(), q, ps)
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.False(t, early.Net.LinearWeightsDropped())
		})
	}
}
