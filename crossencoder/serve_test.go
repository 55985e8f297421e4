package crossencoder

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/rerank-go/rerank/backend/cpu"
	"github.com/rerank-go/rerank/hfmodel"
	"github.com/rerank-go/rerank/lora"
	"github.com/rerank-go/rerank/tokenize"
)

// testPassages are passages of many lengths.
func testPassages(n int, seed uint64) []string {
	rng := rand.New(rand.NewPCG(seed, 1))
	words := []string{"aspirin", "heart", "attack", "risk", "river", "calm", "the", "of", "blocked", "arteries", "wing", "lift"}
	out := make([]string, n)
	for i := range out {
		k := rng.IntN(60)
		s := ""
		for range k {
			s += words[rng.IntN(len(words))] + " "
		}
		out[i] = s
	}
	return out
}

// TestConcurrentCallsKeepTheBits: calls made at once, whose pairs the
// engine batches together in any mix, get the bits of each pair scored
// alone, with any token budget and number of workers.
func TestConcurrentCallsKeepTheBits(t *testing.T) {
	dir := initTiny(t)
	q := "does aspirin reduce the risk of heart attack"
	ps := testPassages(48, 3)
	alone, err := Load(cpu.New(), dir, Options{MaxLen: 64})
	require.NoError(t, err)
	want := make([]float32, len(ps))
	for i, p := range ps {
		s, err := alone.Rerank(context.Background(), q, []string{p})
		require.NoError(t, err)
		want[i] = s[0]
	}
	for _, o := range []Options{{MaxLen: 64}, {MaxLen: 64, MaxBatchTokens: 200, Workers: 2}, {MaxLen: 64, BatchSize: 3, Workers: 3}} {
		t.Run(fmt.Sprintf("tokens %d workers %d", o.MaxBatchTokens, o.Workers), func(t *testing.T) {
			m, err := Load(cpu.NewWorkers(2), dir, o)
			require.NoError(t, err)
			defer m.Close()
			var wg sync.WaitGroup
			errs := make([]error, 16)
			for c := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					rng := rand.New(rand.NewPCG(uint64(c), 2))
					for range 5 {
						idx := rng.Perm(len(ps))[:1+rng.IntN(12)]
						pairs := make([]Pair, len(idx))
						for k, i := range idx {
							pairs[k] = Pair{q, ps[i]}
						}
						got, err := m.RerankPairs(context.Background(), pairs)
						if err != nil {
							errs[c] = err
							return
						}
						for k, i := range idx {
							if got[k] != want[i] {
								errs[c] = fmt.Errorf("passage %d: %v, alone %v", i, got[k], want[i])
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			for _, err := range errs {
				assert.NoError(t, err)
			}
		})
	}
}

// fakeJob is a job of n pairs of the given lengths.
func queueJob(e *engine, ctx context.Context, lens ...int) *job {
	j := &job{ctx: ctx, out: make([]float32, len(lens)), left: len(lens), done: make(chan struct{})}
	var add []item
	for i, n := range lens {
		j.encs = append(j.encs, tokenize.Encoding{IDs: make([]int32, n)})
		add = append(add, item{j: j, i: i, n: n, seq: e.seq})
		e.seq++
	}
	slices.SortFunc(add, cmpItem)
	e.items = mergeItems(e.items, add)
	return j
}

// TestNextBatch: a pass takes the oldest pending pair and its neighbours
// in length from every call, within the token budget, and skips the pairs
// of calls that have gone away.
func TestNextBatch(t *testing.T) {
	e := newEngine(nil, Options{MaxBatchTokens: 100}, true, nil)
	ctx := context.Background()
	gone, cancel := context.WithCancel(ctx)
	cancel()
	a := queueJob(e, ctx, 50, 10, 12)
	b := queueJob(e, ctx, 11, 9, 40)
	c := queueJob(e, gone, 10, 10)
	_ = c
	batch, _, ok := e.next(nil)
	require.True(t, ok)
	var got []string
	name := map[*job]string{a: "a", b: "b"}
	for _, it := range batch {
		got = append(got, fmt.Sprintf("%s%d", name[it.j], it.n))
	}
	// The oldest pair (a's 50 tokens) anchors the pass; 50 + the next
	// closest, 40, make 2 × 50 = 100 tokens.
	require.Equal(t, []string{"b40", "a50"}, got)
	batch, _, ok = e.next(batch)
	require.True(t, ok)
	got = got[:0]
	for _, it := range batch {
		got = append(got, fmt.Sprintf("%s%d", name[it.j], it.n))
	}
	// Then a's 10-token pair with the others: 4 × 12 ≤ 100; c's are gone.
	assert.Equal(t, []string{"b9", "a10", "b11", "a12"}, got)
	assert.Equal(t, 0, e.pending())
	e.close()
	_, _, ok = e.next(nil)
	assert.False(t, ok)
}

func TestCancelledCall(t *testing.T) {
	m, err := Load(cpu.New(), initTiny(t), Options{MaxLen: 64})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = m.Rerank(ctx, "q", []string{"p"})
	assert.ErrorIs(t, err, context.Canceled)
	ctx, cancel = context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	time.Sleep(time.Millisecond)
	_, err = m.Rerank(ctx, "q", testPassages(200, 1))
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, 0, m.Pending(), "a call that went away leaves nothing queued")
	require.NoError(t, m.Close())
	_, err = m.Rerank(context.Background(), "q", []string{"p"})
	assert.ErrorIs(t, err, ErrClosed)
}

func TestSigmoidOption(t *testing.T) {
	dir := initTiny(t)
	raw, err := Load(cpu.New(), dir, Options{MaxLen: 64})
	require.NoError(t, err)
	sig, err := Load(cpu.New(), dir, Options{MaxLen: 64, Sigmoid: true})
	require.NoError(t, err)
	ps := testPassages(5, 9)
	r, err := raw.Rerank(context.Background(), "what is a wing", ps)
	require.NoError(t, err)
	s, err := sig.Rerank(context.Background(), "what is a wing", ps)
	require.NoError(t, err)
	for i := range r {
		assert.Equal(t, Sigmoid(r[i]), s[i])
		assert.True(t, s[i] > 0 && s[i] < 1)
	}
	assert.Equal(t, float32(0.5), Sigmoid(0))
}

// TestChunkPolicy: a long passage scores as the highest of its windows,
// each window scored by hand as (query, window tokens).
func TestChunkPolicy(t *testing.T) {
	m, err := Load(cpu.New(), initTiny(t), Options{MaxLen: 32})
	require.NoError(t, err)
	q := "aspirin risk"
	long := testPassages(1, 5)[0] + testPassages(1, 6)[0]
	a, b := m.Tok.Tokenize(q), m.Tok.Tokenize(long)
	require.Greater(t, len(b), 40)
	pol := LongPolicy{Mode: Chunk, MaxTokensPerDoc: 10, MaxChunksPerDoc: 3}
	d, err := m.EncodeDoc(q, long, pol)
	require.NoError(t, err)
	require.Len(t, d.Windows, 3)
	var hand []tokenize.Encoding
	for k := range 3 {
		e, err := m.Tok.EncodeIDs(a, b[10*k:10*k+10], tokenize.Truncation{}, false)
		require.NoError(t, err)
		hand = append(hand, e)
		assert.Equal(t, e.IDs, d.Windows[k].IDs, "window %d", k)
	}
	each, err := m.ScoreEncoded(context.Background(), hand)
	require.NoError(t, err)
	got, err := m.ScoreDocs(context.Background(), []Doc{d}, nil)
	require.NoError(t, err)
	assert.Equal(t, max(each[0], each[1], each[2]), got[0])

	// Default window: as many tokens as fit beside the query.
	d, err = m.EncodeDoc(q, long, LongPolicy{Mode: Chunk})
	require.NoError(t, err)
	room := 32 - m.Tok.SpecialTokens(true) - len(a)
	assert.Len(t, d.Windows, (len(b)+room-1)/room)
	assert.Equal(t, 32, d.Windows[0].Len())
	// A short passage: the truncate policy's encoding.
	short, err := m.EncodeDoc(q, "heart", LongPolicy{Mode: Chunk})
	require.NoError(t, err)
	enc, err := m.Encode(q, "heart")
	require.NoError(t, err)
	assert.Equal(t, []tokenize.Encoding{enc}, short.Windows)

	// Reject: a pair over MaxLen is refused.
	_, err = m.EncodeDoc(q, long, LongPolicy{Mode: Reject})
	assert.ErrorIs(t, err, ErrTooLong)
	_, err = m.EncodeDoc(q, "heart", LongPolicy{Mode: Reject})
	assert.NoError(t, err)
	// Truncate with Left keeps the passage's end.
	d, err = m.EncodeDoc(q, long, LongPolicy{Left: true})
	require.NoError(t, err)
	ids := d.Windows[0].IDs
	assert.Equal(t, b[len(b)-1], ids[len(ids)-2])
}

// TestWithAdapter: adapters over one base score as the merged adapter
// does (to rounding), leave the base's scores' bits alone, and differ
// from each other.
func TestWithAdapter(t *testing.T) {
	dir := initTiny(t)
	be := cpu.New()
	var adDirs []string
	for seed := range uint64(2) {
		net, _, err := hfmodel.Load(be, dir, hfmodel.LoadOptions{})
		require.NoError(t, err)
		cfg := lora.DefaultConfig()
		cfg.Init = lora.InitRandom
		ad, err := lora.Attach(net, cfg, seed+1)
		require.NoError(t, err)
		out := filepath.Join(t.TempDir(), fmt.Sprint("ad", seed))
		require.NoError(t, ad.Save(out, dir))
		adDirs = append(adDirs, out)
	}
	q, ps := "aspirin heart", testPassages(9, 4)
	// The base scores before its adapters come: it keeps its float32
	// weights for them.
	m, err := Load(be, dir, Options{MaxLen: 64, KeepFloat32: true})
	require.NoError(t, err)
	before, err := m.Rerank(context.Background(), q, ps)
	require.NoError(t, err)
	var scores [][]float32
	for i, ad := range adDirs {
		v, err := m.WithAdapter(fmt.Sprint("a", i), ad)
		require.NoError(t, err)
		assert.Equal(t, fmt.Sprint("a", i), v.AdapterName())
		got, err := v.Rerank(context.Background(), q, ps)
		require.NoError(t, err)
		merged, err := Load(be, dir, Options{MaxLen: 64, Adapter: ad})
		require.NoError(t, err)
		want, err := merged.Rerank(context.Background(), q, ps)
		require.NoError(t, err)
		assert.InDeltaSlice(t, want, got, 1e-4)
		scores = append(scores, got)
	}
	assert.NotEqual(t, scores[0], scores[1])
	after, err := m.Rerank(context.Background(), q, ps)
	require.NoError(t, err)
	assert.Equal(t, before, after, "adapters leave the base model's scores alone")
	assert.NotEqual(t, before, scores[0])
	require.NoError(t, m.Close())
}
