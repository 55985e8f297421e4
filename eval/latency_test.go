package eval

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRerankLatency(t *testing.T) {
	cands := []Candidate{
		{QID: "q1", Query: "a", DocIDs: []string{"d1", "d2", "d3"}},
		{QID: "q2", Query: "b", DocIDs: []string{"d1", "d2"}},
	}
	texts := map[string]string{"d1": "a", "d2": "b", "d3": "c"}
	slow := ScorerFunc(func(_ context.Context, _ string, p []string) ([]float32, error) {
		time.Sleep(10 * time.Millisecond)
		return make([]float32, len(p)), nil
	})
	var lat Latency
	_, err := Rerank(context.Background(), slow, cands, nil, func(id string) (string, bool) { t, ok := texts[id]; return t, ok },
		RerankOptions{TopK: 2, BatchSize: 1, Latency: &lat})
	require.NoError(t, err)
	assert.Equal(t, 2, lat.Depth)
	assert.Equal(t, 2, lat.Queries)
	assert.Equal(t, 4, lat.Pairs, "the top 2 of each query")
	assert.GreaterOrEqual(t, lat.Seconds, 0.04, "four calls of 10 ms")
	assert.InDelta(t, 1000*lat.Seconds/2, lat.MsPerQuery(), 1e-9)
	assert.InDelta(t, 4/lat.Seconds, lat.PairsPerSecond(), 1e-9)
}

func TestLatencyAdd(t *testing.T) {
	a := Latency{Depth: 100, Queries: 2, Pairs: 200, Seconds: 1}
	b := Latency{Depth: 100, Queries: 6, Pairs: 600, Seconds: 3}
	assert.Equal(t, Latency{Depth: 100, Queries: 8, Pairs: 800, Seconds: 4}, a.Add(b))
	assert.Equal(t, 500.0, a.Add(b).MsPerQuery())
	assert.Equal(t, 200.0, a.Add(b).PairsPerSecond())
	assert.Equal(t, 0, a.Add(Latency{Depth: 10, Queries: 1}).Depth, "depths differ")
	assert.Equal(t, 10, Latency{}.Add(Latency{Depth: 10, Queries: 1}).Depth)
	assert.Zero(t, Latency{}.MsPerQuery())
	assert.Zero(t, Latency{}.PairsPerSecond())
}
