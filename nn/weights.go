package nn

import "github.com/rerank-go/rerank/backend"

// The views below expose a model's parameters module by module, for code
// that computes with them outside this package: the inference runner
// (package nn/infer) reads the weights in place through them. They point
// at the model's own Linears and Params, so later changes (an adapter
// attached, merged or detached; a head replaced by Share) show through.

// EmbeddingWeights are the parameters of the embeddings.
type EmbeddingWeights struct {
	Word, Pos, Type *Param
	LNW, LNB        *Param
}

// LayerWeights are the parameters of encoder layer l.
type LayerWeights struct {
	Q, K, V, AttnOut, Inter, Out *Linear
	LN1W, LN1B, LN2W, LN2B       *Param
	// QKVW and QKVB span the adjacent query, key and value weights
	// ([3H, H]) and biases ([3H]): one product computes all three. KVW
	// and KVB span the key and value ones ([2H, H], [2H]).
	QKVW, QKVB backend.Buf
	KVW, KVB   backend.Buf
}

// HeadWeights are the classification head's: dense → tanh → out, with
// DropoutIn telling that XLM-R applies dropout to the <s> features first.
type HeadWeights struct {
	Dense, Out *Linear
	DropoutIn  bool
}

// Embeddings returns the embeddings' parameters.
func (m *Model) Embeddings() EmbeddingWeights {
	e := &m.emb
	return EmbeddingWeights{Word: e.word, Pos: e.pos, Type: e.typ, LNW: e.lnW, LNB: e.lnB}
}

// Layer returns the parameters of encoder layer l (0 ≤ l < Cfg.Layers).
func (m *Model) Layer(l int) LayerWeights {
	L := &m.layers[l]
	return LayerWeights{Q: &L.q, K: &L.k, V: &L.v, AttnOut: &L.ao, Inter: &L.inter, Out: &L.out,
		LN1W: L.ln1W, LN1B: L.ln1B, LN2W: L.ln2W, LN2B: L.ln2B,
		QKVW: L.qkvW, QKVB: L.qkvB, KVW: L.kvW, KVB: L.kvB}
}

// Head returns the classification head's parameters.
func (m *Model) Head() HeadWeights {
	return HeadWeights{Dense: &m.head.dense, Out: &m.head.out, DropoutIn: m.head.dropoutIn}
}

// HasAdapters reports whether any Linear of the model has an Adapter.
func (m *Model) HasAdapters() bool { return m.hasAdapters() }
