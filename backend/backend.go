// Package backend defines the one seam between the Go model code and the
// math: a Backend owns device memory and runs every operation the layers
// need. The CPU implementation (package backend/cpu) is always built and is
// the reference; the CUDA implementation (package cuda, build tag "cuda")
// implements the same interface on GPU memory.
//
// Conventions shared by every operation:
//   - Matrices are row-major. A leading dimension (ld) is the distance, in
//     elements, between the starts of two consecutive rows.
//   - Operations never return errors. A backend that can fail (a GPU
//     launch, an out-of-memory) records the first failure, skips the work
//     that follows, and reports it from Sync, naming the operation.
//   - Output buffers are overwritten unless the method says it accumulates.
//     Gradient outputs of parameters always accumulate (+=), so that
//     gradient accumulation over micro-batches needs no extra copies.
//   - A nil Buf passed for an optional gradient output means "not needed"
//     (a frozen parameter): the backend skips that work.
package backend

// Buf is a view of device memory holding float32 values.
type Buf interface {
	// Len is the number of float32 values in the view.
	Len() int
	// Slice returns the view of n values starting at off.
	Slice(off, n int) Buf
}

// IntBuf is a view of device memory holding int32 values (token ids,
// position ids, attention masks).
type IntBuf interface {
	Len() int
	Slice(off, n int) IntBuf
}

// Attn describes one multi-head self-attention call.
//
// The input is the fused projection QKV of shape [N*S, 3*H] (H =
// Heads*HeadDim): columns [0,H) hold Q, [H,2H) hold K and [2H,3H) hold V;
// head h uses columns h*HeadDim ... h*HeadDim+HeadDim-1 of each. The output
// context has shape [N*S, H] with the heads concatenated in the same column
// layout. Mask has N*S entries: 1 for a real token, 0 for padding; padded
// keys get exactly zero probability (Hugging Face adds float32's minimum to
// their scores), padded queries are computed like any other row.
type Attn struct {
	N, S, Heads, HeadDim int
	// Dropout on the attention probabilities (training only; 0 = off).
	// The mask is a pure function of Seed and the element index, so the
	// backward pass regenerates it instead of storing it.
	Dropout float32
	Seed    uint64
	// Tiled asks for attention in blocks of queries and keys with an
	// online softmax (flash-style), never holding a sequence's S×S
	// scores: Attention keeps only each query row's log-sum-exp in save
	// (N·Heads·S values) and AttentionBackward recomputes the
	// probabilities block by block from it. Results equal the untiled
	// ones up to float rounding, dropout masks included. A backend whose
	// attention always works this way (CUDA) ignores it.
	Tiled bool
	// Tile is the block length of tiled attention, 0 for the backend's
	// choice. Tests set it small so that short sequences span several
	// blocks.
	Tile int
}

// H is the model width, Heads*HeadDim.
func (a Attn) H() int { return a.Heads * a.HeadDim }

// AdamWStep holds the hyper-parameters of one AdamW update, exactly as
// torch.optim.AdamW applies them (decoupled weight decay first).
type AdamWStep struct {
	LR, Beta1, Beta2, Eps, WeightDecay float32
	// Step is the 1-based step number used for bias correction.
	Step int
}

