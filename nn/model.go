package nn

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/nn/internal/tokrows"
)

// Model is a cross-encoder: encoder plus classification head, with its
// parameters in one device allocation.
type Model struct {
	Cfg Config
	be  backend.Backend
	// The optional extensions be implements (nil where it does not),
	// asserted once in wire: an assertion to an interface type can
	// allocate (the runtime fills each call site's cache at a random early
	// call).
	bg backend.BiasGemmer
	oc backend.OffsetCopier

	params  []*Param
	byName  map[string]*Param
	weights backend.Buf
	grads   backend.Buf
	// dropped is set once the float32 linear weights were discarded
	// (MarkLinearWeightsDropped); replicas share it.
	dropped *atomic.Bool

	emb    embeddings
	layers []layer
	head   head

	// Attention chooses between stored and tiled attention; the zero
	// value tiles long sequences only (AttentionAuto). Inference runners
	// (package nn/infer) take it from the model at each pass.
	Attention AttentionOptions

	// GradsReady, when set, is called during Backward each time a suffix
	// of the gradient allocation (Grads) is final, with the offset from
	// which every gradient is: after the head, after each layer from the
	// last to the first, and with 0 after the embeddings. The work that
	// computed them is queued on the backend, not necessarily done.
	// Data-parallel training starts reducing those gradients (on another
	// stream) while backward goes on. An error stops Backward.
	GradsReady func(off int) error

	acts acts
	// last is the pass of the last Forward, for Backward: its shape and
	// the very options it ran with.
	last run
}

type embeddings struct {
	word, pos, typ, lnW, lnB *Param
}

type layer struct {
	q, k, v, ao, inter, out Linear
	ln1W, ln1B, ln2W, ln2B  *Param
	// qkvW and qkvB span the adjacent query, key and value weights
	// (biases): [3H, H] and [3H]; kvW and kvB the key and value ones.
	qkvW, qkvB backend.Buf
	kvW, kvB   backend.Buf
	// qkvGW and qkvGB are the matching gradient views, nil when frozen.
	qkvGW, qkvGB backend.Buf
}

// head is BERT's pooler+classifier or XLM-R's classification head; both
// are dropout? → dense → tanh → dropout → out.
type head struct {
	dense, out  Linear
	dropoutIn   bool // XLM-R applies dropout to the <s> features first
	poolerNames bool
}

// run remembers the shape and options of the last forward pass.
type run struct {
	n, s int
	o    RunOptions
	ok   bool
}

// New allocates a model for cfg on be with all parameters zero. Fill them
// with InitRandom or by loading a checkpoint (package hfmodel).
func New(be backend.Backend, cfg Config) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid model config: %w", err)
	}
	m := &Model{Cfg: cfg, be: be, byName: map[string]*Param{}, dropped: new(atomic.Bool)}
	m.params = layout(cfg)
	total := 0
	for _, p := range m.params {
		total += p.Size()
	}
	w, err := be.Alloc(total)
	if err != nil {
		return nil, fmt.Errorf("allocate %d parameters: %w", total, err)
	}
	m.weights = w
	for _, p := range m.params {
		p.W = w.Slice(p.off, p.Size())
		m.byName[p.Name] = p
	}
	m.wire()
	return m, nil
}

