package nntest

import (
	"math"
	"math/rand/v2"

	"github.com/rerank-go/rerank/nn"
)

// RefLogits computes m's logits for b in float64, with nothing of nn's own
// code but the weights: a BERT or XLM-R encoder and its classification
// head as transformers defines them (additive padding mask, erf GELU,
// biased LayerNorm variance, XLM-R positions counted from pad_token_id+1
// over the ids that are not padding). It is slow and meant for small
// models; the tests of every path (training forward, the inference runner
// on each GEMM route, packed, int8, tiled) measure themselves against it.
// The result is [N*NumLabels].
func RefLogits(m *nn.Model, b *nn.Batch) []float64 { return RefLogitsWith(m, b, nil) }

// RefLogitsWith is RefLogits with the float64 values of some parameters
// given in place of the model's (for finite differences in float64).
func RefLogitsWith(m *nn.Model, b *nn.Batch, override map[*nn.Param][]float64) []float64 {
	c := m.Cfg
	get := func(p *nn.Param) []float64 {
		if v, ok := override[p]; ok {
			return v
		}
		return Float64s(m, p)
	}
	H, nh := c.Hidden, c.Heads
	d := H / nh
	emb := m.Embeddings()
	word, pos, typ := get(emb.Word), get(emb.Pos), get(emb.Type)
	elnw, elnb := get(emb.LNW), get(emb.LNB)
	type lin struct {
		w, b    []float64
		in, out int
	}
	mk := func(l *nn.Linear) lin { return lin{get(l.W), get(l.B), l.In, l.Out} }
	apply := func(l lin, x []float64) []float64 {
		y := make([]float64, l.out)
		for o := range y {
			s := l.b[o]
			row := l.w[o*l.in : (o+1)*l.in]
			for i, v := range x {
				s += row[i] * v
			}
			y[o] = s
		}
		return y
	}
	ln := func(x, w, bias []float64) []float64 {
		mean, vr := 0.0, 0.0
		for _, v := range x {
			mean += v
		}
		mean /= float64(len(x))
		for _, v := range x {
			vr += (v - mean) * (v - mean)
		}
		vr /= float64(len(x))
		inv := 1 / math.Sqrt(vr+float64(c.LayerNormEps))
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = (v-mean)*inv*w[i] + bias[i]
		}
		return y
	}
	type layer struct {
		q, k, v, ao, in, out   lin
		ln1w, ln1b, ln2w, ln2b []float64
	}
	layers := make([]layer, c.Layers)
	for l := range layers {
		lw := m.Layer(l)
		layers[l] = layer{mk(lw.Q), mk(lw.K), mk(lw.V), mk(lw.AttnOut), mk(lw.Inter), mk(lw.Out),
			get(lw.LN1W), get(lw.LN1B), get(lw.LN2W), get(lw.LN2B)}
	}
	hd := m.Head()
	dense, out := mk(hd.Dense), mk(hd.Out)

	logits := make([]float64, 0, b.N*c.NumLabels)
	for n := 0; n < b.N; n++ {
		S := b.S
		ids, types, mask := b.InputIDs[n*S:(n+1)*S], b.TypeIDs[n*S:(n+1)*S], b.Mask[n*S:(n+1)*S]
		x := make([][]float64, S)
		cum := 0
		for j := 0; j < S; j++ {
			p := j
			if c.Arch == nn.XLMRoberta {
				p = c.PadID
				if int(ids[j]) != c.PadID {
					cum++
					p = c.PadID + cum
				}
			}
			e := make([]float64, H)
			for i := range e {
				e[i] = word[int(ids[j])*H+i] + pos[p*H+i] + typ[int(types[j])*H+i]
			}
			x[j] = ln(e, elnw, elnb)
		}
		for _, L := range layers {
			q, k, v := make([][]float64, S), make([][]float64, S), make([][]float64, S)
			for j := range x {
				q[j], k[j], v[j] = apply(L.q, x[j]), apply(L.k, x[j]), apply(L.v, x[j])
			}
			ctx := make([][]float64, S)
			for i := 0; i < S; i++ {
				ctx[i] = make([]float64, H)
				for h := 0; h < nh; h++ {
					sc := make([]float64, S)
					mx := math.Inf(-1)
					for j := 0; j < S; j++ {
						s := 0.0
						for t := 0; t < d; t++ {
							s += q[i][h*d+t] * k[j][h*d+t]
						}
						s /= math.Sqrt(float64(d))
						if mask[j] == 0 {
							s += -math.MaxFloat32
						}
						sc[j] = s
						mx = math.Max(mx, s)
					}
					sum := 0.0
					for j := range sc {
						sc[j] = math.Exp(sc[j] - mx)
						sum += sc[j]
					}
					for j := range sc {
						for t := 0; t < d; t++ {
							ctx[i][h*d+t] += sc[j] / sum * v[j][h*d+t]
						}
					}
				}
			}
			for j := range x {
				a := apply(L.ao, ctx[j])
				for i := range a {
					a[i] += x[j][i]
				}
				a = ln(a, L.ln1w, L.ln1b)
				f := apply(L.in, a)
				for i, u := range f {
					f[i] = 0.5 * u * (1 + math.Erf(u/math.Sqrt2))
				}
				o := apply(L.out, f)
				for i := range o {
					o[i] += a[i]
				}
				x[j] = ln(o, L.ln2w, L.ln2b)
			}
		}
		h := apply(dense, x[0])
		for i := range h {
			h[i] = math.Tanh(h[i])
		}
		logits = append(logits, apply(out, h)...)
	}
	return logits
}

