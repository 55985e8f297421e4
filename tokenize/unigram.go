package tokenize

import (
	"sort"
	"strings"
	"unicode/utf8"
)

// byteTrie maps byte strings to ids. Nodes with many children use a dense
// 256-entry table, the others a short sorted label list.
type byteTrie struct {
	value  []int32 // id ending at the node, or -1
	first  []int32 // children of node i: labels/child[first[i]:first[i+1]]
	labels []byte
	child  []int32
	dense  []int32 // per node: index of its 256-entry table in table, or -1
	table  []int32
}

const denseThreshold = 12

func buildByteTrie(keys []string, ids []int32) *byteTrie {
	type edge struct {
		b    byte
		node int32
	}
	kids := [][]edge{nil}
	vals := []int32{-1}
	for k, key := range keys {
		n := int32(0)
		for i := 0; i < len(key); i++ {
			var next int32 = -1
			for _, e := range kids[n] {
				if e.b == key[i] {
					next = e.node
					break
				}
			}
			if next < 0 {
				next = int32(len(kids))
				kids = append(kids, nil)
				vals = append(vals, -1)
				kids[n] = append(kids[n], edge{key[i], next})
			}
			n = next
		}
		vals[n] = ids[k]
	}
	t := &byteTrie{value: vals, first: make([]int32, len(kids)+1), dense: make([]int32, len(kids))}
	for i, ks := range kids {
		sort.Slice(ks, func(a, b int) bool { return ks[a].b < ks[b].b })
		t.first[i] = int32(len(t.labels))
		for _, e := range ks {
			t.labels = append(t.labels, e.b)
			t.child = append(t.child, e.node)
		}
		t.dense[i] = -1
		if len(ks) > denseThreshold {
			t.dense[i] = int32(len(t.table) / 256)
			base := len(t.table)
			for j := 0; j < 256; j++ {
				t.table = append(t.table, -1)
			}
			for _, e := range ks {
				t.table[base+int(e.b)] = e.node
			}
		}
	}
	t.first[len(kids)] = int32(len(t.labels))
	return t
}

// step returns the child of node n along byte b, or -1.
func (t *byteTrie) step(n int32, b byte) int32 {
	if d := t.dense[n]; d >= 0 {
		return t.table[int(d)*256+int(b)]
	}
	for i, end := t.first[n], t.first[n+1]; i < end; i++ {
		l := t.labels[i]
		if l == b {
			return t.child[i]
		}
		if l > b {
			break
		}
	}
	return -1
}

// unigram is Hugging Face's Unigram model (sentencepiece's optimized
// Viterbi): the best-scoring segmentation over the vocabulary trie, one
// unknown-token node per character that no single-character piece covers,
// and adjacent unknowns fused into one.
type unigram struct {
	trie     *byteTrie
	scores   []float64
	byPiece  map[string]int32
	unk      int32
	unkScore float64
}

const unkPenalty = 10.0

func newUnigram(pieces []string, scores []float64, unk int32) *unigram {
	u := &unigram{scores: scores, byPiece: make(map[string]int32, len(pieces)), unk: unk}
	ids := make([]int32, len(pieces))
	minScore := 0.0
	for i, p := range pieces {
		ids[i] = int32(i)
		u.byPiece[p] = int32(i)
		if i == 0 || scores[i] < minScore {
			minScore = scores[i]
		}
	}
	// The last of duplicated pieces wins, as in HF's token map.
	for i, p := range pieces {
		ids[i] = u.byPiece[p]
	}
	u.trie = buildByteTrie(pieces, ids)
	u.unkScore = minScore - unkPenalty
	return u
}

// viterbi scratch, reused across words.
type lattice struct {
	score []float64
	start []int32
	id    []int32
	path  []int32
}

func (u *unigram) encode(s string, lat *lattice, dst []int32) []int32 {
	n := len(s)
	if n == 0 {
		return dst
	}
	if cap(lat.score) < n+1 {
		lat.score = make([]float64, n+1)
		lat.start = make([]int32, n+1)
		lat.id = make([]int32, n+1)
	}
	score, start, id := lat.score[:n+1], lat.start[:n+1], lat.id[:n+1]
	for i := range start {
		start[i] = -1
		score[i] = 0
	}
	t := u.trie
	for pos := 0; pos < n; {
		base := score[pos]
		_, mblen := utf8.DecodeRuneInString(s[pos:])
		single := false
		node := int32(0)
		for k := pos; k < n; k++ {
			node = t.step(node, s[k])
			if node < 0 {
				break
			}
			if v := t.value[node]; v >= 0 {
				end := k + 1
				cand := u.scores[v] + base
				if start[end] < 0 || cand > score[end] {
					score[end], start[end], id[end] = cand, int32(pos), v
				}
				if end-pos == mblen {
					single = true
				}
			}
		}
		if !single {
			end := pos + mblen
			cand := u.unkScore + base
			if start[end] < 0 || cand > score[end] {
				score[end], start[end], id[end] = cand, int32(pos), u.unk
			}
		}
		pos += mblen
	}
	// Backtrack, collecting node ends from the last to the first.
	path := lat.path[:0]
	for end := int32(n); end > 0; end = start[end] {
		path = append(path, end)
	}
	lat.path = path
	for i := len(path) - 1; i >= 0; {
		end := path[i]
		b := start[end]
		if id[end] != u.unk {
			dst = append(dst, id[end])
			i--
			continue
		}
		// Fuse this unknown with the unknowns that follow it.
		for i > 0 && id[path[i-1]] == u.unk {
			i--
		}
		e := path[i]
		i--
		if v, ok := u.byPiece[s[b:e]]; ok {
			dst = append(dst, v)
		} else {
			dst = append(dst, u.unk)
		}
	}
	return dst
}

// metaspace is the Metaspace pre-tokenizer: spaces become the replacement
// character, which is prepended (per the prepend scheme) and starts each
// piece when split is set.
type metaspace struct {
	repl    string
	prepend int
	split   bool
}

const (
	prependAlways = iota
	prependFirst
	prependNever
)

func (m *metaspace) preTokenize(s string, atStart bool, emit func(string) bool) {
	if s == "" {
		return
	}
	if strings.IndexByte(s, ' ') >= 0 {
		s = strings.ReplaceAll(s, " ", m.repl)
	}
	if !strings.HasPrefix(s, m.repl) && (m.prepend == prependAlways || (m.prepend == prependFirst && atStart)) {
		s = m.repl + s
	}
	if !m.split {
		emit(s)
		return
	}
	from := 0
	for {
		i := strings.Index(s[from+1:], m.repl)
		if i < 0 {
			break
		}
		at := from + 1 + i
		if !emit(s[from:at]) {
			return
		}
		from = at
	}
	emit(s[from:])
}