// wire points the layer structs at their parameters.
func (m *Model) wire() {
	m.bg, _ = m.be.(backend.BiasGemmer)
	m.oc, _ = m.be.(backend.OffsetCopier)
	c := m.Cfg
	pre := c.Arch.Prefix()
	P := func(name string) *Param { return m.byName[name] }
	lin := func(name string, in, out int) Linear {
		return Linear{Name: name, In: in, Out: out, W: P(name + ".weight"), B: P(name + ".bias")}
	}
	m.emb = embeddings{
		word: P(pre + ".embeddings.word_embeddings.weight"),
		pos:  P(pre + ".embeddings.position_embeddings.weight"),
		typ:  P(pre + ".embeddings.token_type_embeddings.weight"),
		lnW:  P(pre + ".embeddings.LayerNorm.weight"),
		lnB:  P(pre + ".embeddings.LayerNorm.bias"),
	}
	H, I := c.Hidden, c.Intermediate
	m.layers = make([]layer, c.Layers)
	for l := range m.layers {
		p := fmt.Sprintf("%s.encoder.layer.%d.", pre, l)
		L := &m.layers[l]
		L.q = lin(p+"attention.self.query", H, H)
		L.k = lin(p+"attention.self.key", H, H)
		L.v = lin(p+"attention.self.value", H, H)
		L.ao = lin(p+"attention.output.dense", H, H)
		L.inter = lin(p+"intermediate.dense", H, I)
		L.out = lin(p+"output.dense", I, H)
		L.ln1W, L.ln1B = P(p+"attention.output.LayerNorm.weight"), P(p+"attention.output.LayerNorm.bias")
		L.ln2W, L.ln2B = P(p+"output.LayerNorm.weight"), P(p+"output.LayerNorm.bias")
		L.qkvW = m.weights.Slice(L.q.W.off, 3*H*H)
		L.qkvB = m.weights.Slice(L.q.B.off, 3*H)
		L.kvW = m.weights.Slice(L.k.W.off, 2*H*H)
		L.kvB = m.weights.Slice(L.k.B.off, 2*H)
	}
	if c.Arch == XLMRoberta {
		m.head = head{dense: lin("classifier.dense", H, H), out: lin("classifier.out_proj", H, c.NumLabels), dropoutIn: true}
	} else {
		m.head = head{dense: lin(pre+".pooler.dense", H, H), out: lin("classifier", H, c.NumLabels), poolerNames: true}
	}
	for i, l := range m.Linears() {
		l.site = uint64(1<<20 + i)
	}
}

// Backend returns the backend the model computes on.
func (m *Model) Backend() backend.Backend { return m.be }

// Params returns every parameter in allocation order.
func (m *Model) Params() []*Param { return m.params }

// Param returns the parameter with the given Hugging Face name, or nil.
func (m *Model) Param(name string) *Param { return m.byName[name] }

// Linears returns every Linear module of the model (the encoder's and the
// head's), by Hugging Face module name, in model order. Package lora
// attaches adapters to them.
func (m *Model) Linears() []*Linear {
	var ls []*Linear
	for l := range m.layers {
		L := &m.layers[l]
		ls = append(ls, &L.q, &L.k, &L.v, &L.ao, &L.inter, &L.out)
	}
	return append(ls, &m.head.dense, &m.head.out)
}

// HeadParams returns the parameters of the classification head that PEFT's
// SEQ_CLS task keeps trainable ("classifier" in modules_to_save): for BERT
// classifier.weight/bias (not the pooler), for XLM-R classifier.dense.* and
// classifier.out_proj.*.
func (m *Model) HeadParams() []*Param {
	if m.Cfg.Arch == XLMRoberta {
		return []*Param{m.head.dense.W, m.head.dense.B, m.head.out.W, m.head.out.B}
	}
	return []*Param{m.head.out.W, m.head.out.B}
}