// Backend runs the operations of the model on one device.
type Backend interface {
	// Name identifies the backend ("cpu", "cuda:0").
	Name() string

	// Alloc returns n zeroed float32 values of device memory.
	Alloc(n int) (Buf, error)
	// AllocInt returns n zeroed int32 values of device memory.
	AllocInt(n int) (IntBuf, error)
	// Free releases a buffer returned by Alloc or AllocInt (not a slice of
	// one). Freeing is optional on the CPU.
	Free(b any)

	// Upload copies len(src) values from host memory to the start of dst.
	Upload(dst Buf, src []float32)
	// Download copies len(dst) values from the start of src to host memory.
	Download(dst []float32, src Buf)
	// UploadInt copies host int32 values to the start of dst.
	UploadInt(dst IntBuf, src []int32)
	// Fill sets every value of dst to v.
	Fill(dst Buf, v float32)
	// Copy2D copies a rows×cols block: dst[r*ldd+c] = src[r*lds+c].
	Copy2D(dst Buf, ldd int, src Buf, lds int, rows, cols int)

	// Gemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices,
	// with op(X) = Xᵀ when the flag is set. op(A) is m×k, op(B) is k×n and
	// C is m×n. With beta = 0, C is not read.
	Gemm(transA, transB bool, m, n, k int, alpha float32, a Buf, lda int, b Buf, ldb int, beta float32, c Buf, ldc int)

	// AddBias adds bias[c] to y[r*cols+c] for every row r.
	AddBias(y, bias Buf, rows, cols int)
	// BiasGrad accumulates the column sums of dy: db[c] += Σ_r dy[r*cols+c].
	BiasGrad(db, dy Buf, rows, cols int)
	// Add sets dst = a + b elementwise; dst may alias a or b.
	Add(dst, a, b Buf)
	// Axpy sets y += alpha·x elementwise.
	Axpy(alpha float32, x, y Buf)
	// Scale multiplies every value of x by alpha.
	Scale(x Buf, alpha float32)

	// Embed gathers rows: out[i,:] = table[ids[i],:] (or += with
	// accumulate) for i < ids.Len(); dim is the row width.
	Embed(out, table Buf, ids IntBuf, dim int, accumulate bool)
	// EmbedBackward scatters rows: dtable[ids[i],:] += dout[i,:], except
	// for rows whose id equals skip (a padding_idx; pass -1 for none).
	EmbedBackward(dtable, dout Buf, ids IntBuf, dim int, skip int32)

	// LayerNorm normalises each row of x over dim values (biased
	// variance): out = (x-mean)·rstd·gamma + beta, storing mean and rstd
	// (one value per row) for the backward pass.
	LayerNorm(out, mean, rstd, x, gamma, beta Buf, rows, dim int, eps float32)
	// LayerNormBackward sets dx from dout and accumulates dgamma and
	// dbeta (either may be nil). dx may alias dout.
	LayerNormBackward(dx, dgamma, dbeta, dout, x, mean, rstd, gamma Buf, rows, dim int)

	// Gelu sets out = x·Φ(x), the exact (erf) GELU; out may alias x.
	Gelu(out, x Buf)
	// GeluBackward sets dx = dout·gelu'(x); dx may alias dout.
	GeluBackward(dx, dout, x Buf)
	// Tanh sets out = tanh(x); out may alias x.
	Tanh(out, x Buf)
	// TanhBackward sets dx = dout·(1-y²) where y = tanh(x); dx may alias dout.
	TanhBackward(dx, dout, y Buf)

	// Dropout sets out = x·keep/(1-p), where keep for element i is a pure
	// function of (seed, i) drawn with probability 1-p. out may alias x.
	Dropout(out, x Buf, p float32, seed uint64)
	// DropoutBackward sets dx = dout·keep/(1-p) with the same mask as
	// Dropout(…, p, seed); dx may alias dout.
	DropoutBackward(dx, dout Buf, p float32, seed uint64)

	// AttentionSaveLen is the number of float32 values Attention needs in
	// save for the backward pass (the CPU backend keeps the probabilities,
	// [N, Heads, S, S], unless a.Tiled; a fused GPU kernel keeps one
	// log-sum-exp per query row, [N, Heads, S]).
	AttentionSaveLen(a Attn) int
	// Attention computes softmax(QKᵀ/√d + maskadd)·V per sequence and head
	// into ctx, writing what the backward pass needs into save.
	Attention(a Attn, qkv Buf, mask IntBuf, ctx, save Buf)
	// AttentionBackward sets dqkv (all three column blocks) from dctx.
	AttentionBackward(a Attn, qkv Buf, mask IntBuf, ctx, dctx, save, dqkv Buf)

	// AdamW applies one torch.optim.AdamW update to p with gradient g and
	// moments m and v (all the same length).
	AdamW(p, g, m, v Buf, s AdamWStep)
	// SumSquares returns Σ x² accumulated in float64.
	SumSquares(x Buf) float64

	// LoraMerge sets w += scale·(b·a) where w is out×in, b is out×r and a is
	// r×in; a negative scale unmerges.
	LoraMerge(w, a, b Buf, out, in, r int, scale float32)

	// Sync waits for queued work and returns the first error recorded since
	// the last Sync, if any.
	Sync() error
}

