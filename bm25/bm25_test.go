package bm25

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestStem(t *testing.T) {
	tests := []struct{ in, want string }{
		{"caresses", "caress"}, {"ponies", "poni"}, {"ties", "ti"}, {"cats", "cat"},
		{"feed", "feed"}, {"agreed", "agre"}, {"plastered", "plaster"}, {"bled", "bled"},
		{"motoring", "motor"}, {"sing", "sing"}, {"conflated", "conflat"}, {"troubled", "troubl"},
		{"sized", "size"}, {"hopping", "hop"}, {"falling", "fall"}, {"hissing", "hiss"},
		{"filing", "file"}, {"happy", "happi"}, {"sky", "sky"}, {"relational", "relat"},
		{"conditional", "condit"}, {"rational", "ration"}, {"generalizations", "gener"},
		{"oscillators", "oscil"}, {"effective", "effect"}, {"adjustable", "adjust"},
		{"electrical", "electr"}, {"hopeful", "hope"}, {"goodness", "good"},
		// the reference implementation's departures from the paper
		{"possibly", "possibl"}, {"sensibly", "sensibl"}, {"archaeology", "archaeolog"},
		{"analogies", "analog"},
		// short, non-letter and uppercase input is left alone
		{"is", "is"}, {"a", "a"}, {"x1", "x1"}, {"Cats", "Cats"}, {"", ""},
		{"aeroelastic", "aeroelast"}, {"heated", "heat"}, {"aircraft", "aircraft"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			assert.Equal(t, tc.want, Stem(tc.in))
		})
	}
}

func TestAnalyze(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"stop words and stemming", "What similarity laws must be obeyed when constructing models?",
			[]string{"what", "similar", "law", "must", "obei", "when", "construct", "model"}},
		{"digits split nothing, underscore splits", "Covid_19 in 2020s, β-blockers", []string{"covid", "19", "2020s", "β", "blocker"}},
		{"non-ASCII tokens are not stemmed", "Naïve cafés RUNNING", []string{"naïve", "cafés", "run"}},
		{"marks split tokens as in Python", "e\u0301tudes", []string{"e", "tude"}},
		{"dotted capital I lowercases to i + dot", "İstanbul", []string{"i", "stanbul"}},
		{"final sigma", "ΟΔΟΣ ΣΑ", []string{"οδος", "σα"}},
		{"empty", "  ... ", nil},
		{"numbers of other scripts", "x² ½ ٣", []string{"x²", "½", "٣"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, Analyze(tc.in))
		})
	}
}

// bruteForce scores every document directly from the formula.
func bruteForce(docs []Doc, query string, p Params) []Hit {
	var terms [][]string
	total := 0
	df := map[string]int{}
	for _, d := range docs {
		ts := Analyze(d.Text)
		terms = append(terms, ts)
		total += len(ts)
		seen := map[string]bool{}
		for _, t := range ts {
			if !seen[t] {
				df[t]++
				seen[t] = true
			}
		}
	}
	n := float64(len(docs))
	avgdl := float64(total) / n
	var hits []Hit
	for i, ts := range terms {
		tf := map[string]int{}
		for _, t := range ts {
			tf[t]++
		}
		score, matched := 0.0, false
		for _, q := range Analyze(query) {
			f := float64(tf[q])
			if f == 0 {
				continue
			}
			matched = true
			idf := math.Log(1 + (n-float64(df[q])+0.5)/(float64(df[q])+0.5))
			score += idf * f * (p.K1 + 1) / (f + p.K1*(1-p.B+p.B*float64(len(ts))/avgdl))
		}
		if matched {
			hits = append(hits, Hit{Doc: i, ID: docs[i].ID, Score: score})
		}
	}
	sortHits(hits)
	return hits
}

func randomDocs(r *rand.Rand, n int) []Doc {
	words := []string{"alpha", "beta", "gamma", "delta", "running", "runs", "the", "models", "model", "heat", "heated", "x", "y", "z1"}
	docs := make([]Doc, n)
	for i := range docs {
		var b strings.Builder
		for j := r.IntN(30); j >= 0; j-- {
			b.WriteString(words[r.IntN(len(words))])
			b.WriteByte(' ')
		}
		docs[i] = Doc{ID: fmt.Sprintf("d%d", i), Text: b.String()}
	}
	return docs
}

