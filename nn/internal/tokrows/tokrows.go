// Package tokrows moves token rows between the padded layout [n·s, width]
// and the packed one (the real tokens' rows only) for the training path
// (nn) and the inference runner (nn/infer), which lay out sequences alike:
// sequence i's rows start at packed row seqOff[i] and number seqLen[i].
package tokrows

import "github.com/rerank-go/rerank/backend"

// Copier copies and fills at offsets into buffers: through OC without a
// view where the backend offers it (backend.OffsetCopier), else through
// Be's views.
type Copier struct {
	Be backend.Backend
	OC backend.OffsetCopier // nil: through views
}

// Copy2DAt copies rows×cols values from src at srcOff to dst at dstOff
// (leading dimensions lds and ldd).
func (c Copier) Copy2DAt(dst backend.Buf, dstOff, ldd int, src backend.Buf, srcOff, lds, rows, cols int) {
	if c.OC != nil {
		c.OC.Copy2DAt(dst, dstOff, ldd, src, srcOff, lds, rows, cols)
		return
	}
	n := func(ld int) int { return max(0, (rows-1)*ld+cols) }
	c.Be.Copy2D(dst.Slice(dstOff, n(ldd)), ldd, src.Slice(srcOff, n(lds)), lds, rows, cols)
}

// FillAt sets n values of dst from off on to v.
func (c Copier) FillAt(dst backend.Buf, off, n int, v float32) {
	if c.OC != nil {
		c.OC.FillAt(dst, off, n, v)
		return
	}
	c.Be.Fill(dst.Slice(off, n), v)
}

// Scatter copies packed token rows (width values each) to the padded
// layout [n·s, width], zeroing the positions that were skipped.
func (c Copier) Scatter(dst, src backend.Buf, width, s int, seqOff, seqLen []int) {
	for i, off := range seqOff {
		l := seqLen[i]
		c.Copy2DAt(dst, i*s*width, width, src, off*width, width, l, width)
		if l < s {
			c.FillAt(dst, (i*s+l)*width, (s-l)*width, 0)
		}
	}
}

// Gather copies the computed positions of the padded layout [n·s, width]
// into packed token rows.
func (c Copier) Gather(dst, src backend.Buf, width, s int, seqOff, seqLen []int) {
	for i, off := range seqOff {
		c.Copy2DAt(dst, off*width, width, src, i*s*width, width, seqLen[i], width)
	}
}

// Pack appends to (*buf)[:0] the first seqLen[i] values of each row i of
// v (rows of s values): host token ids, type ids or positions in the
// packed layout. *buf keeps the storage for the next call.
func Pack(buf *[]int32, v []int32, s int, seqLen []int) []int32 {
	out := (*buf)[:0]
	for n, l := range seqLen {
		out = append(out, v[n*s:n*s+l]...)
	}
	*buf = out
	return out
}
