package infer

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/rerank-go/rerank/backend"
	"github.com/rerank-go/rerank/nn"
)

// DefaultPackBudget is the packed-weights budget (see Runner.PackWeights)
// that crossencoder and rerank bench use unless told otherwise, in bytes:
// all of a MiniLM-sized model (about 42 MiB for MiniLM-L6, 84 MiB for
// L12), the head, the last layer and a few others of a base-sized one.
const DefaultPackBudget = 128 << 20

// packed holds the weights of the linear layers packed for the backend's
// products (or quantized), nil where a weight is not.
type packed struct {
	layers             []packedLayer
	headDense, headOut backend.Buf
}

// packedLayer is one encoder layer's: the fused query-key-value weight
// whole, its query and key-value rows apart (the last layer's, for
// first-query attention), and the other three.
type packedLayer struct {
	qkv, q, kv     backend.Buf
	ao, inter, out backend.Buf
}

// packItem is one weight to pack: w, n×k, and where its copy goes.
type packItem struct {
	w    backend.Buf
	n, k int
	at   func(pk *packed) *backend.Buf
	head bool // the classification head's (QuantizeWeights leaves it float32)
	// lastQKV: a part of the last layer's query-key-value weight, which
	// three items read.
	lastQKV bool
	// params are the parameters w spans (Int8Weights quantizes the item
	// once they are all loaded).
	params []*nn.Param
	// fused: the last layer's fused query-key-value weight, which only a
	// pass without first-query attention reads (its two other items, q
	// and kv, cover the same values).
	fused bool
}

// packItems lists the weights of the model's linear layers in the order
// PackWeights packs them: the head's and the last layer's first (their
// products have one row per sequence, so packing their weights at each
// product costs most next to the product), then the other layers in
// order, then the last layer's fused query-key-value weight, which only
// a pass without first-query attention reads.
func (r *Runner) packItems() []packItem {
	H := r.m.Cfg.Hidden
	hd := r.m.Head()
	last := r.m.Cfg.Layers - 1
	layer := func(l int) []packItem {
		L := r.m.Layer(l)
		return []packItem{
			{w: L.AttnOut.W.W, n: H, k: H, at: func(pk *packed) *backend.Buf { return &pk.layers[l].ao }, params: []*nn.Param{L.AttnOut.W}},
			{w: L.Inter.W.W, n: L.Inter.Out, k: L.Inter.In, at: func(pk *packed) *backend.Buf { return &pk.layers[l].inter }, params: []*nn.Param{L.Inter.W}},
			{w: L.Out.W.W, n: L.Out.Out, k: L.Out.In, at: func(pk *packed) *backend.Buf { return &pk.layers[l].out }, params: []*nn.Param{L.Out.W}},
		}
	}
	qkv := func(l int) packItem {
		L := r.m.Layer(l)
		return packItem{w: L.QKVW, n: 3 * H, k: H, at: func(pk *packed) *backend.Buf { return &pk.layers[l].qkv }, params: []*nn.Param{L.Q.W, L.K.W, L.V.W}}
	}
	L := r.m.Layer(last)
	items := []packItem{
		{w: hd.Dense.W.W, n: hd.Dense.Out, k: hd.Dense.In, at: func(pk *packed) *backend.Buf { return &pk.headDense }, head: true, params: []*nn.Param{hd.Dense.W}},
		{w: hd.Out.W.W, n: hd.Out.Out, k: hd.Out.In, at: func(pk *packed) *backend.Buf { return &pk.headOut }, head: true, params: []*nn.Param{hd.Out.W}},
		{w: L.QKVW.Slice(0, H*H), n: H, k: H, at: func(pk *packed) *backend.Buf { return &pk.layers[last].q }, lastQKV: true, params: []*nn.Param{L.Q.W}},
		{w: L.KVW, n: 2 * H, k: H, at: func(pk *packed) *backend.Buf { return &pk.layers[last].kv }, lastQKV: true, params: []*nn.Param{L.K.W, L.V.W}},
	}
	items = append(items, layer(last)...)
	for l := 0; l < last; l++ {
		items = append(items, qkv(l))
		items = append(items, layer(l)...)
	}
	it := qkv(last)
	it.lastQKV, it.fused = true, true
	return append(items, it)
}