func TestSearchMatchesBruteForce(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	docs := randomDocs(r, 700)
	tests := []struct {
		name    string
		query   string
		k       int
		params  Params
		workers int
	}{
		{"one term", "alpha", 10, DefaultParams(), 1},
		{"repeated terms", "alpha alpha beta model", 50, DefaultParams(), 2},
		{"stemmed match", "heating runner", 5, DefaultParams(), 3},
		{"k larger than matches", "z1", 10000, DefaultParams(), 0},
		{"other params", "gamma delta", 20, Params{K1: 1.2, B: 0.75}, 4},
		{"b zero", "gamma delta", 20, Params{K1: 1.2, B: 0}, 1},
		{"no match", "nothing here", 10, DefaultParams(), 1},
		{"only stop words", "the and of", 10, DefaultParams(), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix, err := Build(context.Background(), docs, BuildOptions{Params: tc.params, Workers: tc.workers})
			require.NoError(t, err)
			want := bruteForce(docs, tc.query, tc.params)
			if len(want) > tc.k {
				want = want[:tc.k]
			}
			got := ix.Search(tc.query, tc.k)
			require.Len(t, got, len(want))
			for i := range want {
				assert.Equal(t, want[i].ID, got[i].ID, "rank %d", i)
				assert.InDelta(t, want[i].Score, got[i].Score, 1e-9)
			}
		})
	}
}

func TestTiesRankInCorpusOrder(t *testing.T) {
	docs := []Doc{{"c", "apple pie"}, {"a", "banana"}, {"b", "apple pie"}, {"z", "apple pie"}}
	ix, err := Build(context.Background(), docs, BuildOptions{})
	require.NoError(t, err)
	got := ix.Search("apple", 2)
	require.Len(t, got, 2)
	assert.Equal(t, "c", got[0].ID)
	assert.Equal(t, "b", got[1].ID)
	assert.Equal(t, got[0].Score, got[1].Score)
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		docs []Doc
		opts BuildOptions
		want string
	}{
		{"duplicate id", []Doc{{"a", "x"}, {"a", "y"}}, BuildOptions{}, "duplicate id"},
		{"bad b", []Doc{{"a", "x"}}, BuildOptions{Params: Params{K1: 1, B: 2}}, "out of range"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Build(context.Background(), tc.docs, tc.opts)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Build(ctx, randomDocs(rand.New(rand.NewPCG(1, 1)), 5000), BuildOptions{Workers: 2})
	assert.ErrorIs(t, err, context.Canceled)
}

func TestSaveLoad(t *testing.T) {
	docs := randomDocs(rand.New(rand.NewPCG(3, 4)), 300)
	ix, err := Build(context.Background(), docs, BuildOptions{})
	require.NoError(t, err)
	dir := t.TempDir()
	path := filepath.Join(dir, "index.bm25")
	require.NoError(t, ix.Save(path))
	ents, _ := os.ReadDir(dir)
	assert.Len(t, ents, 1, "no temporary file left")
	back, err := Load(path)
	require.NoError(t, err)
	assert.Equal(t, ix.Len(), back.Len())
	assert.Equal(t, ix.Vocabulary(), back.Vocabulary())
	assert.Equal(t, ix.AvgDocLen(), back.AvgDocLen())
	for _, q := range []string{"alpha beta", "heated model", "z1 x"} {
		assert.Equal(t, ix.Search(q, 20), back.Search(q, 20), q)
	}

	corrupt := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a BM25 index"},
		{"garbage", []byte("hello world"), "not a BM25 index"},
		{"truncated", func() []byte { b, _ := os.ReadFile(path); return b[:len(b)/2] }(), "not a BM25 index"},
	}
	for _, tc := range corrupt {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bad")
			require.NoError(t, os.WriteFile(p, tc.data, 0o644))
			_, err := Load(p)
			assert.ErrorContains(t, err, tc.want)
		})
	}
	t.Run("inconsistent postings", func(t *testing.T) {
		var buf bytes.Buffer
		bad := *ix
		bad.post = append([]postings(nil), ix.post...)
		bad.post[0] = postings{docs: []int32{5, 3}, tfs: []int32{1, 1}}
		require.NoError(t, bad.Encode(&buf))
		_, err := Read(&buf)
		assert.ErrorContains(t, err, "corrupt index")
	})
}