// EnableGrads allocates gradient buffers for the parameters for which
// trainable returns true (all when trainable is nil) and frees the rest:
// frozen parameters get no gradient memory and no optimizer state.
func (m *Model) EnableGrads(trainable func(*Param) bool) error {
	if err := m.CheckLinearWeights(); err != nil {
		return err
	}
	if m.grads != nil {
		m.be.Free(m.grads)
		m.grads = nil
	}
	total := 0
	for _, p := range m.params {
		p.G = nil
		if trainable == nil || trainable(p) {
			total += p.Size()
		}
	}
	for l := range m.layers {
		L := &m.layers[l]
		q, k, v := trainable == nil || trainable(L.q.W), trainable == nil || trainable(L.k.W), trainable == nil || trainable(L.v.W)
		qb, kb, vb := trainable == nil || trainable(L.q.B), trainable == nil || trainable(L.k.B), trainable == nil || trainable(L.v.B)
		if q != k || k != v || qb != kb || kb != vb {
			return fmt.Errorf("layer %d: query, key and value must be all trainable or all frozen (they share one matrix product)", l)
		}
	}
	if total == 0 {
		return nil
	}
	g, err := m.be.Alloc(total)
	if err != nil {
		return fmt.Errorf("allocate %d gradients: %w", total, err)
	}
	m.grads = g
	off := 0
	for _, p := range m.params {
		if trainable == nil || trainable(p) {
			p.G = g.Slice(off, p.Size())
			p.goff = off
			off += p.Size()
		}
	}
	// Q, K and V are adjacent in parameter order, so are their gradients.
	H := m.Cfg.Hidden
	for l := range m.layers {
		L := &m.layers[l]
		L.qkvGW, L.qkvGB = nil, nil
		if L.q.W.G != nil {
			L.qkvGW = g.Slice(L.q.W.goff, 3*H*H)
		}
		if L.q.B.G != nil {
			L.qkvGB = g.Slice(L.q.B.goff, 3*H)
		}
	}
	return nil
}

// ZeroGrads sets every gradient to zero.
func (m *Model) ZeroGrads() {
	if m.grads != nil {
		m.be.Fill(m.grads, 0)
	}
}

// Batch is a padded batch of token sequences: N rows of S tokens, every
// array row-major [N*S]. Mask is 1 for a real token and 0 for padding.
// For reranking, row i is query i/G, candidate i%G, positive first.
type Batch struct {
	N, S     int
	InputIDs []int32
	TypeIDs  []int32
	Mask     []int32
}

// RowLen returns 1 + the position of row n's last real token, at least 1
// (position 0, the [CLS]/<s> the head reads, is always computed): the
// rows RunOptions.SkipPadding computes for it.
func (b *Batch) RowLen(n int) int {
	for s := b.S - 1; s > 0; s-- {
		if b.Mask[n*b.S+s] != 0 {
			return s + 1
		}
	}
	return 1
}

// Validate checks the batch against the model's config, naming the row
// and position of the first bad token.
func (b *Batch) Validate(c Config) error {
	T := b.N * b.S
	if b.N <= 0 || b.S <= 0 {
		return fmt.Errorf("batch shape %dx%d: need at least one row and one token", b.N, b.S)
	}
	if len(b.InputIDs) != T || len(b.TypeIDs) != T || len(b.Mask) != T {
		return fmt.Errorf("batch %dx%d: input_ids, token_type_ids and attention_mask must hold %d values, got %d, %d, %d",
			b.N, b.S, T, len(b.InputIDs), len(b.TypeIDs), len(b.Mask))
	}
	if b.S > c.MaxSequence() {
		return fmt.Errorf("sequence length %d exceeds the model's %d positions", b.S, c.MaxSequence())
	}
	for i := 0; i < T; i++ {
		if id := b.InputIDs[i]; id < 0 || int(id) >= c.VocabSize {
			return fmt.Errorf("row %d position %d: token id %d outside the vocabulary (size %d)", i/b.S, i%b.S, id, c.VocabSize)
		}
		if t := b.TypeIDs[i]; t < 0 || int(t) >= c.TypeVocab {
			return fmt.Errorf("row %d position %d: token type %d outside type_vocab_size %d", i/b.S, i%b.S, t, c.TypeVocab)
		}
	}
	return nil
}

// PositionIDs computes Hugging Face's position ids for a batch: 0..S-1 for
// BERT; for XLM-R, cumsum(ids != pad)·(ids != pad) + pad, so real tokens
// count from pad+1 and padding gets pad.
func PositionIDs(c Config, b *Batch) []int32 { return PositionIDsInto(nil, c, b) }

