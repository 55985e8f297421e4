package bench

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/internal/sharedtest"
	"github.com/rerank-go/rerank/nn"
)

func TestFLOPs(t *testing.T) {
	for _, tc := range []struct {
		shape     string
		n, seq    int
		wantGFLOP float64
	}{
		// torch_cpu_ref.py's count_flops for the same shapes.
		{"minilm-l6", 16, 128, 45.907193856},
		{"bert-base", 16, 128, 357.574926336},
	} {
		t.Run(tc.shape, func(t *testing.T) {
			assert.InDelta(t, tc.wantGFLOP, FLOPs(Presets[tc.shape], tc.n, tc.seq)/1e9, 1e-9)
		})
	}
}

func TestExecutedFLOPs(t *testing.T) {
	p := Presets["minilm-l6"]
	// One layer of 16×128 tokens: 2·T·(4h²+2hI) + 4·n·l²·h.
	layer := 2*2048*(4*384*384+2*384*1536) + 4*16*128*128*384.0
	// The last layer keeps Q, K, V and the attention at every position
	// and runs the output projection and FFN at the 16 [CLS] rows only.
	saved := 2 * (2048 - 16) * (384*384 + 2*384*1536.0)
	dense := MakeBatch(p, 16, 128, nil, 1)
	assert.InDelta(t, FLOPs(p, 16, 128)-saved, ExecutedFLOPs(p, dense), 1)
	assert.InDelta(t, 0.70, saved/layer, 0.01, "share of the last layer's work skipped")

	// Rows of 64 real tokens: half the dense rows, and attention over 64
	// keys for each of the 128 padded queries.
	half := MakeBatch(p, 16, 128, []int{64}, 1)
	rows, attn := 16*64.0, 4*16*128*64*384.0
	want := 5*(2*rows*(4*384*384+2*384*1536)+attn) + 2*rows*3*384*384 + attn + 2*16*(384*384+2*384*1536) + 2*16*(384*384+384)
	assert.InDelta(t, want, ExecutedFLOPs(p, half), 1)
}

func TestMakeBatchLengths(t *testing.T) {
	for _, tc := range []struct {
		name    string
		lengths []int
		want    []int
	}{
		{"full", nil, []int{8, 8, 8}},
		{"cycled and clamped", []int{3, 20, 0}, []int{3, 8, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := MakeBatch(Presets["minilm-l6"], 3, 8, tc.lengths, 1)
			for i, w := range tc.want {
				got := 0
				for _, m := range b.Mask[i*8 : i*8+8] {
					got += int(m)
				}
				assert.Equal(t, w, got, "row %d", i)
				assert.Equal(t, int32(1), b.InputIDs[i*8], "row %d starts with id 1", i)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		assert.Equal(t, tc.want, Median(tc.in), "%v", tc.in)
	}
}

func TestRunErrors(t *testing.T) {
	ok := Options{Shape: "minilm-l6", Seq: 8, Batch: 4, Group: 2, Steps: 1, Backend: cpu.New()}
	for _, tc := range []struct {
		name string
		mode string
		edit func(*Options)
		want string
	}{
		{"shape", "infer", func(o *Options) { o.Shape = "gpt" }, "unknown shape"},
		{"group", "train", func(o *Options) { o.Group = 3 }, "multiple of the group size"},
		{"mode", "score", func(*Options) {}, "unknown mode"},
		{"steps", "infer", func(o *Options) { o.Steps = 0 }, "steps must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := ok
			tc.edit(&o)
			_, err := Run(tc.mode, o)
			assert.ErrorContains(t, err, tc.want)
		})
	}
}

func TestRealLengths(t *testing.T) {
	shared := sharedtest.Dir(t)
	lens, err := RealLengths(filepath.Join(shared, "data", "npl", "reranker_train.jsonl.gz"),
		filepath.Join(shared, "models", "bert-uncased-wordpiece-tokenizer", "tokenizer.json"), 128, 16, 8, 1)
	require.NoError(t, err)
	require.Len(t, lens, 16)
	for _, l := range lens {
		assert.True(t, l >= 3 && l <= 128, "length %d", l)
	}
}

// TestXLMRPresets: the full-size XLM-R presets build the real checkpoints'
// configs, and their batches follow XLM-R's conventions (<s> = 0 first,
// padding id 1, one token type), which the model accepts.
func TestXLMRPresets(t *testing.T) {
	for _, tc := range []struct {
		shape  string
		maxSeq int
	}{
		{"xlmr-large", 512},
		{"xlmr-m3", 8192},
	} {
		t.Run(tc.shape, func(t *testing.T) {
			p := Presets[tc.shape]
			c := Config(p, 0.1)
			require.NoError(t, c.Validate())
			assert.Equal(t, tc.maxSeq, c.MaxSequence())
			assert.Equal(t, nn.XLMRoberta, c.Arch)
			b := MakeBatch(p, 2, 6, []int{6, 3}, 1)
			require.NoError(t, b.Validate(c))
			assert.Equal(t, []int32{0, 0}, []int32{b.InputIDs[0], b.InputIDs[6]})
			assert.Equal(t, []int32{1, 1, 1}, b.InputIDs[9:12], "padding")
			assert.Equal(t, make([]int32, 12), b.TypeIDs)
		})
	}
}