func TestWithParams(t *testing.T) {
	docs := randomDocs(rand.New(rand.NewPCG(5, 6)), 200)
	ix, err := Build(context.Background(), docs, BuildOptions{})
	require.NoError(t, err)
	p := Params{K1: 1.5, B: 0.9}
	other, err := ix.WithParams(p)
	require.NoError(t, err)
	ref, err := Build(context.Background(), docs, BuildOptions{Params: p})
	require.NoError(t, err)
	assert.Equal(t, ref.Search("alpha model", 30), other.Search("alpha model", 30))
	assert.Equal(t, DefaultParams(), ix.Params())
}

func TestRunLineFormat(t *testing.T) {
	l := RunLine{QID: "7", Query: "β \"x\"\n<y>", DocIDs: []string{"a", "b", "c"}, Scores: []float64{24.59461, 5, 0.03125}}
	assert.Equal(t, `{"qid": "7", "query": "β \"x\"\n<y>", "doc_ids": ["a", "b", "c"], "bm25_scores": [24.5946, 5.0, 0.0312]}`+"\n",
		string(l.AppendJSONL(nil)))
	assert.Equal(t, "7 Q0 a 1 24.594610 bm25\n7 Q0 b 2 5.000000 bm25\n7 Q0 c 3 0.031250 bm25\n", string(l.AppendTREC(nil, "bm25")))
	empty := RunLine{QID: "1", Query: "q"}
	assert.Equal(t, `{"qid": "1", "query": "q", "doc_ids": [], "bm25_scores": []}`+"\n", string(empty.AppendJSONL(nil)))
}

func TestSearchAllCancel(t *testing.T) {
	ix, err := Build(context.Background(), randomDocs(rand.New(rand.NewPCG(1, 1)), 50), BuildOptions{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = ix.SearchAll(ctx, []string{"alpha", "beta"}, 5, 1, nil)
	assert.ErrorIs(t, err, context.Canceled)
}

func FuzzAnalyze(f *testing.F) {
	for _, s := range []string{"Hello, World", "İΣς_x²", "\xff\xfe", "generalizations relational"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, tok := range Analyze(s) {
			if tok == "" || strings.ContainsFunc(tok, func(r rune) bool { return !isWordRune(r) }) {
				t.Fatalf("bad token %q from %q", tok, s)
			}
		}
	})
}

// sortHits sorts hits best first (score, then corpus order).
func sortHits(h []Hit) {
	sort.Slice(h, func(i, j int) bool {
		return better(scored{int32(h[i].Doc), h[i].Score}, scored{int32(h[j].Doc), h[j].Score})
	})
}

// TestReadRunErrors: ReadRun names file and line, and refuses a null score
// rather than reading it as 0 (issue 19 §6).
func TestReadRunErrors(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"null score", `{"qid":"q1","doc_ids":["d1","d2"],"bm25_scores":[1.5,null]}` + "\n", "c.jsonl:1: bm25_scores[1] is null"},
		{"count", `{"qid":"q1","doc_ids":["d1"],"bm25_scores":[1]}` + "\n" + `{"qid":"q2","doc_ids":["d1"],"bm25_scores":[]}`, "c.jsonl:2: 1 doc_ids but 0 bm25_scores"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c.jsonl")
			require.NoError(t, os.WriteFile(path, []byte(tc.body), 0o644))
			_, err := ReadRun(path)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	path := filepath.Join(t.TempDir(), "ok.jsonl")
	require.NoError(t, os.WriteFile(path, []byte(`{"qid":"q1","query":"null","doc_ids":["null"],"bm25_scores":[2]}`+"\n"), 0o644))
	lines, err := ReadRun(path)
	require.NoError(t, err)
	assert.Equal(t, []float64{2}, lines[0].Scores)
}