// PositionIDsInto is PositionIDs into dst's memory, reallocated only when
// its capacity is too small: steady-state passes allocate nothing.
func PositionIDsInto(dst []int32, c Config, b *Batch) []int32 {
	pos := grow(&dst, b.N*b.S)
	for n := 0; n < b.N; n++ {
		count := int32(0)
		for s := 0; s < b.S; s++ {
			i := n*b.S + s
			if c.Arch != XLMRoberta {
				pos[i] = int32(s)
				continue
			}
			if b.InputIDs[i] != int32(c.PadID) {
				count++
				pos[i] = count + int32(c.PadID)
			} else {
				pos[i] = int32(c.PadID)
			}
		}
	}
	return pos
}

// RunOptions select training or evaluation behaviour for one forward pass.
type RunOptions struct {
	// Train turns dropout on.
	Train bool
	// Seed determines every dropout mask of the pass (and of its backward
	// and any recomputation); use a new seed for each step.
	Seed uint64
	// SkipPadding packs each sequence's tokens up to its last real one
	// and runs the embeddings, projections, FFN and LayerNorms on those
	// rows only; attention stops at each sequence's last real key either
	// way. Logits and parameter gradients are those of the padded pass up
	// to float rounding (dropout draws other masks), but the hidden states
	// of the skipped padded positions are not computed: HiddenState
	// returns zeros there.
	SkipPadding bool
	// AllPositions runs the last layer at every position, so that
	// HiddenState(Layers) is complete. Without it, the last layer runs its
	// attention output projection, feed-forward and LayerNorms at position
	// 0 only: the [CLS]/<s> row the classification head reads is all that
	// reaches the logits. That skips about three quarters of the last
	// layer's work and changes the logits and gradients only by float
	// rounding (in training, the last layer's dropout draws other masks).
	AllPositions bool
	// GradientCheckpointing keeps only each layer's input during the
	// forward pass and recomputes the layer's activations during the
	// backward pass: activation memory for one layer instead of all, for
	// one more forward pass of compute. Losses and gradients are the same.
	GradientCheckpointing bool
}

// dropout site numbers, combined with the layer index into SubSeed.
const (
	siteEmb = iota
	siteAttnProbs
	siteAttnOut
	siteFFNOut
	siteHeadIn
	siteHeadMid
	sitesPerLayer = 8
)

func (m *Model) seed(o RunOptions, l, site int) uint64 {
	return backend.SubSeed(o.Seed, uint64((l+1)*sitesPerLayer+site))
}