// Laner is an optional extension of Backend for devices whose parts run
// whole passes better side by side than each op split across them: the
// CPU backend, where each core computing a share of a batch's sequences
// single-threaded beats every op split across the cores (no barrier after
// each op, no shared packing, each core's caches kept to its own rows).
type Laner interface {
	// Lanes returns one backend per lane, each sharing this backend's
	// memory (a buffer of any of them can be used by the others), or nil
	// when there is a single lane.
	Lanes() []Backend
}

// LaneHelper is an optional extension of the backends Laner.Lanes
// returns, through which a lane that has finished its share of a pass
// helps the others finish theirs (the CPU backend's lanes take blocks of
// one another's products).
type LaneHelper interface {
	// LanesBegin starts a pass that n of the lanes take part in; call it
	// on any one lane before they start.
	LanesBegin(n int)
	// LanesDone says that this lane has finished its share of the pass.
	// It returns once all n have, having meanwhile done work of the
	// others. Every lane of the pass must call it, whatever its outcome.
	LanesDone()
}

// FirstQueryAttender is an optional extension of Backend for the last
// layer of a cross-encoder in inference, where only position 0 (the row
// the classification head reads) needs an attention output.
type FirstQueryAttender interface {
	// AttentionFirstQuery sets ctx, [N, H], to the attention of each
	// sequence's position-0 query, q [N, H], over its keys and values,
	// kv [N*S, 2H] (keys in columns [0, H), values in [H, 2H), heads laid
	// out as in Attention; mask as in Attention). It keeps the
	// probabilities, [N, Heads, S], in save (at least N*Heads*S values).
	// There is no dropout; the result equals row 0 of Attention's up to
	// float rounding.
	AttentionFirstQuery(a Attn, q, kv Buf, mask IntBuf, ctx, save Buf)
}

// AddLayerNormer is an optional extension of Backend for the residual
// connections of an encoder layer, LayerNorm(x + res).
type AddLayerNormer interface {
	// AddLayerNorm sets sum = x + res (what LayerNormBackward later reads
	// as LayerNorm's input) and out = LayerNorm(sum), storing mean and
	// rstd as LayerNorm does, in one pass over each row instead of Add
	// then LayerNorm. sum may alias x or res. The result is bit-identical
	// to Add then LayerNorm on the same backend.
	AddLayerNorm(out, mean, rstd, sum, x, res, gamma, beta Buf, rows, dim int, eps float32)
}

// BiasGemmer is an optional extension of Backend for the forward pass of
// a Linear layer: C = A·Bᵀ + bias, with A m×k, B n×k (the weight,
// [out, in]) and bias added to every row of the m×n C. A backend that
// implements it adds the bias in the same pass over C as the product
// instead of a second pass; the result equals Gemm then AddBias up to
// float rounding.
type BiasGemmer interface {
	GemmBias(m, n, k int, a Buf, lda int, b Buf, ldb int, bias Buf, c Buf, ldc int)
}

// WeightPacker is an optional extension of BiasGemmer for inference with
// weights that stay fixed over many passes. A backend whose GemmBias
// rearranges the weight into a layout of its own on every call (the CPU
// backend packs panels of it, as BLAS libraries do) rearranges it once
// instead, into a buffer that products then read as it is.
type WeightPacker interface {
	BiasGemmer
	// PackedSize returns the number of float32 values PackWeight writes
	// for an n×k weight ([out, in]), or 0 when the backend does not pack
	// (on this CPU, or by its configuration).
	PackedSize(n, k int) int
	// PackWeight writes the n×k weight w (leading dimension ldw) into dst,
	// which holds PackedSize(n, k) values, in the layout GemmBiasPacked
	// reads. dst is a copy: later changes to w do not reach it.
	PackWeight(dst, w Buf, ldw, n, k int)
	// GemmBiasPacked is GemmBias(m, n, k, a, lda, w, k, bias, c, ldc) with
	// the weight packed by PackWeight(pw, w, …, n, k); the result has the
	// same bits.
	GemmBiasPacked(m, n, k int, a Buf, lda int, pw, bias, c Buf, ldc int)
}