// Perturb adds N(0, std²) noise to every parameter of m (biases and
// LayerNorm parameters included, which InitRandom leaves at 0 and 1), so
// that a test notices a path that drops one.
func Perturb(m *nn.Model, seed uint64, std float64) {
	r := rand.New(rand.NewPCG(seed, 0x9e7))
	for _, p := range m.Params() {
		v := make([]float32, p.Size())
		m.Backend().Download(v, p.W)
		for i := range v {
			v[i] += float32(r.NormFloat64() * std)
		}
		m.Backend().Upload(p.W, v)
	}
}

// RelErr is the largest |got−want| / max(1, |want|).
func RelErr(got []float32, want []float64) float64 {
	worst := 0.0
	for i := range want {
		worst = math.Max(worst, math.Abs(float64(got[i])-want[i])/math.Max(1, math.Abs(want[i])))
	}
	return worst
}

// OddBatch builds n rows padded to s tokens whose lengths run over 1..s
// (the last row exactly s, the first 1 when n > 1), ids drawn above the
// padding id, the second part of each row of type 1 where the model has two
// types. Unlike RandomBatch it makes rows of one to three tokens.
func OddBatch(r *rand.Rand, c nn.Config, n, s int) *nn.Batch {
	b := &nn.Batch{N: n, S: s, InputIDs: make([]int32, n*s), TypeIDs: make([]int32, n*s), Mask: make([]int32, n*s)}
	for i := 0; i < n; i++ {
		l := 1 + r.IntN(s)
		switch {
		case i == n-1:
			l = s
		case i == 0:
			l = 1
		}
		for j := 0; j < s; j++ {
			k := i*s + j
			if j >= l {
				b.InputIDs[k] = int32(c.PadID)
				continue
			}
			id := c.PadID
			for id == c.PadID {
				id = r.IntN(c.VocabSize)
			}
			b.InputIDs[k] = int32(id)
			b.Mask[k] = 1
			if c.TypeVocab > 1 && j > l/2 {
				b.TypeIDs[k] = 1
			}
		}
	}
	return b
}

// Shape is a model shape of OddShapes with the batch shapes (rows, padded
// length) to run it on.
type Shape struct {
	Name    string
	Cfg     nn.Config
	Batches [][2]int
	// Grad is the batch shape of the gradient checks.
	Grad [2]int
}

// OddShapes are the widths of real Hub rerankers (TinyBERT-L2: hidden 128,
// 2 heads of 64; TinyBERT-L4: hidden 312, 12 heads of 26, intermediate
// 1200; MiniLM: 384, 12 heads of 32; bert-base: 768, 12 heads) and edge
// shapes (heads of 1 and 3 values, two labels, XLM-R with v2-m3's 8194
// positions and one type), each with one or two layers and a small
// vocabulary, on batch shapes that are no multiple of any SIMD width: 1,
// 2, 3, 17 rows of 1, 2, 3, 13, 21, 29 tokens; the gradient checks run on
// the smaller shapes (Grad zero: none).
func OddShapes() []Shape {
	bert := func(h, heads, inter, layers int) nn.Config {
		return nn.Config{Arch: nn.BERT, VocabSize: 37, Hidden: h, Layers: layers, Heads: heads, Intermediate: inter,
			MaxPositions: 64, TypeVocab: 2, LayerNormEps: 1e-12, NumLabels: 1}
	}
	xlmr := bert(64, 16, 100, 2)
	xlmr.Arch, xlmr.TypeVocab, xlmr.PadID, xlmr.LayerNormEps, xlmr.MaxPositions = nn.XLMRoberta, 1, 1, 1e-5, 8194
	twoLabels := bert(40, 5, 72, 2)
	twoLabels.NumLabels, twoLabels.LayerNormEps = 2, 1e-7
	return []Shape{
		{"tinybert-L2 128x2 heads", bert(128, 2, 512, 2), [][2]int{{17, 21}, {1, 1}, {2, 3}}, [2]int{3, 5}},
		{"tinybert-L4 312x12 heads of 26", bert(312, 12, 1200, 1), [][2]int{{3, 29}, {1, 2}}, [2]int{2, 3}},
		{"minilm 384x12", bert(384, 12, 1536, 1), [][2]int{{2, 13}}, [2]int{}},
		{"bert-base 768x12", bert(768, 12, 3072, 1), [][2]int{{2, 3}}, [2]int{}},
		{"xlmr m3-like 8194 positions 16 heads", xlmr, [][2]int{{17, 13}, {1, 1}, {3, 2}}, [2]int{5, 7}},
		{"heads of 1", bert(12, 12, 20, 2), [][2]int{{17, 13}, {1, 1}}, [2]int{17, 13}},
		{"heads of 3", bert(15, 5, 7, 2), [][2]int{{5, 13}, {2, 3}}, [2]int{5, 13}},
		{"two labels", twoLabels, [][2]int{{17, 13}, {1, 2}}, [2]int{3, 9}},
	}
}

// Float64s downloads parameter p of m, widened to float64.
func Float64s(m *nn.Model, p *nn.Param) []float64 {
	v := make([]float32, p.Size())
	m.Backend().Download(v, p.W)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}