// Forward runs the model on a batch and returns the logits, [N*NumLabels].
// The activations stay in the model for Backward, whether or not one
// follows: Forward is the training path. Scoring runs on an inference
// runner instead (package nn/infer), which keeps none. The logits are the
// model's memory, reused by the next Forward: copy them to keep them
// longer (steady-state passes allocate nothing).
func (m *Model) Forward(b *Batch, o RunOptions) ([]float32, error) {
	m.last.ok = false
	if err := m.CheckLinearWeights(); err != nil {
		return nil, err
	}
	if err := b.Validate(m.Cfg); err != nil {
		return nil, err
	}
	a := &m.acts
	a.hostPos = PositionIDsInto(a.hostPos, m.Cfg, b)
	pos := a.hostPos
	for i, p := range pos {
		if int(p) >= m.Cfg.MaxPositions {
			return nil, fmt.Errorf("row %d: position id %d exceeds max_position_embeddings %d", i/b.S, p, m.Cfg.MaxPositions)
		}
	}
	be := m.be
	rows := b.N * b.S
	a.seqOff, a.seqLen = a.seqOff[:0], a.seqLen[:0]
	for n := 0; n < b.N; n++ {
		l := b.RowLen(n)
		if !o.SkipPadding {
			l = b.S
		}
		a.seqOff = append(a.seqOff, 0)
		a.seqLen = append(a.seqLen, l)
	}
	packed := false
	if o.SkipPadding {
		rows = 0
		for n, l := range a.seqLen {
			a.seqOff[n] = rows
			rows += l
		}
		packed = rows < b.N*b.S
	}
	if !packed {
		rows = b.N * b.S
		for n := range a.seqLen {
			a.seqOff[n], a.seqLen[n] = n*b.S, b.S
		}
	}
	if err := a.ensure(m, b.N, b.S, rows, packed, o.GradientCheckpointing); err != nil {
		return nil, err
	}
	be.UploadInt(a.mask, b.Mask)
	if packed {
		pk := func(v []int32) []int32 { return tokrows.Pack(&a.hostPacked, v, b.S, a.seqLen) }
		be.UploadInt(a.ids, pk(b.InputIDs))
		be.UploadInt(a.typ, pk(b.TypeIDs))
		be.UploadInt(a.pos, pk(pos))
	} else {
		be.UploadInt(a.ids, b.InputIDs)
		be.UploadInt(a.typ, b.TypeIDs)
		be.UploadInt(a.pos, pos)
	}
	m.last = run{n: b.N, s: b.S, o: o}

	if err := m.embForward(o); err != nil {
		return nil, err
	}
	for l := range m.layers {
		if err := m.layerForward(l, o); err != nil {
			return nil, err
		}
	}
	if err := m.headForward(o); err != nil {
		return nil, err
	}
	logits := grow(&a.hostLogits, b.N*m.Cfg.NumLabels)
	be.Download(logits, a.logits)
	if err := be.Sync(); err != nil {
		return nil, fmt.Errorf("forward on %s: %w", be.Name(), err)
	}
	m.last.ok = true
	return logits, nil
}

// Backward takes d(loss)/d(logits) for the batch of the last Forward and
// accumulates the gradient of every trainable parameter.
func (m *Model) Backward(dlogits []float32) error {
	if !m.last.ok {
		return errors.New("backward without a successful forward pass")
	}
	if m.grads == nil && !m.hasAdapters() {
		return errors.New("backward needs gradient buffers: call EnableGrads first")
	}
	n := m.last.n * m.Cfg.NumLabels
	if len(dlogits) != n {
		return fmt.Errorf("backward: %d logit gradients for %d logits", len(dlogits), n)
	}
	o := m.last.o // the forward's options, as they were
	m.be.Upload(m.acts.dlogits, dlogits)
	if err := m.headBackward(o); err != nil {
		return err
	}
	const embParams, layerParams = 5, 16 // see layout
	if err := m.gradsReady(embParams + layerParams*len(m.layers)); err != nil {
		return err
	}
	for l := len(m.layers) - 1; l >= 0; l-- {
		if o.GradientCheckpointing {
			if err := m.layerForward(l, o); err != nil {
				return err
			}
		}
		if err := m.layerBackward(l, o); err != nil {
			return err
		}
		if err := m.gradsReady(embParams + layerParams*l); err != nil {
			return err
		}
	}
	m.embBackward(o)
	if err := m.gradsReady(0); err != nil {
		return err
	}
	if err := m.be.Sync(); err != nil {
		return fmt.Errorf("backward on %s: %w", m.be.Name(), err)
	}
	return nil
}

// Grads is the allocation holding every parameter gradient (nil before
// EnableGrads); Param.G are views into it, in parameter order.
func (m *Model) Grads() backend.Buf { return m.grads }

// gradsReady calls GradsReady with the offset in Grads of the first
// trainable parameter from index first on (the allocation's length when
// none is).
func (m *Model) gradsReady(first int) error {
	if m.GradsReady == nil || m.grads == nil {
		return nil
	}
	off := m.grads.Len()
	for _, p := range m.params[first:] {
		if p.G != nil {
			off = p.goff
			break
		}
	}
	return m.GradsReady(off)
}