// PackWeights packs the weights of the model's linear layers, as they are
// now, into the layout the backend's products read (backend.WeightPacker),
// once for all lanes: the passes that follow read the packed copy instead
// of packing each weight again in every product of every lane. The copy
// takes up to budget bytes (any amount for a negative budget), as much
// memory as the weights it covers: first the head's and the last layer's,
// whose products have one row per sequence and so cost little next to
// packing their weights, then the other layers in order.
//
// Until release is called the model's weights must not change: the
// passes would go on with the packed copy of the old ones. release frees
// the copy; calling it again does nothing. On a backend that does not
// pack, or with a single lane, PackWeights packs nothing.
func (r *Runner) PackWeights(budget int64) (release func(), err error) {
	if err := r.m.CheckLinearWeights(); err != nil {
		return nil, err
	}
	if r.holding {
		return nil, errHolding
	}
	var items []packItem
	var bufs []backend.Buf
	var total int64
	if wp, ok := r.packer(); ok && budget != 0 {
		for _, it := range r.packItems() {
			size := int64(wp.PackedSize(it.n, it.k)) * 4
			if budget >= 0 && size > budget {
				break
			}
			budget -= size
			buf, err := r.lanes[0].be.Alloc(int(size / 4))
			if err != nil {
				for _, b := range bufs {
					r.lanes[0].be.Free(b)
				}
				return nil, fmt.Errorf("pack weights: %w", err)
			}
			items, bufs, total = append(items, it), append(bufs, buf), total+size
		}
	}
	// Each lane packs every len(lanes)-th weight, all lanes at once.
	var wg sync.WaitGroup
	for i, p := range r.lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < len(items); j += len(r.lanes) {
				p.wp.PackWeight(bufs[j], items[j].w, items[j].k, items[j].n, items[j].k)
			}
		}()
	}
	wg.Wait()
	r.hold(items, bufs, total)
	// Packed weights serve the lanes; a pass on the model's backend whole
	// packs as it goes.
	for _, p := range r.lanes {
		p.pk = &r.pk
	}
	var be backend.Backend
	if len(r.lanes) > 0 {
		be = r.lanes[0].be
	}
	return r.releaser(bufs, r.lanes, be), nil
}

// PackWeightsDropping is PackWeights for a process that only scores, with
// one copy of each weight, as ONNX Runtime holds a model's: every linear
// weight the passes read (the encoder layers' and the classification
// head's) is packed, whatever the size, and takes the float32 weight's
// place. A packed weight that fits in the float32 one's memory (on the
// CPU: an output width that is a multiple of the kernel's panel, 32 or 16
// columns, as in every BERT and XLM-R layer) is written over it; a larger
// one (the head's output row) gets memory of its own and the float32
// pages go back to the system (backend.Discarder). No copy of the model
// is made, so the peak is the float32 model's and one weight's scratch
// per lane. Every pass then reads the packed copy: on the lanes and on
// the model's backend whole (a single sequence), the last layer's
// first-query products and the head. The logits keep their bits
// (GemmBiasPacked has GemmBias's).
//
// It marks the model (and every model sharing its weights) with
// nn.Model.MarkLinearWeightsDropped, for good, as QuantizeWeightsDropping
// does: after it, training, saving, adapters, PackWeights,
// QuantizeWeights and passes without the packed copy (after release)
// fail with nn.ErrLinearWeightsDropped. The embeddings, biases and
// LayerNorms stay as they are.
//
// Where one copy cannot serve every pass it is PackWeights(-1), which
// keeps the float32 weights and marks nothing (DroppedBytes is 0): on a
// backend that does not pack (the CPU's openblas and go routes, CUDA;
// PackWeights then packs nothing either), whose model backend and lanes
// pack differently, or without first-query attention, and on a model
// with adapters.
func (r *Runner) PackWeightsDropping() (release func(), err error) {
	if err := r.m.CheckLinearWeights(); err != nil {
		return nil, err
	}
	if r.holding {
		return nil, errHolding
	}
	targets := append([]*pass{r.whole}, r.lanes...)
	if !r.packsInPlace(targets) {
		return r.PackWeights(-1)
	}
	be, wp := r.whole.be, r.whole.wp
	var items []packItem
	for _, it := range r.packItems() {
		if !it.fused {
			items = append(items, it)
		}
	}
	// Each lane (the model's backend where there are none) packs every
	// len(packers)-th weight, all at once, through a scratch buffer of
	// its own: a packed weight that fits is copied over its float32
	// original, the others go to buffers of their own. Everything is
	// allocated before the first weight is overwritten, so that a failed
	// allocation leaves the model as it was.
	packers := r.lanes
	if len(packers) == 0 {
		packers = []*pass{r.whole}
	}
	sizes := make([]int, len(items))
	bufs := make([]backend.Buf, len(items))
	var own []backend.Buf
	scratch := make([]int, len(packers))
	var total int64
	for j, it := range items {
		sizes[j] = wp.PackedSize(it.n, it.k)
		total += int64(sizes[j]) * 4
		if sizes[j] <= it.w.Len() {
			scratch[j%len(packers)] = max(scratch[j%len(packers)], sizes[j])
			continue
		}
		if bufs[j], err = be.Alloc(sizes[j]); err != nil {
			break
		}
		own = append(own, bufs[j])
	}
	tmp := make([]backend.Buf, len(packers))
	for i, n := range scratch {
		if err != nil || n == 0 {
			continue
		}
		if tmp[i], err = packers[i].be.Alloc(n); err != nil {
			break
		}
	}
	if err != nil {
		for _, b := range own {
			be.Free(b)
		}
		for i, b := range tmp {
			if b != nil {
				packers[i].be.Free(b)
			}
		}
		return nil, fmt.Errorf("pack weights: %w", err)
	}
	ds, _ := be.(backend.Discarder)
	var dropped atomic.Int64
	var wg sync.WaitGroup
	for i, p := range packers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; j < len(items); j += len(packers) {
				it, n := items[j], sizes[j]
				if bufs[j] != nil {
					p.wp.PackWeight(bufs[j], it.w, it.k, it.n, it.k)
					if ds != nil {
						dropped.Add(ds.Discard(it.w))
					}
					continue
				}
				bufs[j] = packOver(p, tmp[i], it.w, it.n, it.k, n)
				dropped.Add(int64(it.w.Len()) * 4)
			}
			if tmp[i] != nil {
				// The scratch is garbage now: its pages go back at once.
				if d, ok := p.be.(backend.Discarder); ok {
					d.Discard(tmp[i])
				}
				p.be.Free(tmp[i])
			}
		}()
	}
	wg.Wait()
	r.m.MarkLinearWeightsDropped()
	r.hold(items, bufs, total)
	r.packedAll, r.dropped = true, dropped.Load()
	for _, p := range targets {
		p.pk = &r.pk
	}
	return r.releaser(own, targets, be), nil
}