// Quantizer is an optional extension of Backend for int8 scoring, as ONNX
// Runtime's dynamic quantization: a weight is quantized once per output
// channel to int8, the activations per row at run time, and the product
// is summed in int32. Results differ from GemmBias by the quantization
// error (about 1% of a row's range); they are for inference only.
type Quantizer interface {
	// QuantizedSize returns the number of float32 slots QuantizeWeight
	// writes for an n×k weight ([out, in]).
	QuantizedSize(n, k int) int
	// QuantizeWeight writes the n×k weight w (leading dimension ldw) into
	// dst, which holds QuantizedSize(n, k) slots, quantized.
	QuantizeWeight(dst, w Buf, ldw, n, k int)
	// GemmBiasQuantized sets c = a·wᵀ + bias (m×n) with w quantized by
	// QuantizeWeight(qw, w, …, n, k).
	GemmBiasQuantized(m, n, k int, a Buf, lda int, qw, bias, c Buf, ldc int)
}

// BiasGeluGemmer is an optional extension of BiasGemmer for the first
// Linear of a feed-forward block, act = gelu(A·Bᵀ + bias) (the exact erf
// GELU of Gelu), as ONNX Runtime fuses it: a backend that implements it
// may apply the GELU in the product's epilogue, to each tile of the
// result while it is in registers, instead of a second pass over the m×n
// intermediate. pre, when not nil, also gets A·Bᵀ + bias (what
// GeluBackward reads in training); with pre nil, or the same memory as
// act, only act is written. Results have the bits of GemmBias (or
// GemmBiasPacked, GemmBiasQuantized) into pre followed by Gelu(act, pre)
// on the same backend. A backend without it (CUDA) takes those two steps.
type BiasGeluGemmer interface {
	GemmBiasGelu(m, n, k int, a Buf, lda int, b Buf, ldb int, bias, pre, act Buf, ldc int)
	// GemmBiasPackedGelu is GemmBiasGelu with the weight packed by
	// WeightPacker.PackWeight (on a backend that packs).
	GemmBiasPackedGelu(m, n, k int, a Buf, lda int, pw, bias, pre, act Buf, ldc int)
	// GemmBiasQuantizedGelu is GemmBiasGelu with the weight quantized by
	// Quantizer.QuantizeWeight (on a backend that quantizes).
	GemmBiasQuantizedGelu(m, n, k int, a Buf, lda int, qw, bias, pre, act Buf, ldc int)
}

// Discarder is an optional extension of Backend that gives the memory
// under a buffer back to the operating system while the allocation it is
// part of lives on: scoring with int8 weights drops the float32 weights
// it no longer reads (nn/infer Runner.QuantizeWeightsDropping) although
// they share one allocation with the weights it still reads. Discard
// returns the whole pages inside b and the number of bytes returned; b's
// values are undefined afterwards (the CPU backend's read as zeros), so
// nothing may read them again. A backend that cannot returns 0.
type Discarder interface {
	Discard(b Buf) int64
}

// OffsetCopier is an optional extension of Backend: Copy2D and Fill at
// offsets into their buffers, for loops over a batch's sequences that
// would otherwise take a view of each (Buf.Slice), which can allocate
// (the CPU backend boxes a slice header in the interface each time).
type OffsetCopier interface {
	// Copy2DAt is Copy2D on dst and src from the values at dstOff and
	// srcOff on.
	Copy2DAt(dst Buf, dstOff, ldd int, src Buf, srcOff, lds int, rows, cols int)
	// FillAt sets n values of dst from off on to v.
	FillAt(dst Buf, off, n int, v float32)
}