func (m *Model) hasAdapters() bool {
	for l := range m.layers {
		L := &m.layers[l]
		for _, lin := range [...]*Linear{&L.q, &L.k, &L.v, &L.ao, &L.inter, &L.out} {
			if lin.Adapter != nil {
				return true
			}
		}
	}
	return m.head.dense.Adapter != nil || m.head.out.Adapter != nil
}

// grow returns *s resized to n values, reallocated only when its capacity
// is too small (the values are not cleared).
func grow[T any](s *[]T, n int) []T {
	if cap(*s) < n {
		*s = make([]T, n)
	}
	*s = (*s)[:n]
	return *s
}

// HiddenState returns hidden state k of the last forward pass, [N*S*H]:
// k = 0 is the embedding output, k = l+1 the output of layer l (Hugging
// Face's output_hidden_states order). Positions a SkipPadding pass did
// not compute are zero, and so are those of the last hidden state that a
// pass without RunOptions.AllPositions did not compute (all but 0).
func (m *Model) HiddenState(k int) []float32 {
	a := &m.acts
	H := m.Cfg.Hidden
	v := make([]float32, a.n*a.s*H)
	if k == len(m.layers) && !m.last.o.AllPositions {
		p := make([]float32, a.n*H)
		m.be.Download(p, a.xs[k].Slice(0, a.n*H))
		for n := 0; n < a.n; n++ {
			copy(v[n*a.s*H:n*a.s*H+H], p[n*H:(n+1)*H])
		}
		return v
	}
	if !a.packed {
		m.be.Download(v, a.xs[k])
		return v
	}
	p := make([]float32, a.rows*H)
	m.be.Download(p, a.xs[k])
	for n, l := range a.seqLen {
		copy(v[n*a.s*H:(n*a.s+l)*H], p[a.seqOff[n]*H:(a.seqOff[n]+l)*H])
	}
	return v
}

// Pooled returns the input of the head's last Linear for the last forward
// pass, [N*H]: BERT's pooler output, or XLM-R's tanh(dense(<s>)).
func (m *Model) Pooled() []float32 {
	v := make([]float32, m.acts.h.Len())
	m.be.Download(v, m.acts.h)
	return v
}

// AttentionSave returns what the backend kept of layer l's attention in
// the last forward pass (the probabilities, on the CPU backend, unless the
// pass tiled its attention: then each query row's log-sum-exp). Under
// gradient checkpointing only the last recomputed layer is kept.
func (m *Model) AttentionSave(l int) backend.Buf { return m.acts.layer(l).save }

// ErrLinearWeightsDropped is the error of the paths that need the float32
// linear weights of a model whose scorer dropped them.
var ErrLinearWeightsDropped = errors.New("the float32 linear weights were dropped for scoring (the scorer keeps only its packed or int8 copy): training, saving, adapters and plain float32 passes need them; load the model again with crossencoder.Options.KeepFloat32")

// MarkLinearWeightsDropped records that the float32 weights of the
// encoder layers' linear layers (query-key-value, attention output,
// intermediate, output), and of the classification head's with packed
// weights, were discarded, their memory given back (backend.Discarder)
// or overwritten, because an int8 or packed copy is all a scorer reads
// (nn/infer Runner.QuantizeWeightsDropping, PackWeightsDropping). From
// then on Forward, EnableGrads and every replica (Share) refuse with
// ErrLinearWeightsDropped, as do saving (hfmodel.Save) and adapters
// (package lora). It cannot be undone.
func (m *Model) MarkLinearWeightsDropped() { m.dropped.Store(true) }

// LinearWeightsDropped reports whether MarkLinearWeightsDropped was called
// on the model or on one it shares weights with.
func (m *Model) LinearWeightsDropped() bool { return m.dropped != nil && m.dropped.Load() }

// CheckLinearWeights returns ErrLinearWeightsDropped when the float32
// linear weights were dropped, nil otherwise.
func (m *Model) CheckLinearWeights() error {
	if m.LinearWeightsDropped() {
		return ErrLinearWeightsDropped
	}
	return nil
}