// packOver packs the n×k weight w, size values packed, through tmp into
// w's own memory, and returns the packed view of it: a weight packed in
// place, one at a time (a loader could pack each as it reads it).
func packOver(p *pass, tmp, w backend.Buf, n, k, size int) backend.Buf {
	p.wp.PackWeight(tmp, w, k, n, k)
	pw := w.Slice(0, size)
	p.be.Copy2D(pw, size, tmp, size, 1, size)
	return pw
}

// packsInPlace reports whether PackWeightsDropping can give every pass
// of targets one packed copy: the passes pack, all in the model
// backend's layout (taken as the same where the sizes agree), with
// first-query attention, and the model has no adapters (whose passes
// read the last layer's fused weight, which the copy leaves out).
func (r *Runner) packsInPlace(targets []*pass) bool {
	H := r.m.Cfg.Hidden
	size := 0
	if r.whole.wp != nil {
		size = r.whole.wp.PackedSize(H, H)
	}
	if size == 0 || r.m.HasAdapters() {
		return false
	}
	for _, p := range targets {
		if p.wp == nil || p.fq == nil || p.wp.PackedSize(H, H) != size {
			return false
		}
	}
	return true
}

// QuantizeWeights quantizes the weights of the encoder layers' linear
// layers (query-key-value, attention output, intermediate, output) to
// int8, once, for the passes that follow (backend.Quantizer): their
// products then quantize the activations per row and sum in int32, as
// ONNX Runtime's dynamic quantization does. Embeddings, attention,
// softmax, LayerNorm and the classification head stay float32. Scores
// move by the quantization error: use it for scoring, never training.
//
// It takes the place of PackWeights (release that first), and the same
// rules hold: the weights must not change until release is called, which
// frees the int8 copy. It fails on a backend without int8 products.
func (r *Runner) QuantizeWeights() (release func(), err error) {
	return r.quantize(false)
}

// QuantizeWeightsDropping is QuantizeWeights for a process that only
// scores: each float32 weight it quantizes is dropped once its int8 copy
// is written, its memory given back to the system (backend.Discarder),
// so that one copy of each weight is held, in the form the products
// read, as ONNX Runtime holds a quantized model's; the peak stays near
// the float32 model's size. It marks the model (and every model sharing
// its weights) with nn.Model.MarkLinearWeightsDropped, for good: after
// it, training, saving, adapters, PackWeights, QuantizeWeights and
// passes without the int8 copy (after release) fail with
// nn.ErrLinearWeightsDropped. The embeddings and the classification head
// stay float32. On a backend that cannot discard memory it drops nothing
// and marks nothing (it is then QuantizeWeights).
func (r *Runner) QuantizeWeightsDropping() (release func(), err error) {
	return r.quantize(true)
}

// DroppedBytes returns the bytes of float32 weights that
// QuantizeWeightsDropping gave back to the system, or that
// PackWeightsDropping gave back or wrote the packed copy over; 0 when
// neither dropped any.
func (r *Runner) DroppedBytes() int64 { return r.dropped }

// quantize is QuantizeWeights, dropping the float32 weights with drop.
func (r *Runner) quantize(drop bool) (release func(), err error) {
	if err := r.m.CheckLinearWeights(); err != nil {
		return nil, err
	}
	if r.holding {
		return nil, errHolding
	}
	// The whole-batch pass too: a pass of one sequence runs on it.
	targets := append([]*pass{r.whole}, r.lanes...)
	be := r.whole.be
	qz, ok := be.(backend.Quantizer)
	if !ok {
		return nil, fmt.Errorf("int8: the %s backend has no int8 products", be.Name())
	}
	items := r.encoderItems()
	bufs, total, err := allocQuantized(be, qz, items)
	if err != nil {
		return nil, err
	}
	// With drop, each weight's float32 memory goes once its int8 copy is
	// written, so that the two are never held whole at once, but the
	// last layer's query-key-value weight only at the end: three items
	// (q, kv, qkv) read it.
	ds, _ := be.(backend.Discarder)
	drop = drop && ds != nil
	var dropped atomic.Int64
	lastQKV := r.m.Layer(r.m.Cfg.Layers - 1).QKVW
	// Each target quantizes every len(targets)-th weight, all at once.
	var wg sync.WaitGroup
	for i, p := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			q := p.be.(backend.Quantizer)
			for j := i; j < len(items); j += len(targets) {
				q.QuantizeWeight(bufs[j], items[j].w, items[j].k, items[j].n, items[j].k)
				if drop && !items[j].lastQKV {
					dropped.Add(ds.Discard(items[j].w))
				}
			}
		}()
	}
	wg.Wait()
	if drop {
		dropped.Add(ds.Discard(lastQKV))
		r.m.MarkLinearWeightsDropped()
	}
	r.hold(items, bufs, total)
	r.quantized, r.dropped = true, dropped.Load()
	for _, p := range targets {
		p.pk, p.qz = &r.pk, p.be.(backend.Quantizer)
	}
	return r.releaser(bufs, targets, be), nil
}

// errHolding refuses a second copy of the weights while one is held.
var errHolding = errors.New("weights already packed or quantized: call the release function of the last PackWeights or QuantizeWeights first")

// encoderItems is packItems without the classification head's: the
// weights QuantizeWeights and Int8Weights quantize.
func (r *Runner) encoderItems() []packItem {
	var items []packItem
	for _, it := range r.packItems() {
		if !it.head {
			items = append(items, it)
		}
	}
	return items
}

// allocQuantized allocates on be the int8 copies of items, in qz's
// layout, and returns them with their size in bytes; on failure it frees
// those it allocated.
func allocQuantized(be backend.Backend, qz backend.Quantizer, items []packItem) ([]backend.Buf, int64, error) {
	bufs := make([]backend.Buf, len(items))
	var total int64
	for i, it := range items {
		size := qz.QuantizedSize(it.n, it.k)
		buf, err := be.Alloc(size)
		if err != nil {
			for _, b := range bufs[:i] {
				be.Free(b)
			}
			return nil, 0, fmt.Errorf("int8: %w", err)
		}
		bufs[i], total = buf, total+int64(size)*4
	}
	return bufs, total, nil
}

// hold records bufs as the copies of items.
func (r *Runner) hold(items []packItem, bufs []backend.Buf, total int64) {
	r.pk = packed{layers: make([]packedLayer, r.m.Cfg.Layers)}
	for j, it := range items {
		*it.at(&r.pk) = bufs[j]
	}
	r.holding, r.bytes = true, total
}

// releaser returns the release function of a PackWeights,
// PackWeightsDropping or QuantizeWeights: once, it detaches the copies
// from the passes that read them and frees bufs, the ones that have
// memory of their own, on be, the backend that allocated them.
func (r *Runner) releaser(bufs []backend.Buf, users []*pass, be backend.Backend) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, p := range users {
				p.pk, p.qz = nil, nil
			}
			r.pk = packed{}
			for _, b := range bufs {
				be.Free(b)
			}
			r.holding, r.bytes, r.quantized, r.packedAll = false, 0, false, false
		})
	}
}

// packer returns the lanes' WeightPacker, if they have one that packs.
func (r *Runner) packer() (backend.WeightPacker, bool) {
	if len(r.lanes) == 0 {
		return nil, false
	}
	wp := r.lanes[0].wp
	if wp == nil || wp.PackedSize(r.m.Cfg.Hidden, r.m.Cfg.Hidden) == 0 {
		return nil, false
	}
	return wp, true
}
